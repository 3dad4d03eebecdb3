/**
 * What QEMU's `virt` machines (arm64, riscv64) share: one UART, so the result channel is a
 * virtio-serial port on a virtio-serial PCI controller, found by the probe by its name; the
 * kernel needs virtio PCI and the virtio console for it (modules in Debian's kernels, loaded
 * by the initramfs before the first probe).
 */
import type { ArchSpec } from './types.ts';

export const VIRT_RESULT_PORT: ArchSpec['resultPort'] = { attach: 'virtio', name: 'org.rootprobe.result' };

/** The `port` feature of a virt machine's config check. */
export function virtioPortFeature(arch: string): NonNullable<ArchSpec['features']['port']> {
  return {
    description: `virtio-serial on PCI (the result port on ${arch} virt)`,
    options: ['CONFIG_VIRTIO_PCI', 'CONFIG_VIRTIO_CONSOLE'],
    modules: ['virtio_pci', 'virtio_console'],
    moduleOf: { CONFIG_VIRTIO_PCI: 'virtio_pci', CONFIG_VIRTIO_CONSOLE: 'virtio_console' },
  };
}
