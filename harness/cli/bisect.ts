/**
 * `rootprobe bisect <scenario> --kernel git:<tree> --good <rev> --bad <rev> [--runs N]
 *  [--scenarios DIR]... [--json FILE] [--cmdline TEXT] [--allow-kernel-log REGEX]...`
 *
 * Finds the commit that changed a scenario's outcome: `git bisect` driven in rootprobe's own
 * clone of the repository (kernels/git.ts: objects shared, the user's checkout, index, HEAD and
 * refs never touched, also on Ctrl-C). At each step the kernel is built incrementally and the
 * scenario booted `--runs` times: every run passed is good; any `failed`, `panic` or
 * `missing-stage` is bad (one of N is enough); otherwise a `timeout`, an `error` or a build
 * that fails is `git bisect skip` (stepMark).
 * Both ends are checked first (a "good" that does not pass is an error before any bisecting).
 * It ends with the first bad commit, its subject, and what the readback of the last good and
 * the first bad kernel differ in (as `rootprobe diff` shows it). The predicate is the
 * scenario: bisect any property of the mount tree or the process table by writing one.
 */
import { archOf } from '../arch/index.ts';
import { allowKernelLogOption, COMMANDS, parseCommand } from './options.ts';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { UsageError, SetupError } from '../errors.ts';
import { loadNamedScenarios } from '../../scenarios/index.ts';
import { kernelsForArch, parseKernelSpec, resolveKernel, type Kernel } from '../../kernels/index.ts';
import { checkoutRevision, git, type GitSpec } from '../../kernels/git.ts';
import { extrasSuffix, withCliExtras } from '../../kernels/spec-options.ts';
import { detectAccel } from '../qemu/accel.ts';
import { validateScenarios, withScenario } from '../validate.ts';
import { runScenario } from '../run/run-scenario.ts';
import type { RunRecord } from '../run/record.ts';
import { diffRuns, diffText } from '../report/diff.ts';
import { reportObject, runsReport, type BisectEntry, type BisectStepEntry, type JsonReport } from '../report/json.ts';
import { onCleanup } from '../lifecycle.ts';
import type { Scenario } from '../scenario.ts';
import { DEFAULTS } from '../plan/defaults.ts';

export type Mark = 'good' | 'bad' | 'skip';

export interface BisectStep {
  commit: string;
  subject: string;
  mark: Mark;
  /** Why: the outcomes of the runs, or the build error. */
  why: string;
  runs: RunRecord[];
}

export interface BisectResult {
  firstBad?: { commit: string; subject: string };
  /** git bisect could not tell (skipped commits): the candidates it names. */
  candidates?: string[];
  steps: BisectStep[];
  lastGood?: RunRecord;
  firstBadRun?: RunRecord;
  /** The commits the ends named (--good, --bad). */
  good: string;
  bad: string;
  /** The accelerator the runs used, and why (the KVM probe's verdict). */
  accel: 'kvm' | 'tcg';
  accelReason: string;
}

/** Outcomes that say nothing about the commit: the boot could not be judged. */
const UNJUDGED = new Set<string>(['timeout', 'error']);

/**
 * The mark of one bisect step: from its build, when that failed (`skip`: the commit cannot be
 * tested), else from its `--runs` runs. Every run passed: `good`. Any run that failed, panicked
 * or lost a stage: `bad`, also when another run of the step timed out or broke (one failing run
 * of N is enough: the behaviour was seen). Otherwise a `timeout` or an `error`: `skip`.
 */
