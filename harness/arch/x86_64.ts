/**
 * x86-64 PCs. `-M pc`: measured on a 2-core host under TCG with Debian bookworm's cloud kernel
 * (busybox initramfs powering off at once, 3 runs each): `pc` 2.59-2.65 s, `q35` 2.42-2.62 s
 * (no real gain), `microvm` 2.25 s but one run in three hung before /init and its disks need
 * virtio_mmio (a module in that kernel). The console is the first 16550 UART (ttyS0), the
 * result channel the second (ttyS1). `no_timer_check`: on a busy host a TCG guest's timer
 * interrupt can miss the kernel's early IO-APIC timer check, which then panics ("IO-APIC +
 * timer doesn't work!"; 1 boot in 700 of a soak with four VMs on two cores); cloud images and
 * libvirt guests skip it the same way.
 */
import type { ArchSpec } from './types.ts';

export const x86_64: ArchSpec = {
  name: 'x86_64',
  qemuBinary: 'qemu-system-x86_64',
  qemuPackage: 'qemu-system-x86',
  machine: 'pc',
  cpu: { kvm: 'host', tcg: 'max' },
  console: 'ttyS0',
  consoleNode: { major: 4, minor: 64 },
  resultPort: { attach: 'serial', device: 'ttyS1', major: 4, minor: 65 },
  kernelImage: 'bzImage',
  gzipImage: false,
  elfMachine: 62,
  hostArch: 'x64',
  features: {
    serial: {
      description: '8250/16550 serial ports with console (the console and the result port on x86-64)',
      options: ['CONFIG_SERIAL_8250', 'CONFIG_SERIAL_8250_CONSOLE'],
    },
  },
  tcgSlowdown: 1,
  kbuild: { arch: 'x86', target: 'bzImage', image: 'arch/x86/boot/bzImage' },
  debianArch: 'amd64',
  debianKernel: { flavour: 'cloud' },
  kcidbArch: 'x86_64',
  gdbArch: 'i386:x86-64',
  gnuTriplet: 'x86_64-linux-gnu',
  firmware: ['bios', 'uefi'],
  // OVMF under `-M pc` (no SMM: the plain build, not secboot). The 4 MiB build first (Debian 12's
  // default; the 2 MiB one is gone in later releases).
  uefi: {
    debianPackage: 'ovmf',
    code: ['/usr/share/OVMF/OVMF_CODE_4M.fd', '/usr/share/OVMF/OVMF_CODE.fd'],
    vars: ['/usr/share/OVMF/OVMF_VARS_4M.fd', '/usr/share/OVMF/OVMF_VARS.fd'],
    efiArch: 'x64',
  },
  cmdline: ['no_timer_check'],
};
