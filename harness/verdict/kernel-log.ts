/**
 * Kernel reports on the console that mean the kernel found a bug in itself, though it went
 * on: `WARNING:`, `BUG:`, an Oops, KASAN, UBSAN, KFENCE, a lockdep splat, a hung task, an RCU
 * stall, a soft lockup. A run that shows one does not pass, even when every assertion held
 * (a panic stays a panic). Each report is titled the way syzkaller titles a crash: its first
 * line without the timestamp, the task and the pid, plus the first frames of its call trace.
 *
 * Accepted format (one report; lines as the console printed them):
 *   [    1.234567] ------------[ cut here ]------------
 *   [    1.234568] WARNING: CPU: 0 PID: 95 at drivers/misc/lkdtm/bugs.c:83 lkdtm_WARNING+0x1c/0x20
 *   [    1.234600] Call Trace:
 *   [    1.234601]  <TASK>
 *   [    1.234602]  lkdtm_do_action+0x1c/0x30
 *   ...
 *   [    1.234700] ---[ end trace 0000000000000000 ]---
 */

export interface KernelReport {
  /** 'warning', 'bug', 'oops', 'kasan', 'ubsan', 'kfence', 'lockdep', 'hung-task', 'rcu-stall', 'soft-lockup' */
  kind: string;
  /** The report's title: `WARNING at drivers/misc/lkdtm/bugs.c:83 lkdtm_WARNING`. */
  title: string;
  /** The first lines of its call trace (function names with offsets), at most FRAMES. */
  frames: string[];
  /** The console line it started on, as printed. */
  line: string;
}

const FRAMES = 5;
const MAX_REPORTS = 20;

