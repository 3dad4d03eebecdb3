/**
 * The rootprobe command line.
 *
 *   rootprobe run [scenario...] [--all] [--kernel K]... [--jobs N] [--json FILE] [--junit FILE]
 *                 [--tap FILE|-] [--artifacts DIR] [--keep] [--scenarios DIR]...
 *   rootprobe shell <scenario> [--kernel K] [--stage S]      (shell.ts)
 *   rootprobe build <scenario> [--kernel K] --out DIR        (build.ts)
 *   rootprobe junit-merge OUT IN...                          (shard.ts)
 *   rootprobe list [--scenarios DIR]...
 *   rootprobe kernels
 *   rootprobe doctor [--install]
 *
 * Exit status: 0 when every run passed, 1 when any did not, 2 on bad usage or missing setup,
 * 3 when a report file could not be written (named on stderr after the summary, which is printed).
 */
import { parseArgs } from 'node:util';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { isPeopleError, UsageError } from '../errors.ts';
import { loadScenarios, pickScenarios } from '../../scenarios/index.ts';
import { KNOWN_KERNELS, listKernels, parseKernelSpec } from '../../kernels/index.ts';
import { runMatrix } from '../run/matrix.ts';
import { summaryText } from '../report/terminal.ts';
import { toJUnit, toJson, toTap } from '../report/formats.ts';
import { evidenceMarkdown } from '../report/evidence.ts';
import { doctor } from './doctor.ts';
import { diffRuns, diffText } from '../report/diff.ts';
import { cleanupAll } from '../lifecycle.ts';
import { sweepLeftovers } from '../sweep.ts';
import { foldMessage } from '../report/fold.ts';
import { cmdRunExternal } from '../external/cli.ts';
import { cmdShell } from './shell.ts';
import { cmdBuild } from './build.ts';
import { junitMerge, parseShard } from '../run/shard.ts';
import { checkOutputs, EXIT_REPORT_LOST, lostText, writeOutput, writeReports } from '../report/outputs.ts';

export const DEFAULT_KERNEL = 'debian/bookworm';

const USAGE = `rootprobe: QEMU-based tests of Linux boot and root-switch flows

usage:
  rootprobe run [scenario...] [--all] [--kernel K]... [options]   boot scenarios, print verdicts
  rootprobe run external --initramfs FILE --kernel K [--disk FILE]... [--cmdline TEXT]
                                                                  probe a distro's own initramfs and root
  rootprobe shell <scenario> [--kernel K] [--stage S]            boot it with the console here; a guest
                                                                  shell after stage S (Ctrl-a x quits)
  rootprobe build <scenario> [--kernel K] --out DIR               write its images and a runnable qemu.sh
  rootprobe junit-merge OUT IN...                                 merge JUnit reports (of --shard jobs)
  rootprobe list                                                  the scenarios and what they check
  rootprobe diff --kernel A --kernel B [scenario...]               the readback on two kernels: only what differs
  rootprobe kernels                                               known kernels, cached or not
  rootprobe doctor [--install]                                    check (and install) host tools

run options:
  --kernel K         debian/bookworm (default), debian/trixie, debian/sid, debian/<suite>:<flavour>,
                     file:<bzImage>[,modules=<dir>,config=<file>]; repeat for a matrix
  --all              every scenario (also the default when none is named)
  --jobs N           VMs booted at once (default: the number of cores)
  --json FILE        the full report as JSON (stages with mountinfo and processes)
  --junit FILE       JUnit XML, one testcase per scenario x kernel
  --tap FILE|-       TAP version 13 (- for standard output)
  --evidence FILE    a Markdown table: each seed claim, the scenarios checking it, what each kernel showed
  --artifacts DIR    where run folders are kept (default ./rootprobe-artifacts)
  --keep             keep the run folder of passing runs too
  --scenarios DIR    load more scenarios from DIR (repeatable)
  --cmdline TEXT     append to every guest's kernel command line
  --retries N        boot a cell that did not pass again, up to N times; every attempt is
                     reported and a cell whose attempts disagree is marked flaky
  --shard I/N        run only part I of N of the scenario x kernel matrix (cells sorted by kernel,
                     then scenario; cell k goes to part k mod N + 1): N CI jobs cover it once

environment: ROOTPROBE_ACCEL=kvm|tcg, ROOTPROBE_TIMEOUT_FACTOR, ROOTPROBE_CACHE, ROOTPROBE_DEBIAN_MIRROR
exit status: 0 all passed, 1 some did not, 2 bad usage or missing setup, 3 a report file could not
             be written (named after the summary, which is still printed)`;

