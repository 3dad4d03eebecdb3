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
 *
 * Exit status: 0 when every run passed, 1 when any did not, 2 on bad usage or missing setup.
 */
import { parseArgs } from 'node:util';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { isPeopleError, UsageError } from '../errors.ts';
import { loadScenarios, pickScenarios } from '../../scenarios/index.ts';
import { acceptedForms, listKernels, parseKernelSpec, providers } from '../../kernels/index.ts';
import { DEFAULTS } from '../plan/defaults.ts';
import { withCliExtras } from '../../kernels/spec-options.ts';
import { runMatrix } from '../run/matrix.ts';
import { summaryText } from '../report/terminal.ts';
import { toJUnit, toJson, toTap } from '../report/formats.ts';
import { evidenceMarkdown } from '../report/evidence.ts';
import { doctor } from './doctor.ts';
import { diffRuns, diffText } from '../report/diff.ts';
import { cleanupAll } from '../lifecycle.ts';
import { cmdRunExternal } from '../external/cli.ts';
import { cmdShell } from './shell.ts';
import { cmdBuild } from './build.ts';
import { cmdBisect } from './bisect.ts';
import { junitMerge, parseShard } from '../run/shard.ts';
import { cmdReport, cmdShow } from './show.ts';
import { diffHtml, reportHtml } from '../report/html.ts';
import { bootOptions } from '../firmware/cli.ts';

export const DEFAULT_KERNEL = DEFAULTS.kernel;

