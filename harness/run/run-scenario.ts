/**
 * One boot of one scenario on one kernel, from images to verdict:
 *
 *   images (cached) -> QEMU (console on ttyS0, frames on ttyS1) -> stages -> check -> verdict
 *
 * The verdict is one of: passed, failed (an assertion), panic, timeout (the deadline came
 * first), missing-stage (the guest stopped without reporting a stage), error (the harness or
 * the result channel broke, or the guest reported something the scenario does not declare).
 * Every run gets a folder with its console log, raw result stream, readback, QEMU command
 * line and a reproduce script; it is kept for failed runs, and for all with `keep`.
 */
import { promises as fs, statSync } from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import * as chai from 'chai';
import { rootprobeChai } from '../assert/chai-rootprobe.ts';
import { FrameDecoder, type ReadbackEvent } from '../readback/frame.ts';
import type { StageJSON } from '../readback/snapshot.ts';
import { RunReadback } from '../readback/result.ts';
import { bootQemu, standaloneArgv, type BootOutcome, type BootSpec } from '../qemu/runner.ts';
import { shellLine } from '../qemu/command.ts';
import { timeoutFactor } from '../qemu/accel.ts';
import { keepTmp, makeTempDir, removeTempDir } from '../lifecycle.ts';
import { concatSegments } from '../image/initramfs.ts';
import { copyForRun } from '../image/disk.ts';
import { expectedStages, type CheckContext, type Scenario } from '../scenario.ts';
import { prepareImages, type PreparedImages } from './prepare.ts';
import type { Kernel } from '../../kernels/index.ts';

chai.use(rootprobeChai);

export type Outcome = 'passed' | 'failed' | 'panic' | 'timeout' | 'missing-stage' | 'error' | 'skipped';
export type Accel = 'kvm' | 'tcg';

export interface RunArtifacts {
  dir: string;
  consoleLog: string;
  resultStream: string;
  qemuCmdline: string;
  readback: string;
  reproduce: string;
}

/** One boot of a cell that was retried (see MatrixOptions.retries). */
export interface RunAttempt {
  outcome: Outcome;
  message?: string;
  durationMs: number;
  artifacts?: string;
}

export interface RunRecord {
  scenario: string;
  kernel: string;
  kernelRelease: string;
  accel: Accel;
  outcome: Outcome;
  /** Why, for anything but passed: the assertion, the missing stage, the panic line. */
  message?: string;
  durationMs: number;
  /** Stage names in the order they reported. */
  stagesReported: string[];
  stages: StageJSON[];
  evidence: string[];
  behaviours: string[];
  consoleTail: string[];
  memoryMiB: number;
  deadlineMs: number;
  warnings: string[];
  /** The command that reruns just this case. */
  rerun: string;
  artifacts?: RunArtifacts;
  /** Every boot of this cell when it was retried, in order; the record is the last. */
  attempts?: RunAttempt[];
  /** The attempts disagreed: the outcome depends on the boot, not only on the kernel. */
  flaky?: boolean;
}

export type RunEvent =
  | { type: 'phase'; scenario: string; kernel: string; phase: 'images' | 'boot' }
  | { type: 'stage'; scenario: string; kernel: string; stage: string; elapsedMs: number }
  | { type: 'console'; scenario: string; kernel: string; line: string };

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
  /** For the rerun line: how the user invoked rootprobe (default `npx rootprobe`). */
  invocation?: string;
  /** Extra arguments for the rerun line (e.g. --scenarios DIR). */
  rerunArgs?: string[];
  /** Images already prepared (runMatrix builds all of them before the first boot). */
  images?: PreparedImages;
}

const DEFAULT_TIMEOUT_SEC = 30;
const DEFAULT_MEMORY_MIB = 256;
/** After `done`, the guest powers off by itself; this long, then QEMU is stopped. */
const DONE_GRACE_MS = 5000;

export function artifactSlug(scenario: string, kernel: string): string {
  const slug = `${scenario}--${kernel}`.replace(/[^A-Za-z0-9._-]+/g, '_');
  // A file: kernel spec can be hundreds of characters; a folder name may have 255 bytes.
  return slug.length <= 120 ? slug : `${slug.slice(0, 100)}-${createHash('sha256').update(slug).digest('hex').slice(0, 12)}`;
}

