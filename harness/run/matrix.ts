/**
 * A scenario x kernel matrix: resolve the kernels (downloading into the cache as needed),
 * decide the accelerator once, then boot up to `jobs` VMs at once. On Ctrl-C the runs under
 * way are stopped, their QEMUs killed and temp folders removed (lifecycle), and the report of
 * the runs that finished is still written.
 */
import * as os from 'node:os';
import { createRequire } from 'node:module';
import { resolveKernel, type Kernel } from '../../kernels/index.ts';
import { detectAccel, timeoutFactor, type AccelAnswer } from '../qemu/accel.ts';
import { onCleanup } from '../lifecycle.ts';
import type { Scenario } from '../scenario.ts';
import { rerunLine, runScenario, type RunAttempt, type RunRecord } from './run-scenario.ts';
import { bareRecord } from './record.ts';
import { prepareImages, type PreparedImages } from './prepare.ts';
import { summarize, type MatrixReport } from '../report/formats.ts';
import { Progress } from '../report/terminal.ts';
import { shardCells, type Shard } from './shard.ts';
import { validateScenarios, withScenario } from '../validate.ts';
import { isPeopleError } from '../errors.ts';
import type { BootPath, Firmware } from '../plan/types.ts';
import { checkBoot } from '../firmware/uefi.ts';
import { archOf, defaultArch } from '../arch/index.ts';
import { DEFAULTS } from '../plan/defaults.ts';

// Through the package's own name (its `exports` lists ./package.json), so that the sources
// and the compiled tree in dist/ find the same file.
const pkg = createRequire(import.meta.url)('rootprobe/package.json') as { version: string };

export interface MatrixOptions {
  jobs: number;
  artifactsRoot: string;
  keep: boolean;
  extraCmdline?: string;
  /** Kernel reports (by title or line) that do not fail a run: the CLI's --allow-kernel-log. */
  allowKernelLog?: RegExp[];
  rerunArgs?: string[];
  progress?: Progress;
  /** Called with the report of the runs finished so far when the run is interrupted. */
  partialReport?: (r: MatrixReport) => Promise<void>;
  /** Run only this part of the matrix (see shard.ts). */
  shard?: Shard;
  /**
   * Boot a cell again, at most this many times, when it did not pass. Every attempt stays in
   * the record; a cell whose attempts disagree is marked flaky, so a flake is reported, never
   * hidden. Default 0.
   */
  retries?: number;
  /** Every cell's firmware (default bios) and boot path (default `kernel`: -kernel). */
  firmware?: Firmware;
  boot?: BootPath;
  /** Called once, when the first QEMU has started: the caller's work for later, done while guests boot (the CLI loads its report writers). */
  onFirstBoot?: () => void;
}

function summaryOf(r: RunRecord): RunAttempt {
  return { outcome: r.outcome, message: r.message, durationMs: r.durationMs, artifacts: r.artifacts?.dir };
}

/** Runs `fn` over `items` with at most `n` at once, keeping results in input order. */
export async function pool<T, R>(items: T[], n: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
  return out;
}

/** The record of a cell that was not booted because its scenario's skipIf gave a reason. */
export function skippedRecord(
  s: Scenario,
  k: Kernel,
  reason: string,
  accel: 'kvm' | 'tcg',
  opts: Pick<MatrixOptions, 'rerunArgs'> = {},
): RunRecord {
  return bareRecord({
    scenario: s.name,
    kernel: k,
    accel,
    arch: archOf(k).name,
    outcome: 'skipped',
    message: reason,
    memoryMiB: s.memoryMiB ?? DEFAULTS.memoryMiB,
    rerun: rerunLine(s, k, { rerunArgs: opts.rerunArgs }),
  });
}