/** Title patterns, most specific first. Each gives the kind and the title from a console line. */
const STARTS: Array<{ kind: string; re: RegExp; title: (m: RegExpExecArray) => string }> = [
  // WARNING: CPU: 0 PID: 95 at drivers/misc/lkdtm/bugs.c:83 lkdtm_WARNING+0x1c/0x20 [lkdtm]
  {
    kind: 'warning',
    re: /WARNING: CPU: \d+ PID: \d+ at (\S+) ([A-Za-z0-9_.]+)\+0x/,
    title: (m) => `WARNING at ${m[1]} ${m[2]}`,
  },
  // without kallsyms: `WARNING: CPU: 0 PID: 95 at drivers/misc/lkdtm/bugs.c:83 0xffffffff81234567`
  { kind: 'warning', re: /WARNING: CPU: \d+ PID: \d+ at (\S+)/, title: (m) => `WARNING at ${m[1]}` },
  { kind: 'warning', re: /WARNING: (?!CPU:)(.+)$/, title: (m) => `WARNING: ${stripTask(m[1])}` },
  { kind: 'kasan', re: /BUG: KASAN: ([\w-]+) in ([A-Za-z0-9_.]+)/, title: (m) => `KASAN: ${m[1]} in ${m[2]}` },
  { kind: 'kfence', re: /BUG: KFENCE: ([\w-]+) (?:in )?([A-Za-z0-9_.]+)?/, title: (m) => `KFENCE: ${m[1]}${m[2] ? ` in ${m[2]}` : ''}` },
  { kind: 'soft-lockup', re: /BUG: soft lockup - CPU#\d+ stuck/, title: () => 'BUG: soft lockup' },
  { kind: 'bug', re: /BUG: (.+)$/, title: (m) => `BUG: ${stripTask(m[1])}` },
  { kind: 'bug', re: /kernel BUG at (\S+)!/, title: (m) => `kernel BUG at ${m[1]}` },
  { kind: 'ubsan', re: /UBSAN: ([\w-]+) in (\S+)/, title: (m) => `UBSAN: ${m[1]} in ${m[2].replace(/:\d+:\d+$/, '')}` },
  { kind: 'oops', re: /Oops: (.+)$/, title: (m) => `Oops: ${m[1].replace(/ \[#\d+\].*$/, '')}` },
  {
    kind: 'lockdep',
    re: /WARNING: (possible circular locking dependency detected|possible recursive locking detected|inconsistent lock state|suspicious RCU usage)/,
    title: (m) => `lockdep: ${m[1]}`,
  },
  { kind: 'hung-task', re: /INFO: task (\S+?):\d+ blocked for more than \d+ seconds/, title: (m) => `INFO: task hung: ${m[1]}` },
  { kind: 'rcu-stall', re: /INFO: rcu_\w+ (?:detected stalls|self-detected stall)/, title: () => 'INFO: rcu detected stall' },
  { kind: 'rcu-stall', re: /rcu: INFO: rcu_\w+ (?:detected stalls|self-detected stall)/, title: () => 'INFO: rcu detected stall' },
];

/** `task sh:95 blocked ...` and pids and addresses vary from boot to boot: a title must not. */
function stripTask(s: string): string {
  return s
    .replace(/\s+in [^:]+:\d+(?=\s|$)/, '')
    .replace(/0x[0-9a-f]+/g, 'ADDR')
    .replace(/\bPID: \d+|\bpid \d+|:\d+\b/g, '')
    .trim();
}

function untimed(line: string): string {
  return line.replace(/^\s*(?:<\d>)?\[\s*[0-9.]+\]\s?/, '');
}

/** A line of a call trace: `  lkdtm_do_action+0x1c/0x30 [lkdtm]` or `  ? foo+0x1/0x2`. */
const FRAME_RE = /^\s*(?:\? )?([A-Za-z0-9_.]+\+0x[0-9a-f]+\/0x[0-9a-f]+)/;

/** Watches console lines for kernel reports; pure, fed line by line. */
export class KernelLogWatcher {
  readonly reports: KernelReport[] = [];
  private inTrace: KernelReport | undefined;
  private linesSinceStart = 0;

  push(raw: string): void {
    const line = untimed(raw);
    const start = this.start(line, raw);
    if (start) {
      if (this.reports.length < MAX_REPORTS) this.reports.push(start);
      this.inTrace = start;
      this.linesSinceStart = 0;
      return;
    }
    if (!this.inTrace) return;
    this.linesSinceStart++;
    const f = FRAME_RE.exec(line);
    if (f && !/^(dump_stack|show_stack|__warn|report_bug|warn_slowpath|handle_bug|exc_invalid_op|asm_exc_invalid_op)/.test(f[1])) {
      if (this.inTrace.frames.length < FRAMES) this.inTrace.frames.push(f[1]);
    }
    if (/---\[ end trace/.test(line) || this.inTrace.frames.length >= FRAMES || this.linesSinceStart > 80) this.inTrace = undefined;
  }

  /** The report a line starts, if any. lockdep prints its title as a WARNING: the specific pattern wins. */
  private start(line: string, raw: string): KernelReport | undefined {
    const lockdep = STARTS.find((x) => x.kind === 'lockdep')!.re.exec(line);
    if (lockdep) return { kind: 'lockdep', title: `lockdep: ${lockdep[1]}`, frames: [], line: raw };
    for (const s of STARTS) {
      const m = s.re.exec(line);
      if (m) return { kind: s.kind, title: s.title(m), frames: [], line: raw };
    }
    return undefined;
  }
}

/** The reports whose title or first line no allow pattern matches. */
export function disallowed(reports: KernelReport[], allow: RegExp[]): KernelReport[] {
  return reports.filter((r) => !allow.some((re) => re.test(r.title) || re.test(untimed(r.line))));
}

/** `WARNING at drivers/misc/lkdtm/bugs.c:83 lkdtm_WARNING (lkdtm_do_action+0x1c/0x30 < direct_entry+0x...)` */
export function describeReport(r: KernelReport): string {
  return r.frames.length ? `${r.title} (call trace: ${r.frames.join(' < ')})` : r.title;
}