const usage = (): string => `rootprobe: QEMU-based tests of Linux boot and root-switch flows

usage:
  rootprobe run [scenario...] [--all] [--kernel K]... [options]   boot scenarios, print verdicts
  rootprobe run external --initramfs FILE --kernel K | --uki FILE [--disk FILE]... [--cmdline TEXT]
                                                                  probe a distro's own initramfs and root
  rootprobe shell <scenario> [--kernel K] [--stage S]            boot it with the console here; a guest
                                                                  shell after stage S (Ctrl-a x quits)
  rootprobe build <scenario> [--kernel K] --out DIR               write its images and a runnable qemu.sh
  rootprobe bisect <scenario> --kernel git:<tree> --good REV --bad REV [--runs N]
                                                                  the commit that changed the scenario's outcome
  rootprobe junit-merge OUT IN...                                 merge JUnit reports (of --shard jobs)
  rootprobe list                                                  the scenarios and what they check
  rootprobe diff --kernel A --kernel B [scenario...]               the readback on two kernels: only what differs
  rootprobe show RUN.json [--stage S] [--run N|SCENARIO]          a report's mount trees and processes, as findmnt --tree
  rootprobe report RUN.json --html FILE                           the HTML page of a report written earlier
  rootprobe kernels                                               known kernels, cached or not
  rootprobe doctor [--install] [--browser]                        check (and install) host tools; --browser: Chromium too

run options:
  --kernel K         ${DEFAULTS.kernel} (default); repeat for a matrix; one of:
${providers().map((p) => `                       ${p.forms.join(' | ')}: ${p.summary}`).join('\n')}
  --all              every scenario (also the default when none is named)
  --jobs N           VMs booted at once (default: the number of cores)
  --json FILE        the full report as JSON (stages with mountinfo and processes)
  --junit FILE       JUnit XML, one testcase per scenario x kernel
  --tap FILE|-       TAP version 13 (- for standard output)
  --html FILE        one self-contained page: each stage's mount tree, what changed, processes, console
  --evidence FILE    a Markdown table: each seed claim, the scenarios checking it, what each kernel showed
  --artifacts DIR    where run folders are kept (default ./rootprobe-artifacts)
  --keep             keep the run folder of passing runs too
  --scenarios DIR    load more scenarios from DIR (repeatable)
  --cmdline TEXT     append to every guest's kernel command line
  --firmware F       bios (default) or uefi (OVMF; the kernel through its EFI stub)
  --boot B           kernel (default: QEMU hands the kernel over), systemd-boot (an ESP with
                     systemd-boot and a BLS entry), uki (a unified kernel image on an ESP); uefi only
  --allow-kernel-log REGEX  a kernel report (WARNING, BUG, KASAN...) whose title or line matches
                     does not fail the run (repeatable); any other one does
  --config-add CONFIG_X=y   an option on top of the configuration of build/ and git: kernels (repeatable)
  --fragment FILE    a config fragment on top of the configuration of build/ and git: kernels (repeatable)
  --retries N        boot a cell that did not pass again, up to N times; every attempt is
                     reported and a cell whose attempts disagree is marked flaky
  --shard I/N        run only part I of N of the scenario x kernel matrix (cells sorted by kernel,
                     then scenario; cell k goes to part k mod N + 1): N CI jobs cover it once

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
      html: { type: 'string' },
      evidence: { type: 'string' },
      artifacts: { type: 'string' },
      keep: { type: 'boolean' },
      scenarios: { type: 'string', multiple: true },
      cmdline: { type: 'string' },
      shard: { type: 'string' },
      retries: { type: 'string' },
      'allow-kernel-log': { type: 'string', multiple: true },
      'config-add': { type: 'string', multiple: true },
      fragment: { type: 'string', multiple: true },
      firmware: { type: 'string' },
      boot: { type: 'string' },
    },
  });
  const { firmware, boot } = bootOptions(values);
  const allowKernelLog = (values['allow-kernel-log'] ?? []).map((r) => {
    try {
      return new RegExp(r);
    } catch (e) {
      throw new UsageError(`--allow-kernel-log ${JSON.stringify(r)} is not a regular expression: ${(e as Error).message}`);
    }
  });
  const shard = values.shard !== undefined ? parseShard(values.shard) : undefined;
  const kernels = (values.kernel?.length ? values.kernel : [DEFAULT_KERNEL]).map((k) => withCliExtras(k, values['config-add'] ?? [], values.fragment ?? []));
  for (const k of kernels) parseKernelSpec(k); // a bad spec is a usage error before anything runs
  const jobs = positiveInt(values.jobs, '--jobs', os.availableParallelism());
  const all = await loadScenarios(values.scenarios ?? []);
  const chosen = positionals.length > 0 && !values.all ? pickScenarios(all, positionals) : all;
  if (positionals.length > 0 && values.all) throw new UsageError('name scenarios or give --all, not both');
  const rerunArgs = (values.scenarios ?? []).flatMap((d) => ['--scenarios', path.resolve(d)]);
  const report = await runMatrix(chosen, kernels, {
    jobs,
    artifactsRoot: values.artifacts ?? 'rootprobe-artifacts',
    keep: values.keep ?? false,
    extraCmdline: values.cmdline,
    rerunArgs,
    shard,
    retries: nonNegativeInt(values.retries, '--retries', 0),
    allowKernelLog,
    firmware,
    boot,
    partialReport: async (partial) => {
      if (values.json) await writeOut(values.json, toJson(partial));
      if (values.junit) await writeOut(values.junit, toJUnit(partial));
      if (values.evidence) await writeOut(values.evidence, evidenceMarkdown(partial, chosen));
      if (values.html) await writeOut(values.html, reportHtml(partial));
    },
  });
  if (values.json) await writeOut(values.json, toJson(report));
  if (values.junit) await writeOut(values.junit, toJUnit(report));
  if (values.tap) await writeOut(values.tap, toTap(report));
  if (values.html) await writeOut(values.html, reportHtml(report));
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
      html: { type: 'string' },
      artifacts: { type: 'string' },
      scenarios: { type: 'string', multiple: true },
      retries: { type: 'string' },
    },
  });
  const kernels = values.kernel ?? [];
  if (kernels.length !== 2) throw new UsageError(`diff takes exactly two --kernel options (got ${kernels.length})`);
  for (const k of kernels) parseKernelSpec(k);
  const all = await loadScenarios(values.scenarios ?? []);
  const chosen = positionals.length > 0 ? pickScenarios(all, positionals) : all;
  const report = await runMatrix(chosen, kernels, {
    jobs: positiveInt(values.jobs, '--jobs', os.availableParallelism()),
    artifactsRoot: values.artifacts ?? 'rootprobe-artifacts',
    keep: false,
    retries: nonNegativeInt(values.retries, '--retries', 0),
  });
  const ids = [...new Set(report.runs.map((r) => r.kernel))];
  let differs = false;
  const out: Array<{ scenario: string; a: string; b: string; differences: ReturnType<typeof diffRuns> }> = [];
  const pairs = [];
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
  if (values.json) await writeOut(values.json, JSON.stringify({ kernels: ids, diffs: out, report }, null, 1) + '\n');
  if (values.html) await writeOut(values.html, diffHtml(ids, pairs));
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
    switch (cmd) {
      case 'run':
        return await cmdRun(rest);
      case 'shell':
        return await cmdShell(rest);
      case 'build':
        return await cmdBuild(rest);
      case 'bisect':
        return await cmdBisect(rest);
      case 'junit-merge':
        return await cmdJunitMerge(rest);
      case 'list':
        return await cmdList(rest);
      case 'diff':
        return await cmdDiff(rest);
      case 'kernels':
        return await cmdKernels();
      case 'show':
        return await cmdShow(rest);
      case 'report':
        return await cmdReport(rest);
      case 'doctor':
        return await doctor(rest);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(usage() + '\n');
        return cmd === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command '${cmd}'; try: run, shell, build, bisect, diff, show, report, junit-merge, list, kernels, doctor`);
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
