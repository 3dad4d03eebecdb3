/**
 * 64-bit RISC-V: QEMU's `virt` machine with OpenSBI (Debian's `opensbi`, fw_dynamic) as the
 * firmware that starts the kernel. Its one UART (16550, ttyS0) is the console; the result
 * channel is a virtio-serial port named `org.rootprobe.result` on a virtio-serial PCI
 * controller, as on arm64. Debian has riscv64 from trixie on: kernels of trixie and sid, and
 * the guest userland from trixie. Measured on a 2-core x86-64 host with trixie's 6.12 kernel
 * and a busybox initramfs writing to the port: 3.3-3.7 s to power-off under TCG (`rv64`).
 */
import type { ArchSpec } from './types.ts';
import { VIRT_RESULT_PORT, virtioPortFeature } from './virt.ts';

export const riscv64: ArchSpec = {
  name: 'riscv64',
  qemuBinary: 'qemu-system-riscv64',
  qemuPackage: 'qemu-system-misc',
  machine: 'virt',
  cpu: { kvm: 'host', tcg: 'rv64' },
  console: 'ttyS0',
  consoleNode: { major: 4, minor: 64 },
  resultPort: VIRT_RESULT_PORT,
  kernelImage: 'Image',
  imageMagic: 'RSC\x05',
  gzipImage: false,
  elfMachine: 243,
  hostArch: 'riscv64',
  bios: { file: '/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_dynamic.bin', debianPackage: 'opensbi' },
  features: {
    serial: {
      description: '8250/16550 serial ports with console (the console on riscv64 virt)',
      options: ['CONFIG_SERIAL_8250', 'CONFIG_SERIAL_8250_CONSOLE', 'CONFIG_SERIAL_OF_PLATFORM'],
    },
    port: virtioPortFeature('riscv64'),
    userland: {
      description: "compressed instructions and the F/D floating point registers (Debian's riscv64 userland is rv64gc)",
      options: ['CONFIG_RISCV_ISA_C', 'CONFIG_FPU'],
    },
  },
  tcgSlowdown: 1.5,
  kbuild: { arch: 'riscv', target: 'Image', image: 'arch/riscv/boot/Image' },
  debianArch: 'riscv64',
  debianKernel: { flavour: 'riscv64', firstSuite: 'trixie' },
  kcidbArch: 'riscv',
  gdbArch: 'riscv:rv64',
  gnuTriplet: 'riscv64-linux-gnu',
  crossCompiler: {
    command: 'riscv64-linux-gnu-gcc',
    debianPackage: 'gcc-riscv64-linux-gnu',
    libc: { header: '/usr/riscv64-linux-gnu/include/stdio.h', debianPackage: 'libc6-dev-riscv64-cross' },
  },
  userlandSuite: 'trixie',
  firmware: ['bios'],
  cmdline: [],
};
