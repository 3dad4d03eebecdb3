/**
 * What the scenarios need from a kernel, as data (like KUnit's qemu_configs): for each
 * feature, the CONFIG options that provide it and the modules that carry it when those
 * options are `m`. `builtIn` features are needed before any module can be loaded (the
 * initramfs itself, /dev, the console, /proc), so `m` does not count for them.
 */
export type Feature = 'initrd' | 'devtmpfs' | 'tmpfs' | 'serial' | 'virtio-blk' | 'ext4' | 'loop' | 'proc' | 'sysfs';

export interface FeatureSpec {
  description: string;
  /** Every option must be set: `y`, or `m` unless `builtIn`. */
  options: string[];
  /** The modules that provide the feature when its options are `m`. */
  modules: string[];
  /** Options must be `y`: a module cannot provide it in time. */
  builtIn?: boolean;
  /** Which module each modular option is in (options missing here have no module of their own). */
  moduleOf?: Record<string, string>;
}

export const FEATURES: Record<Feature, FeatureSpec> = {
  initrd: {
    description: 'initramfs support (the kernel unpacks the cpio image)',
    options: ['CONFIG_BLK_DEV_INITRD'],
    modules: [],
    builtIn: true,
  },
  devtmpfs: {
    description: 'devtmpfs (/dev filled by the kernel)',
    options: ['CONFIG_DEVTMPFS'],
    modules: [],
    builtIn: true,
  },
  tmpfs: {
    description: 'tmpfs',
    options: ['CONFIG_TMPFS', 'CONFIG_SHMEM'],
    modules: [],
    builtIn: true,
  },
  serial: {
    description: '8250/16550 serial ports with console (the console and the result port on x86-64)',
    options: ['CONFIG_SERIAL_8250', 'CONFIG_SERIAL_8250_CONSOLE'],
    modules: [],
    builtIn: true,
  },
  proc: {
    description: 'the proc filesystem',
    options: ['CONFIG_PROC_FS'],
    modules: [],
    builtIn: true,
  },
  sysfs: {
    description: 'the sysfs filesystem',
    options: ['CONFIG_SYSFS'],
    modules: [],
    builtIn: true,
  },
  'virtio-blk': {
    description: 'virtio block disks on the PCI bus (/dev/vda)',
    options: ['CONFIG_VIRTIO_PCI', 'CONFIG_VIRTIO_BLK'],
    modules: ['virtio_pci', 'virtio_blk'],
    moduleOf: { CONFIG_VIRTIO_PCI: 'virtio_pci', CONFIG_VIRTIO_BLK: 'virtio_blk' },
  },
  ext4: {
    description: 'the ext4 filesystem',
    options: ['CONFIG_EXT4_FS'],
    modules: ['ext4'],
    moduleOf: { CONFIG_EXT4_FS: 'ext4' },
  },
  loop: {
    description: 'loop block devices (/dev/loopN)',
    options: ['CONFIG_BLK_DEV_LOOP'],
    modules: ['loop'],
    moduleOf: { CONFIG_BLK_DEV_LOOP: 'loop' },
  },
};

export function isFeature(name: string): name is Feature {
  return Object.hasOwn(FEATURES, name);
}