export async function runMatrix(scenarios: Scenario[], kernelSpecs: string[], opts: MatrixOptions): Promise<MatrixReport> {
  const started = Date.now();
  const progress = opts.progress ?? new Progress();
  let firstBooted = false;
  // Definition mistakes (validate.ts) and a bad ROOTPROBE_TIMEOUT_FACTOR: before any download.
  validateScenarios(scenarios);
  timeoutFactor('kvm');
  checkBoot(opts.firmware ?? DEFAULTS.firmware, opts.boot, defaultArch());
  const chosen = shardCells(scenarios, kernelSpecs, opts.shard);
  const kernelById = new Map<string, Kernel>();
  for (const spec of [...new Set(chosen.map((c) => c.kernel))]) {
    kernelById.set(spec, await resolveKernel(spec, { onProgress: (m) => progress.message(`kernel ${spec}: ${m}`) }));
  }
  const kernels = [...kernelById.values()];
  for (const k of kernels) checkBoot(opts.firmware ?? DEFAULTS.firmware, opts.boot, archOf(k));
  // Every image is built (or found in the cache) before the first boot, so a scenario that
  // cannot be built (a missing host binary, a kernel without an option it needs, a disk
  // that does not fit) is an error before anything boots.
  // A cell whose scenario does not apply to its kernel (skipIf) is decided here: no image is
  // built for it and nothing boots; it is reported as skipped, with the reason.
  const cells: Array<{ s: Scenario; k: Kernel; images?: PreparedImages; skip?: string }> = [];
  for (const { scenario: s, kernel } of chosen) {
    const k = kernelById.get(kernel)!;
    const skip = s.skipIf?.(k);
    if (skip) cells.push({ s, k, skip });
    else
      cells.push({ s, k, images: await prepareImages(s, k, { firmware: opts.firmware }).catch((e) => Promise.reject(withScenario(e, s))) });
  }
  const shardNote = opts.shard
    ? `shard ${opts.shard.index}/${opts.shard.count}: ${cells.length} of ${scenarios.length * new Set(kernelSpecs).size} cell(s)`
    : '';
  // The accelerator per guest architecture (KVM only for the host's own; probed once each).
  const accelByArch = new Map<string, AccelAnswer>();
  for (const k of kernels) {
    const arch = archOf(k);
    if (accelByArch.has(arch.name)) continue;
    accelByArch.set(arch.name, await detectAccel(k.vmlinuz, { arch, onProgress: (m: string) => progress.message(`accel: ${m}`) }));
  }
  const accelOf = (k: Kernel): 'kvm' | 'tcg' => accelByArch.get(archOf(k).name)!.accel;
  const accel: { accel: string; reason: string; cached: boolean } = accelByArch.values().next().value ?? {
    accel: 'none',
    reason: 'nothing to run',
    cached: false,
  };
  const others = [...accelByArch.entries()]
    .slice(1)
    .map(([a, x]) => `; ${a} guests: ${x.accel} (${x.reason}${x.cached ? ', cached' : ''})`);
  progress.message(
    `accelerator: ${accel.accel} (${accel.reason}${accel.cached ? ', cached' : ''})${others.join('')}; ${opts.jobs} at once` +
      ` (${[...new Set(cells.map((c) => c.s.memoryMiB ?? DEFAULTS.memoryMiB))].join('/') || DEFAULTS.memoryMiB} MiB each); ` +
      `${cells.some((c) => c.skip) ? `${cells.filter((c) => c.skip).length} cell(s) skipped before boot; ` : ''}` +
      `${scenarios.length} scenario(s) x ${kernelSpecs.length} kernel(s)${shardNote ? `; ${shardNote}` : ''}`,
  );

  const records: Array<RunRecord | undefined> = new Array(cells.length);
  const abort = new AbortController();
  const report = (): MatrixReport => {
    const runs = records.filter((r): r is RunRecord => Boolean(r));
    return {
      tool: 'rootprobe',
      version: pkg.version,
      startedAt: new Date(started).toISOString(),
      durationMs: Date.now() - started,
      accel: accel.accel,
      accelReason: `${accel.reason}${others.join('')}`,
      host: { cpus: os.availableParallelism(), node: process.version },
      summary: summarize(runs),
      runs,
    };
  };
  // On a signal, runs under way end as their QEMUs are killed (before the cleanup callback
  // runs): they did not finish, so they stay out of the report. Set synchronously, on the signal.
  let interrupted = false;
  const onSignal = (): void => {
    interrupted = true;
  };
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  for (const sig of signals) process.on(sig, onSignal);
  const unhook = onCleanup(async () => {
    interrupted = true;
    abort.abort();
    progress.stop();
    if (opts.partialReport) await opts.partialReport(report());
  });
  try {
    await pool(cells, opts.jobs, async ({ s, k, images, skip }, i) => {
      if (abort.signal.aborted) return;
      if (skip !== undefined) {
        records[i] = skippedRecord(s, k, skip, accelOf(k), opts);
        progress.end(records[i]!);
        return;
      }
      progress.start(s.name, k.id);
      const started = Date.now();
      // A host file error while keeping the run's artifacts (a folder made unwritable or full
      // during the run) ends this cell as `error` naming it; the other cells and the reports go on.
      const hostError = (e: unknown): RunRecord => {
        if (!(e as NodeJS.ErrnoException)?.code || isPeopleError(e)) throw e;
        return bareRecord({
          scenario: s.name,
          kernel: k,
          accel: accelOf(k),
          arch: archOf(k).name,
          outcome: 'error',
          message: `the run's artifacts could not be kept under ${opts.artifactsRoot}: ${(e as Error).message}`,
          durationMs: Date.now() - started,
          memoryMiB: s.memoryMiB ?? DEFAULTS.memoryMiB,
          rerun: rerunLine(s, k, opts),
        });
      };
      const attempt = () =>
        runScenario(s, k, {
          accel: accelOf(k),
          artifactsRoot: opts.artifactsRoot,
          keep: opts.keep,
          extraCmdline: opts.extraCmdline,
          allowKernelLog: opts.allowKernelLog,
          rerunArgs: opts.rerunArgs,
          firmware: opts.firmware,
          boot: opts.boot,
          images,
          signal: abort.signal,
          onEvent: (e) => {
            progress.event(e);
            if (e.type === 'phase' && e.phase === 'boot' && !firstBooted) {
              firstBooted = true;
              opts.onFirstBoot?.();
            }
          },
        }).catch(hostError);
      let r = await attempt();
      const attempts: RunAttempt[] = [summaryOf(r)];
      for (let n = 0; n < (opts.retries ?? 0) && r.outcome !== 'passed' && !abort.signal.aborted; n++) {
        progress.message(`retry  ${s.name} @ ${k.id}: attempt ${n + 1} ended ${r.outcome}`);
        const previous = r;
        r = await attempt();
        attempts.push(summaryOf(r));
        // The failed attempt's artifacts stay where they were kept; the new record points at its own.
        if (!r.artifacts && previous.artifacts) r.artifacts = previous.artifacts;
      }
      if (attempts.length > 1) {
        r.attempts = attempts;
        r.flaky = new Set(attempts.map((a) => a.outcome)).size > 1;
      }
      if (interrupted) return;
      records[i] = r;
      progress.end(r);
    });
  } finally {
    for (const sig of signals) process.off(sig, onSignal);
    unhook();
    progress.stop();
  }
  return report();
}
