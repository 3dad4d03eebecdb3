/**
 * 64-bit Arm: QEMU's `virt` machine. Its one UART (PL011, ttyAMA0) is the console; the result
 * channel is a virtio-serial port named `org.rootprobe.result` on a virtio-serial PCI
 * controller (the probe finds it by name). CPU under TCG: `cortex-a57`. Measured on a 2-core
 * x86-64 host with Debian bookworm's 6.1 cloud-arm64 kernel and a busybox initramfs that loads
 * the virtio modules and writes to the port: `cortex-a57` 2.8-3.3 s to power-off, `max` 9.5 s
 * (its pointer authentication is emulated in software), `max,pauth-impdef=on` 4.0 s.
 * Debian's cloud kernel has virtio_pci and virtio_console as modules: the port is usable once
 * the initramfs has loaded them (every scenario loads its modules before its first probe).
 */
import type { ArchSpec } from './types.ts';
import { VIRT_RESULT_PORT, virtioPortFeature } from './virt.ts';

export const arm64: ArchSpec = {
  name: 'arm64',
  qemuBinary: 'qemu-system-aarch64',
  qemuPackage: 'qemu-system-arm',
  machine: 'virt',
  cpu: { kvm: 'host', tcg: 'cortex-a57' },
  console: 'ttyAMA0',
  consoleNode: { major: 204, minor: 64 },
  resultPort: VIRT_RESULT_PORT,
  kernelImage: 'Image',
  imageMagic: 'ARM\x64',
  gzipImage: true,
  elfMachine: 183,
  hostArch: 'arm64',
  features: {
    serial: {
      description: 'the PL011 UART with console (the console on arm64 virt)',
      options: ['CONFIG_SERIAL_AMBA_PL011', 'CONFIG_SERIAL_AMBA_PL011_CONSOLE'],
    },
    port: virtioPortFeature('arm64'),
  },
  tcgSlowdown: 1.5,
  kbuild: { arch: 'arm64', target: 'Image', image: 'arch/arm64/boot/Image' },
  debianArch: 'arm64',
  debianKernel: { flavour: 'cloud-arm64' },
  kcidbArch: 'arm64',
  gdbArch: 'aarch64',
  gnuTriplet: 'aarch64-linux-gnu',
  crossCompiler: {
    command: 'aarch64-linux-gnu-gcc',
    debianPackage: 'gcc-aarch64-linux-gnu',
    libc: { header: '/usr/aarch64-linux-gnu/include/stdio.h', debianPackage: 'libc6-dev-arm64-cross' },
  },
  userlandSuite: 'bookworm',
  firmware: ['bios'],
  cmdline: [],
};
