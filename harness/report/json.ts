/**
 * The one JSON report shape every `--json` writes (`run`, `run external`, `diff`, `bisect`): a
 * MatrixReport with `schemaVersion`, the `command` that wrote it and `runs[]`; `diff` adds
 * `kernels` and `diffs`, `bisect` its `bisect` part (the steps, the first bad commit). The shape is schemas/report.schema.json (documented in
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

export type ReportCommand = 'run' | 'run external' | 'diff' | 'bisect';

export interface DiffEntry {
  scenario: string;
  /** The kernels compared, as in runs[].kernel. */
  a: string;
  b: string;
  differences: Difference[];
}

/** One step of a bisect: a commit, its mark and the runs it booted (indexes into runs[]). */
export interface BisectStepEntry {
  commit: string;
  subject: string;
  mark: 'good' | 'bad' | 'skip';
  why: string;
  /** Indexes into the report's runs[]; none when the build failed. */
  runs: number[];
}

/** What only `bisect` says: the ends, the steps, the first bad commit and the readback difference. */
export interface BisectEntry {
  scenario: string;
  /** The tree, as given to --kernel (`git:<path>` and its build options). */
  kernel: string;
  /** The ends as given (--good, --bad) and the commits they named. */
  good: { rev: string; commit: string };
  bad: { rev: string; commit: string };
  /** The first bad commit, when git bisect could tell. */
  firstBad?: { commit: string; subject: string };
  /** When it could not (skipped commits): the commits it might be. */
  candidates?: string[];
  /** In the order tested: the good end, the bad end, then each bisect step. */
  steps: BisectStepEntry[];
  /** The runs compared (indexes into runs[]): the last good kernel's and the first bad one's. */
  lastGoodRun?: number;
  firstBadRun?: number;
  /** What the readback of those two runs differs in (as `diff` shows it); empty without a first bad commit. */
  differences: Difference[];
}

export interface JsonReport extends MatrixReport {
  schemaVersion: typeof REPORT_SCHEMA_VERSION;
  command: ReportCommand;
  /** diff: the two kernels, in the order given. */
  kernels?: string[];
  /** diff: what differs, per scenario. */
  diffs?: DiffEntry[];
  /** bisect: its steps and what it found. */
  bisect?: BisectEntry;
}

type ReportExtra = { kernels?: string[]; diffs?: DiffEntry[]; bisect?: BisectEntry };

/** The report of `command`: schemaVersion and command first. */
export function reportObject(report: MatrixReport, command: ReportCommand, extra: ReportExtra = {}): JsonReport {
  return { schemaVersion: REPORT_SCHEMA_VERSION, command, ...report, ...extra };
}

/** The report of `command`, as written to a --json file. */
export function reportJson(report: MatrixReport, command: ReportCommand, extra: ReportExtra = {}): string {
  return JSON.stringify(reportObject(report, command, extra), null, 1) + '\n';
}

// The package's own package.json by its name: the same from the sources and from dist/.
const version = (createRequire(import.meta.url)('rootprobe/package.json') as { version: string }).version;

/** A report of runs that did not come from runMatrix (run external's one, bisect's steps'). */
export function runsReport(runs: RunRecord[], accel: 'kvm' | 'tcg', accelReason: string, startedAt: Date): MatrixReport {
  return {
    tool: 'rootprobe',
    version,
    startedAt: startedAt.toISOString(),
    durationMs: Date.now() - startedAt.getTime(),
    accel,
    accelReason,
    host: { cpus: os.availableParallelism(), node: process.version },
    summary: summarize(runs),
    runs,
  };
}

/** A report of one run that did not come from runMatrix (run external). */
export function singleRunReport(rec: RunRecord, accelReason: string, startedAt: Date): MatrixReport {
  return runsReport([rec], rec.accel, accelReason, startedAt);
}
