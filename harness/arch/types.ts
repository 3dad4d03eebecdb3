/**
 * What rootprobe needs to know to boot a guest of one architecture: one value per
 * architecture, in a file of its own (x86_64.ts), listed in index.ts. Like KUnit's
 * `qemu_configs/*.py`: data, no code paths. Nothing outside this folder names a QEMU
 * binary, machine, CPU model or guest serial device.
 */
export interface ArchSpec {
  /** The name users give (`--arch`) and reports show: 'x86_64'. */
  name: string;
  /** The QEMU system emulator, and the Debian package that has it (harness/host.ts lists it). */
  qemuBinary: string;
  qemuPackage: string;
  /** `-M` */
  machine: string;
  /** `-cpu` under each accelerator. */
  cpu: { kvm: string; tcg: string };
  /** The guest's console device, as `console=` names it. */
  console: string;
  /**
   * The result channel: how QEMU attaches it and the guest device the probe writes to (found
   * by name: the plan puts `rootprobe.port=<device>` on the command line). `serial`: the
   * second UART of the machine; its device node's numbers go into images without devtmpfs.
   */
  resultPort: { attach: 'serial'; device: string; major: number; minor: number };
  /** The console's device node (images without devtmpfs need one). */
  consoleNode: { major: number; minor: number };
  /** The kernel image's form, for messages and checks ('bzImage': the x86 boot protocol). */
  kernelImage: 'bzImage';
  /** The kernel's build: its ARCH=, the make target and where the image lands in the build folder. */
  kbuild: { arch: string; target: string; image: string };
  /** Debian's architecture name (packages, kernels, busybox-static). */
  debianArch: string;
  /** The GNU triplet: the compiler target for the probe and helpers, the libraries' folder. */
  gnuTriplet: string;
  /** Firmware this architecture boots with, the first the default. */
  firmware: Array<'bios' | 'uefi'>;
  /**
   * UEFI, where `firmware` lists it: the firmware's code (read-only pflash) and the variable
   * store template (copied per run) with their Debian package, and the EFI architecture
   * suffix of systemd-boot's files and the removable-media path (`x64`: BOOTX64.EFI).
   */
  uefi?: { debianPackage: string; code: string[]; vars: string[]; efiArch: string };
  /** Kernel command-line options every boot of this architecture gets. */
  cmdline: string[];
}