function q(s: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(s) ? s : `'${s.replaceAll("'", "'\\''")}'`;
}

export function rerunLine(sc: Scenario, kernel: Kernel, opts: Pick<RunOptions, 'invocation' | 'rerunArgs'>): string {
  return [opts.invocation ?? 'npx rootprobe', 'run', sc.name, '--kernel', kernel.id, ...(opts.rerunArgs ?? []), '--keep']
    .map((a, i) => (i === 0 ? a : q(a)))
    .join(' ');
}

/** Boots `sc` on `kernel` once and returns its verdict with the evidence. */
export async function runScenario(sc: Scenario, kernel: Kernel, opts: RunOptions): Promise<RunRecord> {
  const started = Date.now();
  const factor = timeoutFactor(opts.accel);
  const deadlineMs = Math.round((sc.timeoutSec ?? DEFAULT_TIMEOUT_SEC) * 1000 * factor);
  const memoryMiB = sc.memoryMiB ?? DEFAULT_MEMORY_MIB;
  const record: RunRecord = {
    scenario: sc.name,
    kernel: kernel.id,
    kernelRelease: kernel.release,
    accel: opts.accel,
    outcome: 'error',
    durationMs: 0,
    stagesReported: [],
    stages: [],
    evidence: [],
    behaviours: [],
    consoleTail: [],
    memoryMiB,
    deadlineMs,
    warnings: [],
    rerun: rerunLine(sc, kernel, opts),
  };
  const emit = (e: RunEvent): void => opts.onEvent?.(e);
  const runDir = await makeTempDir(`rootprobe-${sc.name}-`);
  let boot: BootOutcome | undefined;
  const readback = new RunReadback();
  try {
    emit({ type: 'phase', scenario: sc.name, kernel: kernel.id, phase: 'images' });
    const images = opts.images ?? (await prepareImages(sc, kernel));
    record.warnings.push(...images.warnings);
    // No segments (a scenario with initramfs: false): no -initrd at all.
    const initrd = images.segments.length > 0 ? path.join(runDir, 'initrd.cpio') : undefined;
    if (initrd) await concatSegments(images.segments.map((s) => s.path), initrd);
    const disks: Record<string, { path: string }> = {};
    for (const d of images.disks) {
      const p = path.join(runDir, `disk-${d.name}.img`);
      await copyForRun(d.cachedPath, p);
      disks[d.name] = { path: p };
    }
    if (opts.signal?.aborted) throw new Error('interrupted before boot');

    emit({ type: 'phase', scenario: sc.name, kernel: kernel.id, phase: 'boot' });
    boot = await bootAndRead(
      {
        kernel: kernel.vmlinuz,
        initrd,
        append: [sc.cmdline, opts.extraCmdline].filter(Boolean).join(' '),
        disks: Object.values(disks).map((d) => ({ path: d.path })),
        memoryMiB,
        accel: opts.accel,
        runDir,
      },
      readback,
      {
        deadlineMs,
        signal: opts.signal,
        complete: (rb) => rb.done,
        graceMs: DONE_GRACE_MS,
        onStage: (stage) => emit({ type: 'stage', scenario: sc.name, kernel: kernel.id, stage, elapsedMs: Date.now() - started }),
        onConsole: (line) => emit({ type: 'console', scenario: sc.name, kernel: kernel.id, line }),
      },
    );

    record.consoleTail = boot.consoleTail;
    record.stagesReported = readback.names;
    record.stages = readback.stages.map((s) => s.toJSON());
    const verdict = await judge(sc, kernel, boot, readback, disks, record);
    record.outcome = verdict.outcome;
    record.message = verdict.message;
  } catch (e) {
    record.outcome = 'error';
    record.message = (e as Error).message;
    if (boot) record.consoleTail = boot.consoleTail;
  } finally {
    record.durationMs = Date.now() - started;
    try {
      if (record.outcome !== 'passed' || opts.keep) {
        record.artifacts = await keepArtifacts(runDir, sc.name, kernel, record, readback, boot, opts);
      }
    } finally {
      await removeTempDir(runDir);
    }
  }
  return record;
}

