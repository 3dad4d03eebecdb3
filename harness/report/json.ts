/**
 * The one JSON report shape every `--json` writes (`run`, `run external`, `diff`): a
 * MatrixReport with `schemaVersion`, the `command` that wrote it and `runs[]`; `diff` adds
 * `kernels` and `diffs`. The shape is schemas/report.schema.json (documented in
 * docs/report.md); tests validate real runs' reports against it.
 */
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RunRecord } from '../run/run-scenario.ts';
import type { Difference } from './diff.ts';
import { summarize, type MatrixReport } from './formats.ts';

/** Raised when the shape changes: a consumer reads it before anything else. */
export const REPORT_SCHEMA_VERSION = 1;

export const REPORT_SCHEMA_FILE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../schemas/report.schema.json');

export type ReportCommand = 'run' | 'run external' | 'diff';

export interface DiffEntry {
  scenario: string;
  /** The kernels compared, as in runs[].kernel. */
  a: string;
  b: string;
  differences: Difference[];
}

export interface JsonReport extends MatrixReport {
  schemaVersion: typeof REPORT_SCHEMA_VERSION;
  command: ReportCommand;
  /** diff: the two kernels, in the order given. */
  kernels?: string[];
  /** diff: what differs, per scenario. */
  diffs?: DiffEntry[];
}

/** The report of `command`, as written to a --json file. */
export function reportJson(report: MatrixReport, command: ReportCommand, extra: { kernels?: string[]; diffs?: DiffEntry[] } = {}): string {
  const out: JsonReport = { schemaVersion: REPORT_SCHEMA_VERSION, command, ...report, ...extra };
  return JSON.stringify(out, null, 1) + '\n';
}

// The package's own package.json by its name: the same from the sources and from dist/.
const version = (createRequire(import.meta.url)('rootprobe/package.json') as { version: string }).version;

/** A report of one run that did not come from runMatrix (run external). */
export function singleRunReport(rec: RunRecord, accelReason: string, startedAt: Date): MatrixReport {
  return {
    tool: 'rootprobe',
    version,
    startedAt: startedAt.toISOString(),
    durationMs: Date.now() - startedAt.getTime(),
    accel: rec.accel,
    accelReason,
    host: { cpus: os.availableParallelism(), node: process.version },
    summary: summarize([rec]),
    runs: [rec],
  };
}
