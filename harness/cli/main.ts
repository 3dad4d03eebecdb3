/**
 * The rootprobe command line.
 *
 *   rootprobe run [scenario...] [--all] [--kernel K]... [--jobs N] [--json FILE] [--junit FILE]
 *                 [--tap FILE|-] [--artifacts DIR] [--keep] [--scenarios DIR]...
 *   rootprobe shell <scenario> [--kernel K] [--stage S]      (shell.ts)
 *   rootprobe build <scenario> [--kernel K] --out DIR        (build.ts)
 *   rootprobe junit-merge OUT IN...                          (shard.ts)
 *   rootprobe list [--scenarios DIR]...
 *   rootprobe show RUN.json [--stage S] [--run N]             (show.ts)
 *   rootprobe report RUN.json --html FILE                    (show.ts)
 *   rootprobe kernels
 *   rootprobe doctor [--install] [--browser]
 *   rootprobe new <name> [--disk] [--dir DIR]                (new.ts)
 *   rootprobe bisect <scenario> --kernel git:<tree> --good REV --bad REV   (bisect.ts)
 *
 * Every command's options are one table in options.ts, read by its parser and by its --help.
 *
 * Exit status: 0 when every run passed or was skipped, 1 when any did not, 2 on bad usage or missing setup,
 * 3 when a report file could not be written (named on stderr after the summary, which is printed).
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { isPeopleError, UsageError } from '../errors.ts';
import { DEFAULTS } from '../plan/defaults.ts';
import { cleanupAll } from '../lifecycle.ts';
import { sweepLeftovers } from '../sweep.ts';
import { foldMessage } from '../report/fold.ts';
import { allowKernelLogOption, COMMANDS, helpText, loadHelpContext, parseCommand, usageText, type CommandSpec } from './options.ts';
import { checkOutputs, EXIT_REPORT_LOST, lostText, writeOutput, writeReports } from '../report/outputs.ts';
import type { DiffEntry } from '../report/json.ts';
import type { DiffPair } from '../report/html.ts';
// Booting, reporting and the other commands are imported by the command that needs them, so
// that `rootprobe list` or a usage error loads only what it uses (start-up time).
import { bootOptions } from '../firmware/cli.ts';

export const DEFAULT_KERNEL = DEFAULTS.kernel;

/** The top-level help, from the command tables of options.ts and the kernel-provider registry (loaded then). */
async function usage(): Promise<string> {
  return usageText(await loadHelpContext());
}

const writeOut = writeOutput;

/** KCIDB's checkout data of the runs' git: kernels: the commit, its subject, an https remote if the tree has one. */
function gitSources(runs: Array<{ kernel: string; kernelGit?: { commit: string; subject?: string; remoteUrl?: string } }>) {
  const out: Record<string, { commitHash: string; repositoryUrl?: string; commitName?: string }> = {};
  for (const r of runs) {
    if (!r.kernelGit) continue;
    out[r.kernel] = {
      commitHash: r.kernelGit.commit,
      ...(r.kernelGit.remoteUrl ? { repositoryUrl: r.kernelGit.remoteUrl } : {}),
      ...(r.kernelGit.subject ? { commitName: r.kernelGit.subject } : {}),
    };
  }
  return out;
}

/** The names in order, each once; a name given more than once gets a note (it runs once). */
function once(names: string[], what: string): string[] {
  const seen = new Map<string, number>();
  for (const n of names) seen.set(n, (seen.get(n) ?? 0) + 1);
  for (const [n, count] of seen) {
    if (count > 1) process.stderr.write(`rootprobe: note: ${what} ${n} is named ${count} times; it runs once\n`);
  }
  return [...seen.keys()];
}

function nonNegativeInt(v: string | undefined, name: string, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`${name} takes a whole number of at least 0 (got '${v}')`);
  return n;
}