export function stepMark(step: { buildError: string } | { runs: Array<Pick<RunRecord, 'outcome' | 'message'>> }): {
  mark: Mark;
  why: string;
} {
  if ('buildError' in step) return { mark: 'skip', why: `the build failed: ${step.buildError.split('\n')[0]}` };
  const { runs } = step;
  if (runs.length === 0) throw new Error('internal: a bisect step with no runs and no build error');
  const why = runs.map((r) => r.outcome).join(', ');
  const first = (r: Pick<RunRecord, 'message'> | undefined): string => r?.message?.split('\n')[0] ?? '';
  if (runs.every((r) => r.outcome === 'passed')) return { mark: 'good', why };
  const bad = runs.find((r) => r.outcome !== 'passed' && !UNJUDGED.has(r.outcome));
  if (bad) return { mark: 'bad', why: `${why}: ${first(bad)}` };
  return { mark: 'skip', why: `${why} (${first(runs.find((r) => UNJUDGED.has(r.outcome)))})` };
}

/**
 * The run of a step whose readback the difference shows: of a bad step its first run that did
 * not pass (with `--runs N` others may have passed: comparing one of those shows nothing), of
 * any other its last.
 */
export function shownRun(step: Pick<BisectStep, 'mark' | 'runs'>): RunRecord | undefined {
  return (step.mark === 'bad' ? step.runs.find((r) => r.outcome !== 'passed') : undefined) ?? step.runs.at(-1);
}

export interface BisectOptions {
  scenario: Scenario;
  spec: GitSpec;
  good: string;
  bad: string;
  runs: number;
  extraCmdline?: string;
  allowKernelLog?: RegExp[];
  artifactsRoot: string;
  say: (line: string) => void;
}

