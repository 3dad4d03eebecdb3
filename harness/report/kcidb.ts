/**
 * A matrix run as KCIDB JSON (KernelCI's common report format, schema v5.3; written down in
 * schemas/kcidb.v5.3.schema.json), for `rootprobe run --kcidb FILE`.
 *
 *  - checkouts: one per kernel (the source the kernel came from). Where a kernel came from a
 *    git tree its git data goes here (`sources`, see KcidbOptions); no kernel provider knows
 *    one yet (Debian's are packages, build/<recipe> is Debian's linux-source, file: is a file),
 *    so today a checkout carries the spec and the release in `misc` only.
 *  - builds: one per kernel, architecture from the guest (x86_64, arm64, riscv), `config_name` the spec; PASS (the kernel was
 *    there to boot: rootprobe does not report a kernel it could not get as a build).
 *  - tests: one per scenario x kernel with the path `rootprobe.<scenario>` (the verdict of the
 *    whole run, the assertions included), and one per stage with the path
 *    `rootprobe.<scenario>.<stage>`: PASS when the guest reached the stage and its snapshot was
 *    read back, FAIL when a failed assertion names it (`... in stage "realroot" ...`); the first stage it did not reach gets the run's status (a panic before it is a
 *    FAIL, a timeout or a missing stage an ERROR, a broken harness or channel a MISS); the
 *    stages after that never ran and are not reported (they are named in the scenario test's
 *    `misc.stages_not_reached`). Flaky, the accelerator, the attempts, the behaviours and
 *    the evidence lines are in `misc`.
 *
 * Verdicts to KCIDB statuses: passed PASS; failed FAIL (an assertion about the kernel's
 * behaviour did not hold); panic FAIL (the kernel under test crashed); timeout and
 * missing-stage ERROR (the test did not complete; the kernel's fault or not is unknown);
 * error MISS (the harness, QEMU or the result channel broke: nothing is known of the kernel).
 */
import { randomUUID } from 'node:crypto';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { archByName, DEFAULT_ARCH } from '../arch/index.ts';
import type { MatrixReport } from './formats.ts';
import type { Outcome, RunRecord } from '../run/run-scenario.ts';

export const KCIDB_VERSION = { major: 5, minor: 3 } as const;
export const ORIGIN = 'rootprobe';

export type KcidbStatus = 'FAIL' | 'ERROR' | 'MISS' | 'PASS' | 'DONE' | 'SKIP';

export const STATUS: Record<Outcome, KcidbStatus> = {
  passed: 'PASS',
  failed: 'FAIL',
  panic: 'FAIL',
  timeout: 'ERROR',
  'missing-stage': 'ERROR',
  error: 'MISS',
  skipped: 'SKIP',
};

/** The git data of a kernel built from a git tree (the hook for a future git kernel provider). */
export interface GitSource {
  /** KCIDB takes https URLs only: a local tree without an https remote has none. */
  repositoryUrl?: string;
  commitHash: string;
  branch?: string;
  commitName?: string;
  tags?: string[];
  treeName?: string;
}

export interface KcidbOptions {
  /** Git data per kernel spec, for kernels that came from a git tree. */
  sources?: Record<string, GitSource>;
  /** The stages each scenario declares, in order, `done` included (expectedStages()): which
   * stage a run that stopped early did not reach. Without it only the reported stages are known. */
  stages?: Record<string, string[]>;
  /** Makes the ids unique per submission (default: a random UUID). */
  runId?: string;
}

interface Resource {
  name: string;
  url: string;
}

export interface KcidbTest {
  id: string;
  build_id: string;
  origin: string;
  path: string;
  status: KcidbStatus;
  comment?: string;
  duration?: number;
  start_time?: string;
  log_url?: string;
  log_excerpt?: string;
  output_files?: Resource[];
  environment?: { comment?: string; misc?: Record<string, unknown> };
  misc?: Record<string, unknown>;
}

