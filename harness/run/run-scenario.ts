/**
 * One boot of one scenario on one kernel: its images (cached), its boot plan
 * (plan/scenario.ts), carried out by run/execute.ts. The verdict is one of: passed, failed
 * (an assertion, or a kernel report not allowed), panic, timeout (the deadline came first),
 * missing-stage (the guest stopped without reporting a stage), error (the harness or the
 * result channel broke, or the guest reported something the scenario does not declare).
 */
import type { Scenario } from '../scenario.ts';
import { planScenario } from '../plan/scenario.ts';
import { prepareImages, type PreparedImages } from './prepare.ts';
import { execute, newRecord } from './execute.ts';
import { timeoutFactor } from '../qemu/accel.ts';
import { archOf } from '../arch/index.ts';
import { DEFAULTS } from '../plan/defaults.ts';
import { foldRecordMessage, type Accel, type RunEvent, type RunRecord } from './record.ts';
import type { Kernel } from '../../kernels/index.ts';
import type { BootPath, Firmware } from '../plan/types.ts';
import { checkBoot } from '../firmware/uefi.ts';

export type { Outcome, Accel, RunArtifacts, RunAttempt, RunRecord, RunEvent } from './record.ts';
export { channelVerdict } from '../verdict/channel.ts';
export { bootAndRead, GRACE_STOP_REASON, type BootAndReadOptions } from './execute.ts';
export { artifactSlug, keepArtifacts, moveRunDir } from './artifacts.ts';
export { rerunLine } from '../plan/scenario.ts';

export interface RunOptions {
  accel: Accel;
  /** Where kept artifact folders go. */
  artifactsRoot: string;
  /** Keep the artifact folder of passing runs too. */
  keep?: boolean;
  onEvent?: (e: RunEvent) => void;
  signal?: AbortSignal;
  /** Appended to the kernel command line. */
  extraCmdline?: string;
  /** Kernel reports (by title or line) that do not fail the run, beyond the scenario's own. */
  allowKernelLog?: RegExp[];
  /** For the rerun line: how the user invoked rootprobe (default `npx rootprobe`). */
  invocation?: string;
  /** Extra arguments for the rerun line (e.g. --scenarios DIR). */
  rerunArgs?: string[];
  /** Default bios. */
  firmware?: Firmware;
  /** Default `kernel`: -kernel; `systemd-boot`, `uki`: from an ESP rootprobe builds (uefi). */
  boot?: BootPath;
  /** Images already prepared (runMatrix builds all of them before the first boot). */
  images?: PreparedImages;
}

/** Boots `sc` on `kernel` once and returns its verdict with the evidence. */
export async function runScenario(sc: Scenario, kernel: Kernel, opts: RunOptions): Promise<RunRecord> {
  checkBoot(opts.firmware ?? DEFAULTS.firmware, opts.boot, archOf(kernel));
  let images = opts.images;
  opts.onEvent?.({ type: 'phase', scenario: sc.name, kernel: kernel.id, phase: 'images' });
  if (!images) {
    const started = Date.now();
    try {
      images = await prepareImages(sc, kernel, { firmware: opts.firmware });
    } catch (e) {
      // Nothing to boot: the record says why, as a boot that failed would.
      const plan = planScenario(sc, kernel, { segments: [], disks: [], modules: [], warnings: [] }, opts);
      const record = newRecord(
        plan,
        opts.accel,
        Math.round((sc.timeoutSec ?? DEFAULTS.timeoutSec) * 1000 * timeoutFactor(opts.accel, plan.arch)),
      );
      record.message = (e as Error).message;
      foldRecordMessage(record);
      record.durationMs = Date.now() - started;
      return record;
    }
  }
  return execute(planScenario(sc, kernel, images, opts), opts);
}