export async function bisect(o: BisectOptions): Promise<BisectResult> {
  const top = (await git(o.spec.path, ['rev-parse', '--show-toplevel']).catch(() => '')).trim();
  if (!top) throw new UsageError(`bisect needs a git work tree: ${o.spec.path} is not one`);
  const commitOf = async (rev: string, what: string): Promise<string> => {
    const c = (await git(top, ['rev-parse', '--verify', '--quiet', `${rev}^{commit}`]).catch(() => '')).trim();
    if (!c) throw new UsageError(`bisect: ${what} revision ${rev} does not exist in ${top}`);
    return c;
  };
  const good = await commitOf(o.good, '--good');
  const bad = await commitOf(o.bad, '--bad');
  const isAncestor = await git(top, ['merge-base', '--is-ancestor', good, bad]).then(
    () => true,
    () => false,
  );
  if (!isAncestor) throw new UsageError(`bisect: --good ${o.good} is not an ancestor of --bad ${o.bad}`);
  const subject = async (c: string): Promise<string> => (await git(top, ['log', '-1', '--format=%s', c])).trim();
  let accel: { accel: 'kvm' | 'tcg'; reason: string } | undefined;

  const test = async (commit: string): Promise<BisectStep> => {
    const subj = await subject(commit);
    const spec = `git:${o.spec.path}@${commit}${extrasSuffix(o.spec.extras)}`;
    let kernel: Kernel;
    try {
      kernel = await resolveKernel(spec, { onProgress: (m) => o.say(`    build ${commit.slice(0, 12)}: ${m}`) });
    } catch (e) {
      if (e instanceof UsageError) throw e;
      return { commit, subject: subj, ...stepMark({ buildError: (e as Error).message }), runs: [] };
    }
    accel ??= await detectAccel(kernel.vmlinuz, { arch: archOf(kernel) });
    const runs: RunRecord[] = [];
    for (let i = 0; i < o.runs; i++) {
      runs.push(
        await runScenario(o.scenario, kernel, {
          accel: accel.accel,
          artifactsRoot: o.artifactsRoot,
          extraCmdline: o.extraCmdline,
          allowKernelLog: o.allowKernelLog,
        }).catch((e) => Promise.reject(withScenario(e, o.scenario))),
      );
    }
    return { commit, subject: subj, ...stepMark({ runs }), runs };
  };
  const show = (label: string, s: BisectStep): void => o.say(`${label} ${s.commit.slice(0, 12)} ${s.subject}: ${s.mark} (${s.why})`);

  const steps: BisectStep[] = [];
  o.say(`bisect: checking the ends first`);
  const goodStep = await test(good);
  steps.push(goodStep);
  show('  good end', goodStep);
  if (goodStep.mark !== 'good') {
    throw new SetupError(`bisect: the --good revision ${o.good} (${good.slice(0, 12)}) does not pass ${o.scenario.name}: ${goodStep.why}`);
  }
  const badStep = await test(bad);
  steps.push(badStep);
  show('  bad end ', badStep);
  if (badStep.mark !== 'bad') {
    throw new SetupError(
      `bisect: the --bad revision ${o.bad} (${bad.slice(0, 12)}) ${badStep.mark === 'good' ? 'passes' : 'cannot be judged'} ${o.scenario.name}: ${badStep.why}`,
    );
  }

  // git bisect in rootprobe's clone (checkoutRevision made it), with --no-checkout: the
  // checkout of each step is checkoutRevision's, so it stays incremental.
  const { tree: clone } = await checkoutRevision(top, good, () => {});
  const reset = (): Promise<unknown> => git(clone, ['bisect', 'reset', '--quiet']).catch(() => undefined);
  const undo = onCleanup(reset);
  // Both ends booted (their marks are good and bad, which no failed build gives): accel is known.
  const ran = { good, bad, accel: accel!.accel, accelReason: accel!.reason };
  const byCommit = new Map<string, BisectStep>([
    [good, goodStep],
    [bad, badStep],
  ]);
  try {
    await git(clone, ['bisect', 'reset', '--quiet']).catch(() => undefined);
    let out = await git(clone, ['bisect', 'start', '--no-checkout', bad, good]);
    for (let n = 1; ; n++) {
      const done = /^([0-9a-f]{40}) is the first bad commit/m.exec(out);
      if (done) {
        const firstBad = done[1];
        const fb = byCommit.get(firstBad);
        const parent = (await git(top, ['rev-parse', `${firstBad}^`])).trim();
        const lastGood = byCommit.get(parent) ?? goodStep;
        return {
          firstBad: { commit: firstBad, subject: await subject(firstBad) },
          steps,
          lastGood: shownRun(lastGood),
          firstBadRun: fb && shownRun(fb),
          ...ran,
        };
      }
      if (/There are only 'skip'ped commits left to test/.test(out)) {
        return { candidates: [...out.matchAll(/^([0-9a-f]{40})$/gm)].map((m) => m[1]), steps, ...ran };
      }
      const current = (await git(clone, ['rev-parse', 'BISECT_HEAD'])).trim();
      const left = /\(roughly (\d+) steps?\)/.exec(out)?.[1];
      o.say(`  step ${n}${left !== undefined ? ` (about ${left} more after this)` : ''}: testing ${current.slice(0, 12)}`);
      const s = await test(current);
      steps.push(s);
      byCommit.set(current, s);
      show('   ', s);
      out = await git(clone, ['bisect', s.mark, current]);
    }
  } finally {
    await reset();
    undo();
  }
}

/**
 * The --json of a bisect: the one report shape (schemas/report.schema.json) with command
 * `bisect`, every run it booted in runs[] (the ends first, then each step's, in order) and its
 * own part in `bisect`: the steps (their runs as indexes into runs[]), the first bad commit (or
 * the candidates) and the readback difference of the last good and the first bad run.
 */