function positiveInt(v: string | undefined, name: string, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${name} takes a whole number of at least 1 (got '${v}')`);
  return n;
}

async function cmdRun(args: string[]): Promise<number> {
  // rootprobe run external --initramfs FILE --kernel K ...: a distro's own initramfs (harness/external)
  if (args[0] === 'external') return (await import('../external/cli.ts')).cmdRunExternal(args.slice(1));
  const parsed = await parseCommand(COMMANDS.run, args);
  if (parsed.help) return 0;
  const { values, positionals } = parsed;
  const { firmware, boot } = bootOptions(values);
  const allowKernelLog = allowKernelLogOption(values['allow-kernel-log']);
  const { resolveShard } = await import('../run/shard.ts');
  const shard = values.shard !== undefined ? resolveShard(values.shard) : undefined;
  if (shard && shard.from !== '--shard') process.stderr.write(`shard ${shard.index}/${shard.count} (from ${shard.from})\n`);
  const [{ parseKernelSpec, kernelsForArch }, { withCliExtras }, { loadScenarios, loadNamedScenarios }] = await Promise.all([
    import('../../kernels/index.ts'),
    import('../../kernels/spec-options.ts'),
    import('../../scenarios/index.ts'),
  ]);
  const kernels = once(kernelsForArch(values.kernel, values.arch, DEFAULT_KERNEL), 'kernel').map((k) =>
    withCliExtras(k, values['config-add'] ?? [], values.fragment ?? []),
  );
  for (const k of kernels) parseKernelSpec(k); // a bad spec is a usage error before anything runs
  const jobs = positiveInt(values.jobs, '--jobs', os.availableParallelism());
  if (positionals.length > 0 && values.all) throw new UsageError('name scenarios or give --all, not both');
  const chosen =
    positionals.length > 0
      ? await loadNamedScenarios(once(positionals, 'scenario'), values.scenarios ?? [])
      : await loadScenarios(values.scenarios ?? []);
  const rerunArgs = (values.scenarios ?? []).flatMap((d) => ['--scenarios', path.resolve(d)]);
  const artifactsRoot = values.artifacts ?? DEFAULTS.artifactsRoot;
  // Every output is checked before the first download or boot (exit 2 naming it).
  await checkOutputs([
    { flag: '--artifacts', path: artifactsRoot, kind: 'folder' },
    values.json !== undefined ? { flag: '--json', path: values.json, kind: 'file' } : undefined,
    values.junit !== undefined ? { flag: '--junit', path: values.junit, kind: 'file' } : undefined,
    values.tap !== undefined ? { flag: '--tap', path: values.tap, kind: 'file', allowDash: true } : undefined,
    values.evidence !== undefined ? { flag: '--evidence', path: values.evidence, kind: 'file' } : undefined,
    values.html !== undefined ? { flag: '--html', path: values.html, kind: 'file', allowDash: true } : undefined,
    values.kcidb !== undefined ? { flag: '--kcidb', path: values.kcidb, kind: 'file', allowDash: true } : undefined,
  ]);
  const [{ runMatrix }, { expectedStages }] = await Promise.all([import('../run/matrix.ts'), import('../scenario.ts')]);
  // The report writers are not needed before the first boot: loaded while it runs.
  let writers: Promise<typeof import('../report/writers.ts')> | undefined;
  const reportWriters = () => (writers ??= import('../report/writers.ts'));
  const kcidbOpts = { stages: Object.fromEntries(chosen.map((s) => [s.name, expectedStages(s)])) };
  const report = await runMatrix(chosen, kernels, {
    onFirstBoot: () => void reportWriters().catch(() => {}),
    jobs,
    artifactsRoot,
    keep: values.keep ?? false,
    extraCmdline: values.cmdline,
    rerunArgs,
    shard,
    retries: nonNegativeInt(values.retries, '--retries', 0),
    allowKernelLog,
    firmware,
    boot,
    partialReport: async (partial) => {
      const { toJUnit, evidenceMarkdown, toKcidbJson, reportJson, reportHtml, artifactConsoleLog } = await reportWriters();
      process.stderr.write(
        lostText(
          await writeReports([
            { flag: '--json', path: values.json, text: () => reportJson(partial, 'run') },
            { flag: '--html', path: values.html, text: () => reportHtml(partial, { consoleLog: artifactConsoleLog }) },
            { flag: '--junit', path: values.junit, text: () => toJUnit(partial) },
            { flag: '--evidence', path: values.evidence, text: () => evidenceMarkdown(partial, chosen) },
            { flag: '--kcidb', path: values.kcidb, text: () => toKcidbJson(partial, { ...kcidbOpts, sources: gitSources(partial.runs) }) },
          ]),
        ),
      );
    },
  });
  // A report that cannot be written does not stop the others nor the summary; it is named after it.
  const { toJUnit, toTap, evidenceMarkdown, summaryText, toKcidbJson, reportJson, reportHtml, artifactConsoleLog } = await reportWriters();
  const lost = await writeReports([
    { flag: '--json', path: values.json, text: () => reportJson(report, 'run') },
    { flag: '--html', path: values.html, text: () => reportHtml(report, { consoleLog: artifactConsoleLog }) },
    { flag: '--junit', path: values.junit, text: () => toJUnit(report) },
    { flag: '--tap', path: values.tap, text: () => toTap(report) },
    { flag: '--evidence', path: values.evidence, text: () => evidenceMarkdown(report, chosen) },
    { flag: '--kcidb', path: values.kcidb, text: () => toKcidbJson(report, { ...kcidbOpts, sources: gitSources(report.runs) }) },
  ]);
  process.stdout.write(summaryText(report, Boolean(process.stdout.isTTY) && !process.env.CI));
  process.stderr.write(lostText(lost));
  // A shard may be empty (more shards than cells): nothing failed.
  // A skipped cell (its scenario does not apply to that kernel) is not a pass, nor a failure.
  const passed = (report.runs.length > 0 || shard) && report.runs.every((r) => r.outcome === 'passed' || r.outcome === 'skipped');
  return lost.length ? EXIT_REPORT_LOST : passed ? 0 : 1;
}

async function cmdJunitMerge(args: string[]): Promise<number> {
  const parsed = await parseCommand(COMMANDS['junit-merge'], args);
  if (parsed.help) return 0;
  const [out, ...inputs] = parsed.positionals;
  if (!out || inputs.length === 0) throw new UsageError('usage: rootprobe junit-merge OUT IN... (see: rootprobe junit-merge --help)');
  await checkOutputs([{ flag: 'OUT', path: out, kind: 'file', allowDash: true }]);
  const docs = [];
  for (const f of inputs) {
    const text = await fs.readFile(f, 'utf8').catch(() => {
      throw new UsageError(`cannot read JUnit report ${f}`);
    });
    docs.push({ name: f, text });
  }
  const { junitMerge } = await import('../run/shard.ts');
  await writeOut(out, junitMerge(docs));
  return 0;
}

/** `diff --kernel A --kernel B [scenario...]`: exit 0 when the readback is the same, 1 when it differs, as diff(1). */
async function cmdDiff(args: string[]): Promise<number> {
  const parsed = await parseCommand(COMMANDS.diff, args);
  if (parsed.help) return 0;
  const { values, positionals } = parsed;
  const [
    { parseKernelSpec, kernelsForArch },
    { loadScenarios, pickScenarios },
    { runMatrix },
    { diffRuns, diffText },
    { reportJson },
    { diffHtml },
  ] = await Promise.all([
    import('../../kernels/index.ts'),
    import('../../scenarios/index.ts'),
    import('../run/matrix.ts'),
    import('../report/diff.ts'),
    import('../report/json.ts'),
    import('../report/html.ts'),
  ]);
  const given = values.kernel ?? [];
  if (given.length !== 2) throw new UsageError(`diff takes exactly two --kernel options (got ${given.length})`);
  const kernels = kernelsForArch(given, values.arch, DEFAULT_KERNEL);
  for (const k of kernels) parseKernelSpec(k);
  const all = await loadScenarios(values.scenarios ?? []);
  const chosen = positionals.length > 0 ? pickScenarios(all, once(positionals, 'scenario')) : all;
  const jobs = positiveInt(values.jobs, '--jobs', os.availableParallelism());
  const artifactsRoot = values.artifacts ?? DEFAULTS.artifactsRoot;
  await checkOutputs([
    { flag: '--artifacts', path: artifactsRoot, kind: 'folder' },
    values.json !== undefined ? { flag: '--json', path: values.json, kind: 'file' } : undefined,
    values.html !== undefined ? { flag: '--html', path: values.html, kind: 'file', allowDash: true } : undefined,
  ]);
  const report = await runMatrix(chosen, kernels, {
    jobs,
    artifactsRoot,
    keep: false,
    retries: nonNegativeInt(values.retries, '--retries', 0),
  });
  const ids = [...new Set(report.runs.map((r) => r.kernel))];
  let differs = false;
  const out: DiffEntry[] = [];
  const pairs: DiffPair[] = [];
  for (const sc of chosen) {
    const a = report.runs.find((r) => r.scenario === sc.name && r.kernel === ids[0]);
    const b = report.runs.find((r) => r.scenario === sc.name && r.kernel === ids[1]);
    if (!a || !b) continue;
    const d = diffRuns(a, b);
    if (d.length) differs = true;
    out.push({ scenario: sc.name, a: a.kernel, b: b.kernel, differences: d });
    pairs.push({ scenario: sc.name, a, b, differences: d });
    process.stdout.write(diffText(a, b, d) + '\n');
  }
  const lost = await writeReports([
    { flag: '--json', path: values.json, text: () => reportJson(report, 'diff', { kernels: ids, diffs: out }) },
    { flag: '--html', path: values.html, text: () => diffHtml(ids, pairs) },
  ]);
  process.stderr.write(lostText(lost));
  return lost.length ? EXIT_REPORT_LOST : differs ? 1 : 0;
}

async function cmdList(args: string[]): Promise<number> {
  const parsed = await parseCommand(COMMANDS.list, args);
  if (parsed.help) return 0;
  const { values } = parsed;
  const { builtinSummaries, loadScenarios } = await import('../../scenarios/index.ts');
  // With no --scenarios folder, the built-in ones (from the package's index where it holds)
  const all = values.scenarios?.length ? await loadScenarios(values.scenarios) : await builtinSummaries();
  const w = Math.max(...all.map((s) => s.name.length)) + 2;
  for (const s of all) {
    const seeds = s.seeds?.length ? ` [seeds ${s.seeds.join(', ')}]` : '';
    process.stdout.write(`${s.name.padEnd(w)}${s.description}${seeds}\n`);
  }
  return 0;
}

async function cmdKernels(args: string[]): Promise<number> {
  if ((await parseCommand(COMMANDS.kernels, args)).help) return 0;
  const { acceptedForms, listKernels } = await import('../../kernels/index.ts');
  const list = await listKernels();
  const w = Math.max(...list.map((k) => k.id.length), 8) + 2;
  process.stdout.write(`${'kernel'.padEnd(w)}${'cached'.padEnd(8)}release\n`);
  for (const k of list) {
    process.stdout.write(`${k.id.padEnd(w)}${(k.cached ? 'yes' : 'no').padEnd(8)}${k.release ?? ''}\n`);
  }
  process.stdout.write(`\n${acceptedForms()}\n`);
  return 0;
}

/** Runs the CLI; returns the exit status. */
export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    // What rootprobe processes that are gone (SIGKILL, a crash, a reboot) left in the cache and TMPDIR.
    const swept = await sweepLeftovers();
    if (swept.length) {
      process.stderr.write(
        `rootprobe: removed ${swept.length} leftover(s) of rootprobe processes that are gone: ${swept.map((s) => s.path).join(', ')}\n`,
      );
    }
    switch (cmd) {
      case 'run':
        return await cmdRun(rest);
      case 'shell':
        return await (await import('./shell.ts')).cmdShell(rest);
      case 'build':
        return await (await import('./build.ts')).cmdBuild(rest);
      case 'bisect':
        return await (await import('./bisect.ts')).cmdBisect(rest);
      case 'junit-merge':
        return await cmdJunitMerge(rest);
      case 'list':
        return await cmdList(rest);
      case 'diff':
        return await cmdDiff(rest);
      case 'kernels':
        return await cmdKernels(rest);
      case 'show':
        return await (await import('./show.ts')).cmdShow(rest);
      case 'report':
        return await (await import('./show.ts')).cmdReport(rest);
      case 'doctor':
        return await (await import('./doctor.ts')).doctor(rest);
      case 'new':
        return await (await import('./new.ts')).cmdNew(rest);
      case 'help':
        if (rest.length) {
          const spec = (COMMANDS as Record<string, CommandSpec>)[rest.join(' ')];
          if (!spec) throw new UsageError(`no command '${rest.join(' ')}'; the commands: ${Object.keys(COMMANDS).join(', ')}`);
          process.stdout.write(helpText(spec, await loadHelpContext()) + '\n');
          return 0;
        }
        process.stdout.write((await usage()) + '\n');
        return 0;
      case undefined:
      case '--help':
      case '-h':
        process.stdout.write((await usage()) + '\n');
        return cmd === undefined ? 2 : 0;
      default:
        throw new UsageError(
          `unknown command '${cmd}'; try: ${Object.keys(COMMANDS)
            .filter((c) => !c.includes(' '))
            .join(', ')} (rootprobe --help)`,
        );
    }
  } catch (e) {
    const err = e as Error & { code?: string };
    if (isPeopleError(e) || err.code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`rootprobe: ${foldMessage(err.message, { maxBytes: 8192, maxLines: 80, maxLineChars: 2000 })}\n`);
      if (err.code?.startsWith('ERR_PARSE_ARGS')) process.stderr.write(`(see: rootprobe --help)\n`);
      await cleanupAll();
      return 2;
    }
    process.stderr.write(`rootprobe: internal error: ${err.stack ?? err.message}\n`);
    await cleanupAll();
    return 1;
  }
}