const writeOut = writeOutput;

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
  if (args[0] === 'external') return cmdRunExternal(args.slice(1));
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      all: { type: 'boolean' },
      kernel: { type: 'string', multiple: true },
      jobs: { type: 'string' },
      json: { type: 'string' },
      junit: { type: 'string' },
      tap: { type: 'string' },
      evidence: { type: 'string' },
      artifacts: { type: 'string' },
      keep: { type: 'boolean' },
      scenarios: { type: 'string', multiple: true },
      cmdline: { type: 'string' },
      shard: { type: 'string' },
      retries: { type: 'string' },
    },
  });
  const shard = values.shard !== undefined ? parseShard(values.shard) : undefined;
  const kernels = once(values.kernel?.length ? values.kernel : [DEFAULT_KERNEL], 'kernel');
  for (const k of kernels) parseKernelSpec(k); // a bad spec is a usage error before anything runs
  const jobs = positiveInt(values.jobs, '--jobs', os.availableParallelism());
  const all = await loadScenarios(values.scenarios ?? []);
  const chosen = positionals.length > 0 && !values.all ? pickScenarios(all, once(positionals, 'scenario')) : all;
  if (positionals.length > 0 && values.all) throw new UsageError('name scenarios or give --all, not both');
  const rerunArgs = (values.scenarios ?? []).flatMap((d) => ['--scenarios', path.resolve(d)]);
  const artifactsRoot = values.artifacts ?? 'rootprobe-artifacts';
  // Every output is checked before the first download or boot (exit 2 naming it).
  await checkOutputs([
    { flag: '--artifacts', path: artifactsRoot, kind: 'folder' },
    values.json !== undefined ? { flag: '--json', path: values.json, kind: 'file' } : undefined,
    values.junit !== undefined ? { flag: '--junit', path: values.junit, kind: 'file' } : undefined,
    values.tap !== undefined ? { flag: '--tap', path: values.tap, kind: 'file', allowDash: true } : undefined,
    values.evidence !== undefined ? { flag: '--evidence', path: values.evidence, kind: 'file' } : undefined,
  ]);
  const report = await runMatrix(chosen, kernels, {
    jobs,
    artifactsRoot,
    keep: values.keep ?? false,
    extraCmdline: values.cmdline,
    rerunArgs,
    shard,
    retries: nonNegativeInt(values.retries, '--retries', 0),
    partialReport: async (partial) => {
      process.stderr.write(
        lostText(
          await writeReports([
            { flag: '--json', path: values.json, text: () => toJson(partial) },
            { flag: '--junit', path: values.junit, text: () => toJUnit(partial) },
            { flag: '--evidence', path: values.evidence, text: () => evidenceMarkdown(partial, chosen) },
          ]),
        ),
      );
    },
  });
  // A report that cannot be written does not stop the others nor the summary; it is named after it.
  const lost = await writeReports([
    { flag: '--json', path: values.json, text: () => toJson(report) },
    { flag: '--junit', path: values.junit, text: () => toJUnit(report) },
    { flag: '--tap', path: values.tap, text: () => toTap(report) },
    { flag: '--evidence', path: values.evidence, text: () => evidenceMarkdown(report, chosen) },
  ]);
  process.stdout.write(summaryText(report, Boolean(process.stdout.isTTY) && !process.env.CI));
  process.stderr.write(lostText(lost));
  // A shard may be empty (more shards than cells): nothing failed.
  const passed = (report.runs.length > 0 || shard) && report.runs.every((r) => r.outcome === 'passed');
  return lost.length ? EXIT_REPORT_LOST : passed ? 0 : 1;
}

async function cmdJunitMerge(args: string[]): Promise<number> {
  const [out, ...inputs] = args;
  if (!out || inputs.length === 0) throw new UsageError('usage: rootprobe junit-merge OUT IN...');
  await checkOutputs([{ flag: 'OUT', path: out, kind: 'file', allowDash: true }]);
  const docs = [];
  for (const f of inputs) {
    const text = await fs.readFile(f, 'utf8').catch(() => {
      throw new UsageError(`cannot read JUnit report ${f}`);
    });
    docs.push({ name: f, text });
  }
  await writeOut(out, junitMerge(docs));
  return 0;
}