export function bisectReport(
  result: BisectResult,
  given: { scenario: string; kernel: string; good: string; bad: string; startedAt: Date },
): JsonReport {
  const runs: RunRecord[] = [];
  const indexOf = new Map<RunRecord, number>();
  const steps: BisectStepEntry[] = result.steps.map((s) => ({
    commit: s.commit,
    subject: s.subject,
    mark: s.mark,
    why: s.why,
    runs: s.runs.map((r) => {
      indexOf.set(r, runs.length);
      return runs.push(r) - 1;
    }),
  }));
  const compared = result.firstBad && result.lastGood && result.firstBadRun ? [result.lastGood, result.firstBadRun] : undefined;
  const at = (r: RunRecord): number => {
    const i = indexOf.get(r);
    if (i === undefined) throw new Error('internal: a bisect compares a run that is not one of its steps');
    return i;
  };
  const bisect: BisectEntry = {
    scenario: given.scenario,
    kernel: given.kernel,
    good: { rev: given.good, commit: result.good },
    bad: { rev: given.bad, commit: result.bad },
    ...(result.firstBad ? { firstBad: result.firstBad } : {}),
    ...(result.candidates ? { candidates: result.candidates } : {}),
    steps,
    ...(compared ? { lastGoodRun: at(compared[0]), firstBadRun: at(compared[1]) } : {}),
    differences: compared ? diffRuns(compared[0], compared[1]) : [],
  };
  return reportObject(runsReport(runs, result.accel, result.accelReason, given.startedAt), 'bisect', { bisect });
}

/** bisectReport as written to the --json file. */
export function bisectReportJson(result: BisectResult, given: Parameters<typeof bisectReport>[1]): string {
  return JSON.stringify(bisectReport(result, given), null, 1) + '\n';
}

export async function cmdBisect(args: string[]): Promise<number> {
  const parsed = await parseCommand(COMMANDS.bisect, args);
  if (parsed.help) return 0;
  const { values, positionals } = parsed;
  const usage = 'usage: rootprobe bisect <scenario> --kernel git:<tree> --good <rev> --bad <rev> [--runs N]';
  if (positionals.length !== 1 || !values.kernel || !values.good || !values.bad) throw new UsageError(usage);
  const [named] = kernelsForArch([values.kernel], values.arch, values.kernel);
  const spec = parseKernelSpec(withCliExtras(named, values['config-add'] ?? [], values.fragment ?? [])) as GitSpec;
  if (spec.kind !== 'git') throw new UsageError(`bisect needs a git: kernel (a kernel source tree in git), not ${values.kernel}\n${usage}`);
  if (spec.rev) throw new UsageError(`bisect: give the tree without @${spec.rev}; the revisions come from --good and --bad`);
  const runs = Number(values.runs ?? 1);
  if (!Number.isInteger(runs) || runs < 1 || runs > 100)
    throw new UsageError(`--runs takes a whole number from 1 to 100 (got '${values.runs}')`);
  const [sc] = await loadNamedScenarios(positionals, values.scenarios ?? []);
  validateScenarios([sc]);
  const started = Date.now();
  const result = await bisect({
    scenario: sc,
    spec,
    good: values.good,
    bad: values.bad,
    runs,
    extraCmdline: values.cmdline,
    allowKernelLog: allowKernelLogOption(values['allow-kernel-log']),
    artifactsRoot: values.artifacts ?? DEFAULTS.artifactsRoot,
    say: (l) => process.stderr.write(`${l}\n`),
  });
  const out: string[] = [];
  if (result.firstBad) {
    out.push(`first bad commit: ${result.firstBad.commit} ${result.firstBad.subject}`);
    out.push(`  (${sc.name}; ${result.steps.length} kernels tested in ${Math.round((Date.now() - started) / 1000)} s)`);
    if (result.lastGood && result.firstBadRun) {
      const d = diffRuns(result.lastGood, result.firstBadRun);
      out.push(
        '',
        'what the readback of the last good and the first bad kernel differ in:',
        diffText(result.lastGood, result.firstBadRun, d),
      );
    }
  } else {
    out.push(`bisect could not tell (skipped commits); the first bad commit is one of:`, ...(result.candidates ?? []).map((c) => `  ${c}`));
  }
  process.stdout.write(out.join('\n') + '\n');
  if (values.json) {
    const text = bisectReportJson(result, {
      scenario: sc.name,
      kernel: spec.id,
      good: values.good,
      bad: values.bad,
      startedAt: new Date(started),
    });
    await fs.mkdir(path.dirname(path.resolve(values.json)), { recursive: true });
    await fs.writeFile(values.json, text);
  }
  return result.firstBad ? 0 : 1;
}
