/**
 * The record of one run: what reports (terminal, JSON, JUnit, TAP, evidence) are made from.
 */
import type { StageJSON } from '../readback/snapshot.ts';
import type { KernelReport } from '../verdict/kernel-log.ts';
import { foldMessage } from '../report/fold.ts';

export type Outcome = 'passed' | 'failed' | 'panic' | 'timeout' | 'missing-stage' | 'error' | 'skipped';
export type Accel = 'kvm' | 'tcg';

export interface RunArtifacts {
  dir: string;
  consoleLog: string;
  resultStream: string;
  qemuCmdline: string;
  readback: string;
  reproduce: string;
}

/** One boot of a cell that was retried (see MatrixOptions.retries). */
export interface RunAttempt {
  outcome: Outcome;
  message?: string;
  durationMs: number;
  artifacts?: string;
}

export interface RunRecord {
  scenario: string;
  kernel: string;
  kernelRelease: string;
  accel: Accel;
  outcome: Outcome;
  /** Why, for anything but passed: the assertion, the missing stage, the panic line. */
  message?: string;
  durationMs: number;
  /** Stage names in the order they reported. */
  stagesReported: string[];
  stages: StageJSON[];
  evidence: string[];
  behaviours: string[];
  consoleTail: string[];
  memoryMiB: number;
  deadlineMs: number;
  warnings: string[];
  /** The command that reruns just this case. */
  rerun: string;
  artifacts?: RunArtifacts;
  /** Where the kernel came from, for a kernel built from a git tree (KCIDB's checkout). */
  kernelGit?: { tree: string; commit: string; subject?: string; rev: string; remoteUrl?: string };
  /** The guest's architecture (harness/arch/) and firmware. */
  arch?: string;
  firmware?: string;
  /** How the firmware reached the kernel when not directly (-kernel): `systemd-boot`, `uki`, `esp`. */
  boot?: string;
  /** The kernel's reports of bugs it survived (WARNING, BUG, ...), allowed ones too. */
  kernelReports?: KernelReport[];
  /** Every boot of this cell when it was retried, in order; the record is the last. */
  attempts?: RunAttempt[];
  /** The attempts disagreed: the outcome depends on the boot, not only on the kernel. */
  flaky?: boolean;
}

export type RunEvent =
  | { type: 'phase'; scenario: string; kernel: string; phase: 'images' | 'boot' }
  | { type: 'stage'; scenario: string; kernel: string; stage: string; elapsedMs: number }
  | { type: 'console'; scenario: string; kernel: string; line: string };

/**
 * Keeps a record's message short (report/fold.ts), in place. When it had to be folded and the
 * whole one is kept at `wholeAt` (a run's `message.txt`), the message names that file. Returns
 * the whole message when it was folded (for the caller to write to `wholeAt`), else undefined.
 */
export function foldRecordMessage(r: { message?: string }, wholeAt?: string): string | undefined {
  if (!r.message) return undefined;
  const whole = r.message;
  const folded = foldMessage(whole);
  if (folded === whole) return undefined;
  r.message = folded + (wholeAt ? `\n(the whole message: ${wholeAt})` : '');
  return whole;
}

/** A record with nothing reported yet: what a run that never booted (skipped, failed before boot) or has not yet booted says. */
export function bareRecord(f: {
  scenario: string;
  kernel: { id: string; release: string };
  accel: Accel;
  outcome: Outcome;
  message?: string;
  memoryMiB: number;
  /** The guest's architecture (harness/arch/), where known. */
  arch?: string;
  deadlineMs?: number;
  durationMs?: number;
  rerun: string;
}): RunRecord {
  const short = { message: f.message };
  foldRecordMessage(short);
  return {
    scenario: f.scenario,
    kernel: f.kernel.id,
    kernelRelease: f.kernel.release,
    accel: f.accel,
    outcome: f.outcome,
    ...(short.message !== undefined ? { message: short.message } : {}),
    durationMs: f.durationMs ?? 0,
    stagesReported: [],
    stages: [],
    evidence: [],
    behaviours: [],
    consoleTail: [],
    memoryMiB: f.memoryMiB,
    deadlineMs: f.deadlineMs ?? 0,
    warnings: [],
    rerun: f.rerun,
    ...(f.arch !== undefined ? { arch: f.arch } : {}),
  };
}
