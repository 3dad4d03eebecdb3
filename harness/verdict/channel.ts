/**
 * The verdict that needs no scenario check, from the result channel and how the boot ended:
 * QEMU did not start or was killed, a frame arrived damaged, the kernel panicked, a stage
 * never came (timeout or missing-stage), or the kernel reported a bug it survived.
 */
import { statSync } from 'node:fs';
import type { BootOutcome } from '../qemu/runner.ts';
import type { RunReadback } from '../readback/result.ts';
import type { Outcome, RunRecord } from '../run/record.ts';
import { describeReport, disallowed } from './kernel-log.ts';

export interface Verdict {
  outcome: Outcome;
  message?: string;
}

/** What the kernel said long before it panicked that explains the panic (it may have left the console tail). */
function earlier(boot: BootOutcome): string {
  const said = boot.notices.filter((l) => !boot.panicLine || !l.includes(boot.panicLine));
  if (said.length === 0) return '';
  return `; before that it said: ${said
    .slice(0, 3)
    .map((l) => l.replace(/^\[\s*[0-9.]+\]\s*/, ''))
    .join(' | ')}`;
}

/** When the guest ran out of memory or QEMU could not fit the initramfs: the sizes, and what to change. */
function memoryHint(boot: BootOutcome, record: Pick<RunRecord, 'memoryMiB'>): string {
  const text = `${boot.panicLine ?? ''}\n${boot.stderr}\n${boot.consoleTail.join('\n')}\n${boot.notices.join('\n')}`;
  if (!/initrd is too large|Initramfs unpacking failed|out of memory|deadlocked on memory|\boom-kill/i.test(text)) return '';
  const i = boot.argv.indexOf('-initrd');
  let size = '';
  try {
    if (i >= 0) size = `; the initramfs is ${(statSync(boot.argv[i + 1]).size / 2 ** 20).toFixed(1)} MiB`;
  } catch {
    /* gone */
  }
  return ` (out of guest memory: the guest has ${record.memoryMiB} MiB${size}, which must fit in memory, twice while the kernel unpacks it: raise the scenario's memoryMiB)`;
}

/** When init died: what user space said last (the kernel's "Attempted to kill init!" does not say why). */
function userSaid(boot: BootOutcome): string {
  if (!/Attempted to kill init|No working init found|Requested init .* failed/.test(boot.panicLine ?? '') || !boot.userSpace?.length)
    return '';
  return `\n  user space said before it:\n${boot.userSpace
    .slice(-6)
    .map((l) => `    | ${l}`)
    .join('\n')}`;
}

/** QEMU's stderr without the remains of its expected notice about our result socket. */
function qemuWords(stderr: string): string {
  return stderr
    .split('\n')
    .filter((l) => !/-chardev socket,id=res,.*: info: ?$/.test(l))
    .join('\n')
    .trim();
}

function lastLines(tail: string[], n = 20): string {
  return tail
    .slice(-n)
    .map((l) => `    | ${l}`)
    .join('\n');
}

/**
 * The verdict that needs no scenario check: QEMU did not start or was killed, a frame arrived
 * damaged, the kernel panicked, or a stage in `expected` never came (timeout or
 * missing-stage, with the stage waited for, the last one reached and the console's last
 * lines). Undefined when every expected stage arrived intact. `undeclared` words the error
 * for stages the guest sent that are not expected (omit it to allow extra stages).
 */
