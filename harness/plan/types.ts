/**
 * A boot plan: everything one boot needs, as one value. Made by a scenario (plan/scenario.ts),
 * external mode (external/run.ts), `shell` and `build` (the same plan as `run`), and carried
 * out by one function (run/execute.ts), or written out as files with a qemu.sh (plan/write.ts).
 */
import type { ArchSpec } from '../arch/index.ts';
import type { Kernel } from '../../kernels/index.ts';
import type { RunReadback } from '../readback/result.ts';
import type { RunRecord } from '../run/record.ts';

export type Firmware = 'bios' | 'uefi';

/**
 * How the firmware gets to the kernel. `kernel`: QEMU hands it over (-kernel; under UEFI the
 * kernel's EFI stub). `systemd-boot`: UEFI loads systemd-boot from an EFI system partition
 * rootprobe builds (firmware/esp.ts), which boots a Boot Loader Specification entry.
 * `uki`: UEFI loads a unified kernel image rootprobe assembles (firmware/uki.ts) from the ESP's
 * fallback path. `esp`: the user's own ESP image (external mode), attached copy-on-write.
 */
export type BootPath = 'kernel' | 'systemd-boot' | 'uki' | 'esp';

export interface PlanDisk {
  /** The disk's name in the scenario (or `disk0`, ... in external mode). */
  name: string;
  /** The image file. */
  path: string;
  /**
   * `copy`: the guest writes a per-run copy (a cached image stays pristine; the copy is kept
   * with the artifacts and checked after the run). `overlay`: the guest writes a throwaway
   * QEMU overlay; the file is never written (the user's own images).
   */
  mode: 'copy' | 'overlay';
  readOnly?: boolean;
  serial?: string;
}

/** What a plan's check sees after the boot. */
export interface PlanRun {
  readback: RunReadback;
  /** The disks the guest wrote, by name: the run's copies (mode `copy`) or the user's files. */
  disks: Record<string, { path: string }>;
  record: RunRecord;
}

export interface BootPlan {
  /** The scenario's name (or external mode's), for reports and the artifact folder. */
  name: string;
  arch: ArchSpec;
  firmware: Firmware;
  /** How the firmware reaches the kernel (default `kernel`); all but `kernel` need `uefi`. */
  boot?: BootPath;
  /**
   * For `boot: 'uki'`: the stub the UKI is assembled on (default systemd-boot-efi's); external
   * mode's `--uki` gives the user's UKI with its .linux, .initrd and .cmdline taken out.
   */
  ukiStub?: string;
  /** Said in the evidence: where the UKI's parts came from. */
  ukiFrom?: string;
  /** For `boot: 'esp'`: the user's ESP image (never written: a throwaway overlay). */
  esp?: string;
  kernel: Kernel;
  /** The plan's kernel command line; the architecture's base options come first (qemu/command.ts). */
  cmdline: string;
  /** cpio segments (or a user's whole initramfs) in unpack order, joined into one -initrd; none: no initramfs. */
  initramfs: Array<{ name: string; path: string }>;
  disks: PlanDisk[];
  memoryMiB: number;
  cpus: number;
  /** The deadline under KVM, seconds; scaled for the accelerator (qemu/accel.ts). */
  timeoutSec: number;
  /** Seconds (under KVM, scaled) the guest gets to power off once complete() holds. */
  graceSec: number;
  /** The stages the guest must report. */
  stages: string[];
  /** Stages the guest may also report without being waited for (not undeclared). */
  optionalStages?: string[];
  /** True once the guest has said all it will. */
  complete: (readback: RunReadback) => boolean;
  /** The error for stages the guest sent that the plan does not expect (undefined: allowed). */
  undeclared?: (names: string[]) => string;
  /** Added to a verdict's message when a stage never came (what flow was waited on). */
  waitingFor?: string;
  /** The check on the readback: an assertion that does not hold fails the run. */
  check?: (run: PlanRun) => void | Promise<void>;
  /** Called once QEMU has started: work the check will need, done while the guest boots (loading chai). */
  whileBooting?: () => void;
  /** What the check is, for an error it throws: "scenario 'x' check". */
  checkName: string;
  /** Kernel reports (WARNING, BUG, ...) that do not fail the run: matched against their title and first line. */
  allowKernelLog: RegExp[];
  /** Say so in the record's warnings when the guest had to be stopped after reporting everything. */
  warnOnGraceStop?: boolean;
  /** After the verdict, before artifacts are kept: may change the record (external mode's input hashes). */
  finish?: (record: RunRecord) => Promise<void>;
  /** The command that reruns just this case. */
  rerun: string;
  /** Said while planning (a module the kernel lacks but the scenario may do without...). */
  warnings: string[];
  /** For `build`'s build.json: where the plan came from, and the images' own record. */
  source?: Record<string, unknown>;
}