export interface KcidbReport {
  version: { major: number; minor: number };
  checkouts: Array<Record<string, unknown>>;
  builds: Array<Record<string, unknown>>;
  tests: KcidbTest[];
}

/** A name as one level of a KCIDB path (letters, digits, _ and -; a dot would be a level). */
export function pathPart(name: string): string {
  return name.replace(/[^A-Za-z0-9_-]/g, '_') || '_';
}

const NUL = /\0/g;
const EXCERPT_MAX = 16384;

function text(s: string): string {
  return s.replace(NUL, '');
}

function excerpt(r: RunRecord): string | undefined {
  if (r.outcome === 'passed') return undefined;
  const parts = [r.message ?? r.outcome];
  if (r.consoleTail.length) parts.push('', 'last console lines:', ...r.consoleTail);
  const t = text(parts.join('\n'));
  return t.length <= EXCERPT_MAX ? t : `${t.slice(0, EXCERPT_MAX - 1)}…`;
}

function fileUrl(p: string): string {
  return pathToFileURL(path.resolve(p)).href;
}

function outputFiles(r: RunRecord): Resource[] | undefined {
  const a = r.artifacts;
  if (!a) return undefined;
  return [a.consoleLog, a.resultStream, a.readback, a.qemuCmdline, a.reproduce]
    .filter((f) => Boolean(f))
    .map((f) => ({ name: path.basename(f), url: fileUrl(f) }));
}

/** KCIDB's architecture of a build: the architecture table's `kcidbArch` (`x86_64`, `arm64`, `riscv`). */
export function kcidbArch(arch: string | undefined): string {
  return archByName(arch ?? DEFAULT_ARCH).kcidbArch;
}