/** What the kernel said long before it panicked that explains the panic (it may have left the console tail). */
function earlier(boot: BootOutcome): string {
  const said = boot.notices.filter((l) => !boot.panicLine || !l.includes(boot.panicLine));
  if (said.length === 0) return '';
  return `; before that it said: ${said.slice(0, 3).map((l) => l.replace(/^\[\s*[0-9.]+\]\s*/, '')).join(' | ')}`;
}

/** When the guest ran out of memory or QEMU could not fit the initramfs: the sizes, and what to change. */
function memoryHint(boot: BootOutcome, record: Pick<RunRecord, 'memoryMiB'>): string {
  const text = `${boot.panicLine ?? ''}\n${boot.stderr}\n${boot.consoleTail.join('\n')}\n${boot.notices.join('\n')}`;
  if (!/initrd is too large|Initramfs unpacking failed|out of memory|deadlocked on memory|\boom-kill/i.test(text)) return '';
  const i = boot.argv.indexOf('-initrd');
  let size = '';
  try {
    if (i >= 0) size = `; the initramfs is ${(statSync(boot.argv[i + 1]).size / 2 ** 20).toFixed(1)} MiB`;
  } catch {
    /* gone */
  }
  return ` (out of guest memory: the guest has ${record.memoryMiB} MiB${size}, which must fit in memory, twice while the kernel unpacks it: raise the scenario's memoryMiB)`;
}

/** QEMU's stderr without the remains of its expected notice about our result socket. */
function qemuWords(stderr: string): string {
  return stderr
    .split('\n')
    .filter((l) => !/-chardev socket,id=res,.*: info: ?$/.test(l))
    .join('\n')
    .trim();
}

function lastLines(tail: string[], n = 20): string {
  return tail.slice(-n).map((l) => `    | ${l}`).join('\n');
}

/**
 * The verdict that needs no scenario check: QEMU did not start or was killed, a frame arrived
 * damaged, the kernel panicked, or a stage in `expected` never came (timeout or
 * missing-stage, with the stage waited for, the last one reached and the console's last
 * lines). Undefined when every expected stage arrived intact. `undeclared` words the error
 * for stages the guest sent that are not expected (omit it to allow extra stages).
 */
export function channelVerdict(
  boot: BootOutcome,
  readback: RunReadback,
  record: Pick<RunRecord, 'deadlineMs' | 'accel' | 'memoryMiB'>,
  expected: string[],
  opts: { undeclared?: (names: string[]) => string } = {},
): { outcome: Outcome; message?: string } | undefined {
  if (boot.end === 'spawn-error') return { outcome: 'error', message: `QEMU did not start: ${boot.stderr.trim()}` };
  if (readback.damaged.length > 0) {
    const d = readback.damaged[0];
    return { outcome: 'error', message: `the result frame of stage \`${d.stage}\` arrived damaged (${d.reason}): ${d.detail}` };
  }
  if (readback.unreadable.length > 0) {
    const u = readback.unreadable[0];
    return { outcome: 'error', message: `the snapshot of stage \`${u.stage}\` could not be read: ${u.error}` };
  }
  if (boot.end === 'panic') {
    return {
      outcome: 'panic',
      message: `the kernel panicked${readback.last ? ` after stage \`${readback.last.name}\`` : ' before any stage'}: ${boot.panicLine ?? ''}${earlier(boot)}${memoryHint(boot, record)}`,
    };
  }
  // QEMU ended by a signal nobody here sent (the OOM killer, a kill -9 from outside).
  if (boot.end === 'signal') {
    return {
      outcome: 'error',
      message: `QEMU was killed by ${boot.signal} (not by rootprobe)${readback.last ? ` after stage \`${readback.last.name}\`` : ' before any stage'}\n  last console lines:\n${lastLines(boot.consoleTail)}`,
    };
  }
  // QEMU refused to start the guest (e.g. "initrd is too large") or failed: its own words.
  if (boot.end === 'exited' && boot.exitCode !== 0 && readback.names.length === 0) {
    return { outcome: 'error', message: `QEMU exited with status ${boot.exitCode} before any stage: ${qemuWords(boot.stderr) || '(nothing on stderr)'}${memoryHint(boot, record)}` };
  }
  const guestError = readback.has('guest-error') ? readback.stage('guest-error').vars.message : undefined;
  const undeclared = readback.names.filter((n) => !expected.includes(n) && n !== 'guest-error');
  if (undeclared.length > 0 && opts.undeclared) return { outcome: 'error', message: opts.undeclared(undeclared) };
  const missing = expected.find((s) => !readback.has(s));
  if (missing) {
    const last = readback.last?.name;
    const reached = last ? `last stage reached: \`${last}\`` : 'no stage reported';
    const why = guestError ? `; the guest said: ${guestError}` : '';
    if (boot.end === 'deadline') {
      return {
        outcome: 'timeout',
        message: `waited ${(record.deadlineMs / 1000).toFixed(0)} s (${record.accel}) for stage \`${missing}\`; ${reached}${why}\n  last console lines:\n${lastLines(boot.consoleTail)}`,
      };
    }
    const how = boot.end === 'stopped' ? `the run was stopped (${boot.stopReason ?? 'interrupted'})` : 'QEMU exited';
    return {
      outcome: 'missing-stage',
      message: `stage \`${missing}\` never reported (${how}; ${reached})${why}\n  last console lines:\n${lastLines(boot.consoleTail)}`,
    };
  }
  return undefined;
}

