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
 * Exit status: 0 when every run passed, 1 when any did not, 2 on bad usage or missing setup.
 */
import { parseArgs } from 'node:util';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { isPeopleError, UsageError } from '../errors.ts';
import { loadScenarios, pickScenarios } from '../../scenarios/index.ts';
import { cleanupAll } from '../lifecycle.ts';
import { junitMerge, resolveShard } from '../run/shard.ts';
import { expectedStages } from '../scenario.ts';
import type { Difference } from '../report/diff.ts';
// The modules of booting, reporting and the other commands are imported by the command that
// needs them, so that `rootprobe list` or a usage error loads only what it uses (start-up).

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
  --kcidb FILE       KernelCI's KCIDB v5.3 JSON: a test per scenario and per stage (rootprobe.<scenario>.<stage>)
  --evidence FILE    a Markdown table: each seed claim, the scenarios checking it, what each kernel showed
  --artifacts DIR    where run folders are kept (default ./rootprobe-artifacts)
  --keep             keep the run folder of passing runs too
  --scenarios DIR    load more scenarios from DIR (repeatable)
  --cmdline TEXT     append to every guest's kernel command line
  --retries N        boot a cell that did not pass again, up to N times; every attempt is
                     reported and a cell whose attempts disagree is marked flaky
  --shard I/N        run only part I of N of the scenario x kernel matrix (cells sorted by kernel,
                     then scenario; cell k goes to part k mod N + 1): N CI jobs cover it once.
                     --shard auto[/N]: I and N from the CI (GitLab CI_NODE_INDEX/CI_NODE_TOTAL, a Kubernetes
                     Indexed Job's JOB_COMPLETION_INDEX with auto/N, ROOTPROBE_JOB_INDEX/ROOTPROBE_JOB_TOTAL)

environment: ROOTPROBE_ACCEL=kvm|tcg, ROOTPROBE_TIMEOUT_FACTOR, ROOTPROBE_CACHE, ROOTPROBE_DEBIAN_MIRROR
exit status: 0 all passed, 1 some did not, 2 bad usage or missing setup`;

async function writeOut(file: string, text: string): Promise<void> {
  if (file === '-') {
    process.stdout.write(text);
    return;
  }
  await fs.mkdir(path.dirname(path.resolve(file)), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  await fs.writeFile(tmp, text);
  await fs.rename(tmp, file);
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
      kcidb: { type: 'string' },
      evidence: { type: 'string' },
      artifacts: { type: 'string' },
      keep: { type: 'boolean' },
      scenarios: { type: 'string', multiple: true },
      cmdline: { type: 'string' },
      shard: { type: 'string' },
      retries: { type: 'string' },
    },
  });
  const shard = values.shard !== undefined ? resolveShard(values.shard) : undefined;
  if (shard && shard.from !== '--shard') process.stderr.write(`shard ${shard.index}/${shard.count} (from ${shard.from})\n`);
  const kernels = values.kernel?.length ? values.kernel : [DEFAULT_KERNEL];
  const { parseKernelSpec } = await import('../../kernels/index.ts');
  for (const k of kernels) parseKernelSpec(k); // a bad spec is a usage error before anything runs
  const jobs = positiveInt(values.jobs, '--jobs', os.availableParallelism());
  const all = await loadScenarios(values.scenarios ?? []);
  const chosen = positionals.length > 0 && !values.all ? pickScenarios(all, positionals) : all;
  if (positionals.length > 0 && values.all) throw new UsageError('name scenarios or give --all, not both');
  const kcidbOpts = { stages: Object.fromEntries(chosen.map((s) => [s.name, expectedStages(s)])) };
  const rerunArgs = (values.scenarios ?? []).flatMap((d) => ['--scenarios', path.resolve(d)]);
  const [{ runMatrix }, { toJUnit, toJson, toTap }, { evidenceMarkdown }, { summaryText }, { toKcidbJson }] = await Promise.all([
    import('../run/matrix.ts'),
    import('../report/formats.ts'),
    import('../report/evidence.ts'),
    import('../report/terminal.ts'),
    import('../report/kcidb.ts'),
  ]);
  const report = await runMatrix(chosen, kernels, {
    jobs,
    artifactsRoot: values.artifacts ?? 'rootprobe-artifacts',
    keep: values.keep ?? false,
    extraCmdline: values.cmdline,
    rerunArgs,
    shard,
    retries: nonNegativeInt(values.retries, '--retries', 0),
    partialReport: async (partial) => {
      if (values.json) await writeOut(values.json, toJson(partial));
      if (values.junit) await writeOut(values.junit, toJUnit(partial));
      if (values.evidence) await writeOut(values.evidence, evidenceMarkdown(partial, chosen));
      if (values.kcidb) await writeOut(values.kcidb, toKcidbJson(partial, kcidbOpts));
    },
  });
  if (values.json) await writeOut(values.json, toJson(report));
  if (values.junit) await writeOut(values.junit, toJUnit(report));
  if (values.tap) await writeOut(values.tap, toTap(report));
  if (values.kcidb) await writeOut(values.kcidb, toKcidbJson(report, kcidbOpts));
  if (values.evidence) await writeOut(values.evidence, evidenceMarkdown(report, chosen));
  process.stdout.write(summaryText(report, Boolean(process.stdout.isTTY) && !process.env.CI));
  // A shard may be empty (more shards than cells): nothing failed.
  return (report.runs.length > 0 || shard) && report.runs.every((r) => r.outcome === 'passed') ? 0 : 1;
}

async function cmdJunitMerge(args: string[]): Promise<number> {
  const [out, ...inputs] = args;
  if (!out || inputs.length === 0) throw new UsageError('usage: rootprobe junit-merge OUT IN...');
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
  const { parseKernelSpec } = await import('../../kernels/index.ts');
  for (const k of kernels) parseKernelSpec(k);
  const all = await loadScenarios(values.scenarios ?? []);
  const chosen = positionals.length > 0 ? pickScenarios(all, positionals) : all;
  const [{ runMatrix }, { diffRuns, diffText }] = await Promise.all([import('../run/matrix.ts'), import('../report/diff.ts')]);
  const report = await runMatrix(chosen, kernels, {
    jobs: positiveInt(values.jobs, '--jobs', os.availableParallelism()),
    artifactsRoot: values.artifacts ?? 'rootprobe-artifacts',
    keep: false,
    retries: nonNegativeInt(values.retries, '--retries', 0),
  });
  const ids = [...new Set(report.runs.map((r) => r.kernel))];
  let differs = false;
  const out: Array<{ scenario: string; a: string; b: string; differences: Difference[] }> = [];
  for (const sc of chosen) {
    const a = report.runs.find((r) => r.scenario === sc.name && r.kernel === ids[0]);
    const b = report.runs.find((r) => r.scenario === sc.name && r.kernel === ids[1]);
    if (!a || !b) continue;
    const d = diffRuns(a, b);
    if (d.length) differs = true;
    out.push({ scenario: sc.name, a: a.kernel, b: b.kernel, differences: d });
    process.stdout.write(diffText(a, b, d) + '\n');
  }
  if (values.json) await writeOut(values.json, JSON.stringify({ kernels: ids, diffs: out, report }, null, 1) + '\n');
  return differs ? 1 : 0;
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
  const { KNOWN_KERNELS, listKernels } = await import('../../kernels/index.ts');
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
    switch (cmd) {
      case 'run':
        return await cmdRun(rest);
      case 'shell':
        return await (await import('./shell.ts')).cmdShell(rest);
      case 'build':
        return await (await import('./build.ts')).cmdBuild(rest);
      case 'junit-merge':
        return await cmdJunitMerge(rest);
      case 'list':
        return await cmdList(rest);
      case 'diff':
        return await cmdDiff(rest);
      case 'kernels':
        return await cmdKernels();
      case 'doctor':
        return await (await import('./doctor.ts')).doctor(rest);
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
      process.stderr.write(`rootprobe: ${err.message}\n`);
      if (err.code?.startsWith('ERR_PARSE_ARGS')) process.stderr.write(`(see: rootprobe --help)\n`);
      await cleanupAll();
      return 2;
    }
    process.stderr.write(`rootprobe: internal error: ${err.stack ?? err.message}\n`);
    await cleanupAll();
    return 1;
  }
}