/** The run's report as KCIDB v5.3 data. */
export function toKcidb(report: MatrixReport, opts: KcidbOptions = {}): KcidbReport {
  const runId = opts.runId ?? randomUUID();
  const kernels = [...new Set(report.runs.map((r) => r.kernel))];
  const checkoutId = (k: string): string => `${ORIGIN}:${runId}:checkout:${k}`;
  const buildId = (k: string): string => `${ORIGIN}:${runId}:build:${k}`;
  const release = (k: string): string | undefined => report.runs.find((r) => r.kernel === k && r.kernelRelease)?.kernelRelease;

  const checkouts = kernels.map((k) => {
    const git = opts.sources?.[k];
    const c: Record<string, unknown> = {
      id: checkoutId(k),
      origin: ORIGIN,
      start_time: report.startedAt,
      comment: text(`kernel ${k}`),
      misc: { kernel: k, ...(release(k) ? { kernel_release: release(k) } : {}) },
    };
    if (git) {
      if (git.repositoryUrl !== undefined) c.git_repository_url = git.repositoryUrl;
      c.git_commit_hash = git.commitHash;
      if (git.branch !== undefined) c.git_repository_branch = git.branch;
      if (git.commitName !== undefined) c.git_commit_name = git.commitName;
      if (git.tags !== undefined) c.git_commit_tags = git.tags;
      if (git.treeName !== undefined) c.tree_name = git.treeName;
    }
    return c;
  });

  const builds = kernels.map((k) => ({
    id: buildId(k),
    checkout_id: checkoutId(k),
    origin: ORIGIN,
    architecture: kcidbArch(report.runs.find((r) => r.kernel === k)?.arch),
    config_name: text(k),
    comment: text(`${k}${release(k) ? ` (${release(k)})` : ''}`),
    status: 'PASS' as KcidbStatus,
    misc: { kernel: k, ...(release(k) ? { kernel_release: release(k) } : {}) },
  }));

  const tests: KcidbTest[] = [];
  for (const r of report.runs) {
    const base = `${ORIGIN}.${pathPart(r.scenario)}`;
    const idBase = `${ORIGIN}:${runId}:test:${r.kernel}:${r.scenario}`;
    const environment = { comment: text(`QEMU (${r.accel}), ${r.memoryMiB} MiB`), misc: { accel: r.accel, kernel: r.kernel } };
    const expected = expectedStagesOf(r, opts.stages);
    const reached = new Set(r.stagesReported);
    const firstMissing = expected.find((s) => !reached.has(s));
    const notReached = firstMissing ? expected.slice(expected.indexOf(firstMissing) + 1).filter((s) => !reached.has(s)) : [];
    const log = r.artifacts?.consoleLog ? fileUrl(r.artifacts.consoleLog) : undefined;
    const logExcerpt = excerpt(r);
    tests.push({
      id: idBase,
      build_id: buildId(r.kernel),
      origin: ORIGIN,
      path: base,
      status: STATUS[r.outcome],
      comment: text(`${r.scenario} on ${r.kernel}: ${r.outcome}`),
      duration: r.durationMs / 1000,
      ...(log ? { log_url: log } : {}),
      ...(logExcerpt ? { log_excerpt: logExcerpt } : {}),
      ...(outputFiles(r) ? { output_files: outputFiles(r) } : {}),
      environment,
      misc: {
        outcome: r.outcome,
        flaky: Boolean(r.flaky),
        accel: r.accel,
        kernel: r.kernel,
        kernel_release: r.kernelRelease,
        attempts: (r.attempts ?? []).map((a) => ({ outcome: a.outcome, status: STATUS[a.outcome], duration: a.durationMs / 1000 })),
        behaviours: r.behaviours,
        evidence: r.evidence,
        stages_reported: r.stagesReported,
        ...(notReached.length ? { stages_not_reached: notReached } : {}),
        rerun: r.rerun,
      },
    });
    // an assertion that failed names its stage (`in stage "realroot"`): that stage fails too
    const blamed = r.outcome === 'failed' ? [...(r.message ?? '').matchAll(/\bstage "([^"]+)"/g)].map((m) => m[1]) : [];
    let previousUptime: number | null = null;
    for (const stage of expected) {
      const snap = r.stages.find((s) => s.name === stage);
      const isReached = reached.has(stage);
      if (!isReached && stage !== firstMissing) continue;
      const uptime = snap?.uptime ?? null;
      // a passed or failed run reported every stage; one that did not is the harness's doing
      const status: KcidbStatus = !isReached
        ? STATUS[r.outcome === 'passed' || r.outcome === 'failed' ? 'error' : r.outcome]
        : blamed.includes(stage)
          ? 'FAIL'
          : 'PASS';
      tests.push({
        id: `${idBase}:${stage}`,
        build_id: buildId(r.kernel),
        origin: ORIGIN,
        path: `${base}.${pathPart(stage)}`,
        status,
        comment: text(
          !isReached
            ? `stage ${stage} not reached: ${r.outcome}`
            : status === 'FAIL'
              ? `stage ${stage}: an assertion on it failed`
              : `stage ${stage} reached and read back`,
        ),
        ...(uptime !== null && previousUptime !== null ? { duration: Math.max(0, uptime - previousUptime) } : {}),
        ...((!isReached || status === 'FAIL') && logExcerpt ? { log_excerpt: logExcerpt } : {}),
        ...(!isReached && log ? { log_url: log } : {}),
        environment,
        misc: {
          flaky: Boolean(r.flaky),
          accel: r.accel,
          uptime,
          ...(snap ? { processes: snap.processes.length, mounts: snap.mountinfo.length } : {}),
        },
      });
      if (uptime !== null) previousUptime = uptime;
    }
  }
  return { version: { ...KCIDB_VERSION }, checkouts, builds, tests };
}

/** The stages a run was to report, in order: the scenario's declared ones (with `done`). */
function expectedStagesOf(r: RunRecord, declared: Record<string, string[]> | undefined): string[] {
  const out = [...(declared?.[r.scenario] ?? [])];
  for (const s of r.stagesReported) if (!out.includes(s)) out.push(s);
  return out;
}

export function toKcidbJson(report: MatrixReport, opts: KcidbOptions = {}): string {
  return JSON.stringify(toKcidb(report, opts), null, 1) + '\n';
}