/** Why bootAndRead stopped a guest that had said everything but kept running. */
export const GRACE_STOP_REASON = 'the guest reported everything but did not power off';

export interface BootAndReadOptions {
  deadlineMs: number;
  signal?: AbortSignal;
  /** True once the guest has said all it will: the boot then gets `graceMs` to power off before it is stopped. */
  complete: (readback: RunReadback) => boolean;
  graceMs: number;
  onStage?: (name: string) => void;
  onConsole?: (line: string) => void;
}

/**
 * Boots QEMU and turns its result channel into stages in `readback` as they arrive (frames
 * decoded, length and hash checked, snapshots parsed in order). Returns when QEMU is gone.
 */
export async function bootAndRead(spec: BootSpec, readback: RunReadback, opts: BootAndReadOptions): Promise<BootOutcome> {
  let parsing: Promise<void> = Promise.resolve();
  let graceTimer: NodeJS.Timeout | undefined;
  let control: { stop(reason: string): void } | undefined;
  const decoder = new FrameDecoder({
    onEvent: (ev: ReadbackEvent) => {
      parsing = parsing.then(async () => {
        const stage = await readback.addEvent(ev);
        if (stage) opts.onStage?.(stage.name);
        if (!graceTimer && opts.complete(readback)) {
          graceTimer = setTimeout(() => control?.stop(GRACE_STOP_REASON), opts.graceMs);
        }
      });
    },
  });
  const started = bootQemu(spec, {
    deadlineMs: opts.deadlineMs,
    signal: opts.signal,
    onResult: (chunk) => decoder.push(chunk),
    onConsole: (line) => opts.onConsole?.(line),
  });
  control = started.control;
  const boot = await started.outcome;
  if (graceTimer) clearTimeout(graceTimer);
  decoder.end();
  await parsing;
  return boot;
}

async function judge(
  sc: Scenario,
  kernel: Kernel,
  boot: BootOutcome,
  readback: RunReadback,
  disks: Record<string, { path: string }>,
  record: RunRecord,
): Promise<{ outcome: Outcome; message?: string }> {
  const expected = expectedStages(sc);
  const early = channelVerdict(boot, readback, record, expected, {
    undeclared: (names) =>
      `the guest probed stage(s) ${names.map((n) => `\`${n}\``).join(', ')} that scenario '${sc.name}' does not declare (${sc.file}); declared: ${expected.join(', ')}`,
  });
  if (early) return early;
  const ctx: CheckContext = {
    result: readback,
    stage: (name: string) => {
      if (!expected.includes(name)) {
        throw new Error(`scenario '${sc.name}' asserts on stage \`${name}\`, which it does not declare in stages (${sc.file})`);
      }
      return readback.stage(name);
    },
    expect: chai.expect,
    kernel,
    disks,
    evidence: (line) => record.evidence.push(line),
    behaviour: (name) => record.behaviours.push(name),
  };
  try {
    await sc.check(ctx);
    return { outcome: 'passed' };
  } catch (e) {
    const err = e as Error;
    if (err instanceof chai.AssertionError || err.name === 'AssertionError') return { outcome: 'failed', message: err.message };
    return { outcome: 'error', message: `scenario '${sc.name}' check threw: ${err.stack ?? err.message}` };
  }
}