export function channelVerdict(
  boot: BootOutcome,
  readback: RunReadback,
  record: Pick<RunRecord, 'deadlineMs' | 'accel' | 'memoryMiB'>,
  expected: string[],
  opts: { undeclared?: (names: string[]) => string; optional?: string[] } = {},
): Verdict | undefined {
  if (boot.end === 'spawn-error') return { outcome: 'error', message: `QEMU did not start: ${boot.stderr.trim()}` };
  if (readback.damaged.length > 0) {
    const d = readback.damaged[0];
    return { outcome: 'error', message: `the result frame of stage \`${d.stage}\` arrived damaged (${d.reason}): ${d.detail}` };
  }
  if (readback.unreadable.length > 0) {
    const u = readback.unreadable[0];
    return { outcome: 'error', message: `the snapshot of stage \`${u.stage}\` could not be read: ${u.error}` };
  }
  if (boot.end === 'panic') {
    return {
      outcome: 'panic',
      message: `the kernel panicked${readback.last ? ` after stage \`${readback.last.name}\`` : ' before any stage'}: ${boot.panicLine ?? ''}${earlier(boot)}${memoryHint(boot, record)}${userSaid(boot)}`,
    };
  }
  // QEMU ended by a signal nobody here sent (the OOM killer, a kill -9 from outside).
  if (boot.end === 'signal') {
    return {
      outcome: 'error',
      message: `QEMU was killed by ${boot.signal} (not by rootprobe)${readback.last ? ` after stage \`${readback.last.name}\`` : ' before any stage'}\n  last console lines:\n${lastLines(boot.consoleTail)}`,
    };
  }
  // QEMU refused to start the guest (e.g. "initrd is too large") or failed: its own words.
  if (boot.end === 'exited' && boot.exitCode !== 0 && readback.names.length === 0) {
    return {
      outcome: 'error',
      message: `QEMU exited with status ${boot.exitCode} before any stage: ${qemuWords(boot.stderr) || '(nothing on stderr)'}${memoryHint(boot, record)}`,
    };
  }
  const guestError = readback.has('guest-error') ? readback.stage('guest-error').vars.message : undefined;
  const undeclared = readback.names.filter((n) => !expected.includes(n) && !opts.optional?.includes(n) && n !== 'guest-error');
  if (undeclared.length > 0 && opts.undeclared) return { outcome: 'error', message: opts.undeclared(undeclared) };
  const missing = expected.find((s) => !readback.has(s));
  if (missing) {
    const last = readback.last?.name;
    const reached = last ? `last stage reached: \`${last}\`` : 'no stage reported';
    const why = guestError ? `; the guest said: ${guestError}` : '';
    if (boot.end === 'deadline') {
      return {
        outcome: 'timeout',
        message: `waited ${(record.deadlineMs / 1000).toFixed(0)} s (${record.accel}) for stage \`${missing}\`; ${reached}${why}\n  last console lines:\n${lastLines(boot.consoleTail)}`,
      };
    }
    const how = boot.end === 'stopped' ? `the run was stopped (${boot.stopReason ?? 'interrupted'})` : 'QEMU exited';
    return {
      outcome: 'missing-stage',
      message: `stage \`${missing}\` never reported (${how}; ${reached})${why}\n  last console lines:\n${lastLines(boot.consoleTail)}`,
    };
  }
  return undefined;
}

/** Reports of watchdogs that measure time: a starved TCG guest trips them without a kernel bug. */
export const TIMING_KINDS = new Set(['soft-lockup', 'rcu-stall', 'hung-task']);

/**
 * A boot that reached every stage but whose console shows kernel reports (WARNING, BUG, KASAN,
 * ...) not allowed by `allow`: failed, naming each report's title and first frames.
 */
export function kernelLogVerdict(boot: BootOutcome, allow: RegExp[], accel: 'kvm' | 'tcg' = 'kvm'): Verdict | undefined {
  // Under TCG a guest's vCPU can be starved by a busy host for seconds: the watchdogs that
  // measure time (soft lockup, RCU stall, hung task) then fire without any kernel bug. Those
  // are kept in the record (kernelReports, and a warning), but fail a run only under KVM.
  const reports = (boot.kernelReports ?? []).filter((r) => accel === 'kvm' || !TIMING_KINDS.has(r.kind));
  const bad = disallowed(reports, allow);
  if (bad.length === 0) return undefined;
  const list = bad.slice(0, 3).map((r) => `  ${describeReport(r)}`);
  const more = bad.length > 3 ? [`  (and ${bad.length - 3} more)`] : [];
  return {
    outcome: 'failed',
    message: `the kernel reported ${bad.length === 1 ? 'a bug' : `${bad.length} bugs`} during the run (allow one with allowKernelLog or --allow-kernel-log REGEX):\n${[...list, ...more].join('\n')}`,
  };
}
