/**
 * Reading a report written earlier, for `rootprobe show` and `rootprobe report`: the JSON of
 * `run --json` (a MatrixReport), of `diff --json` (its `report` holds the runs) or of
 * `run external --json` (one record). Anything else is a usage error naming the file.
 */
import { promises as fs } from 'node:fs';
import { UsageError } from '../errors.ts';
import type { RunRecord } from '../run/run-scenario.ts';
import type { MatrixReport } from './formats.ts';
import type { Difference } from './diff.ts';

export interface LoadedReport {
  kind: 'run' | 'diff' | 'external';
  report: Pick<MatrixReport, 'runs'> & Partial<MatrixReport>;
  /** For a diff report: the kernels and each scenario's differences. */
  diff?: { kernels: string[]; diffs: Array<{ scenario: string; a: string; b: string; differences: Difference[] }> };
}

function isRun(x: unknown): x is RunRecord {
  const r = x as RunRecord;
  return typeof r === 'object' && r !== null && typeof r.scenario === 'string' && typeof r.outcome === 'string' && Array.isArray(r.stages);
}

export async function loadReport(file: string): Promise<LoadedReport> {
  const text = await fs.readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => {
    throw new UsageError(`cannot read ${file}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`);
  });
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new UsageError(
      `${file} is not JSON (${(e as Error).message}); give the file written by run --json, diff --json or run external --json`,
    );
  }
  const o = json as Record<string, unknown>;
  const bad = (why: string): never => {
    throw new UsageError(
      `${file} is not a rootprobe report: ${why}; give the file written by run --json, diff --json or run external --json`,
    );
  };
  if (typeof o !== 'object' || o === null) bad('not an object');
  if (Array.isArray(o.runs)) {
    if (!o.runs.every(isRun)) bad('an entry of runs[] has no scenario, outcome or stages');
    return { kind: 'run', report: o as unknown as MatrixReport };
  }
  const inner = o.report as Record<string, unknown> | undefined;
  if (inner && Array.isArray(inner.runs) && Array.isArray(o.diffs)) {
    if (!inner.runs.every(isRun)) bad('an entry of report.runs[] has no scenario, outcome or stages');
    return {
      kind: 'diff',
      report: inner as unknown as MatrixReport,
      diff: { kernels: (o.kernels as string[]) ?? [], diffs: o.diffs as NonNullable<LoadedReport['diff']>['diffs'] },
    };
  }
  if (isRun(o)) return { kind: 'external', report: { runs: [o] } };
  return bad('it has neither runs[] nor the fields of one run');
}
