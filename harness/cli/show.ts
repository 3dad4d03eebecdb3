/**
 * `rootprobe show RUN.json [--stage S] [--run N|SCENARIO]`: a report written earlier, in the
 * terminal: each stage's mount tree as `findmnt --tree` draws it, with what changed since the
 * stage before, and the processes with their links. Colour on a terminal, not with NO_COLOR.
 *
 * `rootprobe report RUN.json --html FILE`: the HTML page of a report written earlier.
 */
import { COMMANDS, parseCommand } from './options.ts';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { UsageError } from '../errors.ts';
import { loadReport } from '../report/load.ts';
import { runTrees } from '../report/tree.ts';
import { processText, treeText } from '../report/tree-text.ts';
import { diffHtml, reportHtml, type DiffPair } from '../report/html.ts';
import { artifactConsoleLog } from '../report/console-log.ts';
import type { RunRecord } from '../run/run-scenario.ts';

export const SHOW_USAGE = 'usage: rootprobe show RUN.json [--stage S] [--run N|SCENARIO] [--no-processes]';
export const REPORT_USAGE = 'usage: rootprobe report RUN.json --html FILE';

/** Colour when stdout is a terminal, unless NO_COLOR is set (no-color.org) or TERM is dumb. */
export function wantColor(stream: NodeJS.WriteStream = process.stdout): boolean {
  if (process.env.NO_COLOR) return false;
  if (process.env.FORCE_COLOR && process.env.FORCE_COLOR !== '0') return true;
  return Boolean(stream.isTTY) && process.env.TERM !== 'dumb';
}

function pickRuns(runs: readonly RunRecord[], which: string | undefined, file: string): Array<{ run: RunRecord; n: number }> {
  const all = runs.map((run, i) => ({ run, n: i + 1 }));
  if (which === undefined) return all;
  const list = all.map((r) => `  ${r.n}: ${r.run.scenario} on ${r.run.kernel} (${r.run.outcome})`).join('\n');
  if (/^\d+$/.test(which)) {
    const hit = all.find((r) => r.n === Number(which));
    if (!hit) throw new UsageError(`--run ${which}: ${file} has ${runs.length} run(s):\n${list}`);
    return [hit];
  }
  const hits = all.filter((r) => r.run.scenario === which || `${r.run.scenario}@${r.run.kernel}` === which);
  if (!hits.length) throw new UsageError(`--run ${which}: no such run in ${file}; it has:\n${list}`);
  return hits;
}

export function showText(run: RunRecord, n: number, opts: { stage?: string; processes?: boolean; color?: boolean } = {}): string {
  const color = opts.color ?? false;
  const bold = (s: string): string => (color ? `\x1b[1m${s}\x1b[0m` : s);
  const trees = runTrees(run.stages);
  const out = [bold(`run ${n}: ${run.scenario} on ${run.kernel} (${run.kernelRelease}): ${run.outcome}`)];
  if (run.message) out.push(...run.message.split('\n').map((l) => `  ${l}`));
  trees.forEach((t, i) => {
    if (opts.stage !== undefined && t.stage !== opts.stage) return;
    out.push('', bold(`stage ${t.stage}`) + (t.previous ? ` (changes since ${t.previous})` : ' (first stage)'), treeText(t, color));
    if (opts.processes !== false) out.push('', processText(run.stages[i]!, i > 0 ? run.stages[i - 1] : undefined, color));
  });
  return out.join('\n') + '\n';
}

export async function cmdShow(args: string[]): Promise<number> {
  const parsed = await parseCommand(COMMANDS.show, args);
  if (parsed.help) return 0;
  const { values, positionals } = parsed;
  if (positionals.length !== 1) throw new UsageError(`show takes one report file (got ${positionals.length})\n${SHOW_USAGE}`);
  const file = positionals[0]!;
  const { report } = await loadReport(file);
  if (report.runs.length === 0) throw new UsageError(`${file} holds no runs`);
  const chosen = pickRuns(report.runs, values.run, file);
  if (values.stage !== undefined) {
    const stage = values.stage;
    const missing = chosen.filter((c) => !c.run.stages.some((s) => s.name === stage));
    if (missing.length === chosen.length) {
      const known = [...new Set(chosen.flatMap((c) => c.run.stages.map((s) => s.name)))];
      throw new UsageError(`--stage ${stage}: no run shown reported it; stages: ${known.join(', ') || 'none'}`);
    }
  }
  const color = wantColor();
  const texts = chosen
    .filter((c) => values.stage === undefined || c.run.stages.some((s) => s.name === values.stage))
    .map((c) => showText(c.run, c.n, { stage: values.stage, processes: !values['no-processes'], color }));
  process.stdout.write(texts.join('\n'));
  return 0;
}

export async function writePage(file: string, html: string): Promise<void> {
  if (file === '-') {
    process.stdout.write(html);
    return;
  }
  await fs.mkdir(path.dirname(path.resolve(file)), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  await fs.writeFile(tmp, html);
  await fs.rename(tmp, file);
}

/** The pairs of a diff report, rebuilt from its runs. */
function diffPairs(runs: readonly RunRecord[], diffs: NonNullable<Awaited<ReturnType<typeof loadReport>>['diff']>['diffs']): DiffPair[] {
  const out: DiffPair[] = [];
  for (const d of diffs) {
    const a = runs.find((r) => r.scenario === d.scenario && r.kernel === d.a);
    const b = runs.find((r) => r.scenario === d.scenario && r.kernel === d.b);
    if (a && b) out.push({ scenario: d.scenario, a, b, differences: d.differences });
  }
  return out;
}

export async function cmdReport(args: string[]): Promise<number> {
  const parsed = await parseCommand(COMMANDS.report, args);
  if (parsed.help) return 0;
  const { values, positionals } = parsed;
  if (positionals.length !== 1) throw new UsageError(`report takes one report file (got ${positionals.length})\n${REPORT_USAGE}`);
  if (!values.html) throw new UsageError(`report needs --html FILE\n${REPORT_USAGE}`);
  const loaded = await loadReport(positionals[0]!);
  const html = loaded.diff
    ? diffHtml(loaded.diff.kernels, diffPairs(loaded.report.runs, loaded.diff.diffs))
    : reportHtml(loaded.report, { consoleLog: artifactConsoleLog });
  await writePage(values.html, html);
  if (values.html !== '-') process.stderr.write(`wrote ${values.html}\n`);
  return 0;
}
