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
  resultPort:
    | { attach: 'serial'; device: string; major: number; minor: number }
    /**
     * `virtio`: a virtio-serial port of this name on a virtio-serial PCI controller (machines
     * with one UART); the probe finds its device through /sys/class/virtio-ports/<port>/name,
     * whose major number the kernel picks at boot.
     */
    | { attach: 'virtio'; name: string };
  /** The console's device node (images without devtmpfs need one). */
  consoleNode: { major: number; minor: number };
  /**
   * The kernel image's form, for messages and checks ('bzImage': the x86 boot protocol;
   * 'Image': arm64's and riscv64's, as QEMU's -kernel takes it, gzip-compressed or not).
   */
  kernelImage: 'bzImage' | 'Image';
  /**
   * An `Image`'s magic, the 4 bytes at offset 0x38 of its 64-byte header (arm64: "ARM\x64",
   * Documentation/arch/arm64/booting.rst; riscv64: "RSC\x05", boot-image-header.rst); none for
   * a bzImage, which its boot header says (kernels/bzimage.ts).
   */
  imageMagic?: string;
  /** QEMU boots the Image gzip-compressed too (arm64: Debian's vmlinuz is in some suites). */
  gzipImage: boolean;
  /** The ELF e_machine of the guest's programs (62 x86-64, 183 AArch64, 243 RISC-V). */
  elfMachine: number;
  /** The Node.js `process.arch` of a host that can run this guest under KVM. */
  hostArch: string;
  /**
   * Firmware QEMU loads before the kernel when `firmware` is 'bios' (riscv64: OpenSBI), with
   * its Debian package; none: QEMU's own (SeaBIOS) or a direct kernel boot (arm64).
   */
  bios?: { file: string; debianPackage: string };
  /**
   * The kernel options the console and the result port need on this architecture, as the
   * features table's entries (kernels/features.ts): `serial` is the console's UART (built in),
   * `port` the result channel's driver when it is not the second UART (modules allowed,
   * loaded before the first probe).
   */
  features: {
    serial: { description: string; options: string[] };
    port?: { description: string; options: string[]; modules: string[]; moduleOf?: Record<string, string> };
    /** What the guest's userland (Debian's binaries of the architecture) needs of the CPU support, built in. */
    userland?: { description: string; options: string[] };
  };
  /**
   * How much slower a guest of this architecture boots under TCG than an x86-64 guest under
   * TCG on the same host (measured: see the architecture's file); deadlines are scaled by it.
   */
  tcgSlowdown: number;
  /**
   * The Debian suite whose packages make the guest userland (busybox-static, the libraries of
   * host tools) when the guest is not of the host's architecture: the host's own suite where the
   * archive has the architecture.
   */
  userlandSuite?: string;
  /** The kernel's build: its ARCH=, the make target and where the image lands in the build folder. */
  kbuild: { arch: string; target: string; image: string };
  /** Debian's architecture name (packages, kernels, busybox-static). */
  debianArch: string;
  /**
   * Debian's kernels for it: the flavour `debian/<suite>` means for these guests (`--arch`; its
   * cloud kernel where Debian has one), and the first suite whose archive has them, if not all.
   */
  debianKernel: { flavour: string; firstSuite?: string };
  /**
   * KCIDB's (KernelCI's) name of the architecture of a build: the kernel's ARCH as KernelCI
   * writes it (`arm64`, `riscv`), but `x86_64` for 64-bit x86 builds.
   */
  kcidbArch: string;
  /** gdb's name of the architecture (`set architecture`), for a kernel without symbols. */
  gdbArch: string;
  /**
   * The cross compiler for this guest on an x86-64 host, and its Debian package (the host's gcc
   * when native); `libc`: the C library's headers and static libraries it compiles against (the
   * compiler package only recommends them, and `doctor --install` installs no recommends).
   */
  crossCompiler?: { command: string; debianPackage: string; libc: { header: string; debianPackage: string } };
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
