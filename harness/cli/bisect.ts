/**
 * `rootprobe bisect <scenario> --kernel git:<tree> --good <rev> --bad <rev> [--runs N]
 *  [--scenarios DIR]... [--json FILE] [--cmdline TEXT] [--allow-kernel-log REGEX]...`
 *
 * Finds the commit that changed a scenario's outcome: `git bisect` driven in rootprobe's own
 * clone of the repository (kernels/git.ts: objects shared, the user's checkout, index, HEAD and
 * refs never touched, also on Ctrl-C). At each step the kernel is built incrementally and the
 * scenario booted `--runs` times: every run passed is good; any `failed`, `panic` or
 * `missing-stage` is bad; a `timeout`, an `error` or a build that fails is `git bisect skip`.
 * Both ends are checked first (a "good" that does not pass is an error before any bisecting).
 * It ends with the first bad commit, its subject, and what the readback of the last good and
 * the first bad kernel differ in (as `rootprobe diff` shows it). The predicate is the
 * scenario: bisect any property of the mount tree or the process table by writing one.
 */
import { archOf } from '../arch/index.ts';
import { COMMANDS, parseCommand } from './options.ts';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { UsageError, SetupError } from '../errors.ts';
import { loadScenarios, pickScenarios } from '../../scenarios/index.ts';
import { kernelsForArch, parseKernelSpec, resolveKernel, type Kernel } from '../../kernels/index.ts';
import { checkoutRevision, git, type GitSpec } from '../../kernels/git.ts';
import { extrasSuffix, withCliExtras } from '../../kernels/spec-options.ts';
import { detectAccel } from '../qemu/accel.ts';
import { validateScenarios, withScenario } from '../validate.ts';
import { runScenario } from '../run/run-scenario.ts';
import type { RunRecord } from '../run/record.ts';
import { diffRuns, diffText } from '../report/diff.ts';
import { onCleanup } from '../lifecycle.ts';
import type { Scenario } from '../scenario.ts';
import { DEFAULTS } from '../plan/defaults.ts';

type Mark = 'good' | 'bad' | 'skip';

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
}

function markOf(runs: RunRecord[]): { mark: Mark; why: string } {
  const outcomes = runs.map((r) => r.outcome);
  const why = outcomes.join(', ');
  if (outcomes.some((o) => o === 'timeout' || o === 'error')) {
    const r = runs.find((x) => x.outcome === 'timeout' || x.outcome === 'error')!;
    return { mark: 'skip', why: `${why} (${r.message?.split('\n')[0] ?? ''})` };
  }
  if (outcomes.every((o) => o === 'passed')) return { mark: 'good', why };
  const r = runs.find((x) => x.outcome !== 'passed')!;
  return { mark: 'bad', why: `${why}: ${r.message?.split('\n')[0] ?? ''}` };
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
  let accel: 'kvm' | 'tcg' | undefined;

  const test = async (commit: string): Promise<BisectStep> => {
    const subj = await subject(commit);
    const spec = `git:${o.spec.path}@${commit}${extrasSuffix(o.spec.extras)}`;
    let kernel: Kernel;
    try {
      kernel = await resolveKernel(spec, { onProgress: (m) => o.say(`    build ${commit.slice(0, 12)}: ${m}`) });
    } catch (e) {
      if (e instanceof UsageError) throw e;
      return { commit, subject: subj, mark: 'skip', why: `the build failed: ${(e as Error).message.split('\n')[0]}`, runs: [] };
    }
    accel ??= (await detectAccel(kernel.vmlinuz, { arch: archOf(kernel) })).accel;
    const runs: RunRecord[] = [];
    for (let i = 0; i < o.runs; i++) {
      runs.push(
        await runScenario(o.scenario, kernel, {
          accel,
          artifactsRoot: o.artifactsRoot,
          extraCmdline: o.extraCmdline,
          allowKernelLog: o.allowKernelLog,
        }).catch((e) => Promise.reject(withScenario(e, o.scenario))),
      );
    }
    return { commit, subject: subj, ...markOf(runs), runs };
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
          lastGood: lastGood.runs.at(-1),
          firstBadRun: fb?.runs.at(-1),
        };
      }
      if (/There are only 'skip'ped commits left to test/.test(out)) {
        return { candidates: [...out.matchAll(/^([0-9a-f]{40})$/gm)].map((m) => m[1]), steps };
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

function regexes(list: string[] | undefined): RegExp[] {
  return (list ?? []).map((r) => {
    try {
      return new RegExp(r);
    } catch (e) {
      throw new UsageError(`--allow-kernel-log ${JSON.stringify(r)} is not a regular expression: ${(e as Error).message}`);
    }
  });
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
  const [sc] = pickScenarios(await loadScenarios(values.scenarios ?? []), positionals);
  validateScenarios([sc]);
  const started = Date.now();
  const result = await bisect({
    scenario: sc,
    spec,
    good: values.good,
    bad: values.bad,
    runs,
    extraCmdline: values.cmdline,
    allowKernelLog: regexes(values['allow-kernel-log']),
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
    const report = {
      schemaVersion: 1,
      kind: 'bisect',
      scenario: sc.name,
      kernel: spec.id,
      good: values.good,
      bad: values.bad,
      firstBad: result.firstBad,
      candidates: result.candidates,
      steps: result.steps.map((s) => ({
        commit: s.commit,
        subject: s.subject,
        mark: s.mark,
        why: s.why,
        outcomes: s.runs.map((r) => r.outcome),
      })),
      differences: result.lastGood && result.firstBadRun ? diffRuns(result.lastGood, result.firstBadRun) : [],
      runs: result.steps.flatMap((s) => s.runs),
    };
    await fs.mkdir(path.dirname(path.resolve(values.json)), { recursive: true });
    await fs.writeFile(values.json, JSON.stringify(report, null, 1) + '\n');
  }
  return result.firstBad ? 0 : 1;
}