/**
 * Moves the run's folder to where its artifacts are kept; copies it across file systems (a
 * tmpfs /tmp) or when ROOTPROBE_KEEP_TMP=1 keeps the temp folder too. A copy keeps the disk
 * images sparse (fs.cp writes out their holes: a kept 64 MiB loop disk with 13 MiB of data
 * took 64 MiB).
 */
export async function moveRunDir(runDir: string, dir: string): Promise<void> {
  if (!keepTmp()) {
    try {
      await fs.rename(runDir, dir);
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EXDEV') throw e;
    }
  }
  await fs.mkdir(dir, { recursive: true });
  for (const ent of await fs.readdir(runDir, { withFileTypes: true })) {
    const from = path.join(runDir, ent.name);
    const to = path.join(dir, ent.name);
    if (ent.isSocket()) continue;
    if (ent.isFile() && ent.name.endsWith('.img')) await copyForRun(from, to);
    else await fs.cp(from, to, { recursive: true });
  }
}

/**
 * Moves a run's folder to `<artifactsRoot>/<name>--<kernel>/` (replacing an older one) with
 * its readback, its record, a script that reruns the case through rootprobe and one that boots
 * the kept images with the run's exact QEMU command line.
 */
export async function keepArtifacts(
  runDir: string,
  name: string,
  kernel: Pick<Kernel, 'id'>,
  record: RunRecord,
  readback: RunReadback,
  boot: BootOutcome | undefined,
  opts: Pick<RunOptions, 'artifactsRoot'>,
): Promise<RunArtifacts> {
  const dir = path.resolve(opts.artifactsRoot, artifactSlug(name, kernel.id));
  await fs.rm(dir, { recursive: true, force: true });
  await fs.mkdir(path.dirname(dir), { recursive: true });
  await moveRunDir(runDir, dir);
  await fs.rm(path.join(dir, 'res.sock'), { force: true });
  const art: RunArtifacts = {
    dir,
    consoleLog: path.join(dir, 'console.log'),
    resultStream: path.join(dir, 'result.stream'),
    qemuCmdline: path.join(dir, 'qemu.cmdline'),
    readback: path.join(dir, 'readback.json'),
    reproduce: path.join(dir, 'reproduce.sh'),
  };
  await fs.writeFile(art.readback, JSON.stringify(readback.toJSON(), null, 1));
  await fs.writeFile(path.join(dir, 'run.json'), JSON.stringify({ ...record, artifacts: art }, null, 1));
  const projectDir = process.cwd();
  await fs.writeFile(
    art.reproduce,
    [
      '#!/bin/sh',
      `# Reruns just this case (${name} on ${kernel.id}) through rootprobe, keeping its artifacts:`,
      `cd ${q(projectDir)} && exec ${record.rerun} "$@"`,
      '',
    ].join('\n'),
    { mode: 0o755 },
  );
  if (boot) {
    // The exact QEMU command, rewritten to use the kept images, with the result channel
    // going to a file and the console on the terminal.
    const argv = standaloneArgv(boot.argv).map((a) => a.split(runDir).join('.'));
    await fs.writeFile(
      path.join(dir, 'qemu.sh'),
      ['#!/bin/sh', '# Boots the kept images with the exact QEMU command line of this run.', `cd "$(dirname "$0")" && exec ${shellLine(argv)}`, ''].join('\n'),
      { mode: 0o755 },
    );
  }
  return art;
}