/** `diff --kernel A --kernel B [scenario...]`: exit 0 when the readback is the same, 1 when it differs, as diff(1). */
async function cmdDiff(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      kernel: { type: 'string', multiple: true },
      jobs: { type: 'string' },
      json: { type: 'string' },
      artifacts: { type: 'string' },
      scenarios: { type: 'string', multiple: true },
      retries: { type: 'string' },
    },
  });
  const kernels = values.kernel ?? [];
  if (kernels.length !== 2) throw new UsageError(`diff takes exactly two --kernel options (got ${kernels.length})`);
  for (const k of kernels) parseKernelSpec(k);
  const all = await loadScenarios(values.scenarios ?? []);
  const chosen = positionals.length > 0 ? pickScenarios(all, once(positionals, 'scenario')) : all;
  const jobs = positiveInt(values.jobs, '--jobs', os.availableParallelism());
  const artifactsRoot = values.artifacts ?? 'rootprobe-artifacts';
  await checkOutputs([
    { flag: '--artifacts', path: artifactsRoot, kind: 'folder' },
    values.json !== undefined ? { flag: '--json', path: values.json, kind: 'file' } : undefined,
  ]);
  const report = await runMatrix(chosen, kernels, {
    jobs,
    artifactsRoot,
    keep: false,
    retries: nonNegativeInt(values.retries, '--retries', 0),
  });
  const ids = [...new Set(report.runs.map((r) => r.kernel))];
  let differs = false;
  const out: Array<{ scenario: string; a: string; b: string; differences: ReturnType<typeof diffRuns> }> = [];
  for (const sc of chosen) {
    const a = report.runs.find((r) => r.scenario === sc.name && r.kernel === ids[0]);
    const b = report.runs.find((r) => r.scenario === sc.name && r.kernel === ids[1]);
    if (!a || !b) continue;
    const d = diffRuns(a, b);
    if (d.length) differs = true;
    out.push({ scenario: sc.name, a: a.kernel, b: b.kernel, differences: d });
    process.stdout.write(diffText(a, b, d) + '\n');
  }
  const lost = await writeReports([
    { flag: '--json', path: values.json, text: () => JSON.stringify({ kernels: ids, diffs: out, report }, null, 1) + '\n' },
  ]);
  process.stderr.write(lostText(lost));
  return lost.length ? EXIT_REPORT_LOST : differs ? 1 : 0;
}

async function cmdList(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { scenarios: { type: 'string', multiple: true } } });
  const all = await loadScenarios(values.scenarios ?? []);
  const w = Math.max(...all.map((s) => s.name.length)) + 2;
  for (const s of all) {
    const seeds = s.seeds?.length ? ` [seeds ${s.seeds.join(', ')}]` : '';
    process.stdout.write(`${s.name.padEnd(w)}${s.description}${seeds}\n`);
  }
  return 0;
}

async function cmdKernels(): Promise<number> {
  const list = await listKernels();
  const w = Math.max(...list.map((k) => k.id.length), 8) + 2;
  process.stdout.write(`${'kernel'.padEnd(w)}${'cached'.padEnd(8)}release\n`);
  for (const k of list) {
    process.stdout.write(`${k.id.padEnd(w)}${(k.cached ? 'yes' : 'no').padEnd(8)}${k.release ?? ''}\n`);
  }
  process.stdout.write(`\nalso: file:<bzImage>[,modules=<dir>,config=<file>], debian/<suite>:<flavour> (${KNOWN_KERNELS.join(', ')})\n`);
  return 0;
}

/** Runs the CLI; returns the exit status. */
export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    // What rootprobe processes that are gone (SIGKILL, a crash, a reboot) left in the cache and TMPDIR.
    const swept = await sweepLeftovers();
    if (swept.length) {
      process.stderr.write(`rootprobe: removed ${swept.length} leftover(s) of rootprobe processes that are gone: ${swept.map((s) => s.path).join(', ')}\n`);
    }
    switch (cmd) {
      case 'run':
        return await cmdRun(rest);
      case 'shell':
        return await cmdShell(rest);
      case 'build':
        return await cmdBuild(rest);
      case 'junit-merge':
        return await cmdJunitMerge(rest);
      case 'list':
        return await cmdList(rest);
      case 'diff':
        return await cmdDiff(rest);
      case 'kernels':
        return await cmdKernels();
      case 'doctor':
        return await doctor(rest);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(USAGE + '\n');
        return cmd === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command '${cmd}'; try: run, shell, build, junit-merge, list, kernels, doctor`);
    }
  } catch (e) {
    const err = e as Error & { code?: string };
    if (isPeopleError(e) || err.code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`rootprobe: ${foldMessage(err.message, { maxBytes: 8192, maxLines: 80 })}\n`);
      if (err.code?.startsWith('ERR_PARSE_ARGS')) process.stderr.write(`(see: rootprobe --help)\n`);
      await cleanupAll();
      return 2;
    }
    process.stderr.write(`rootprobe: internal error: ${err.stack ?? err.message}\n`);
    await cleanupAll();
    return 1;
  }
}
