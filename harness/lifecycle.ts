/**
 * Every live child process and every temporary folder of this rootprobe process, in one place,
 * removed on every way out:
 *  - normal end and uncaught exceptions: `process.on('exit')` SIGKILLs the tracked children and
 *    removes the tracked folders synchronously (best effort; an 'exit' handler cannot wait);
 *  - SIGINT, SIGTERM, SIGHUP: children get SIGTERM, then SIGKILL after at most 1 s; the cleanup
 *    callbacks run (after the children are gone, before the folders go, so a callback can still
 *    copy a console log out of a temp folder into a report); the folders are removed; the
 *    process exits with 128 + signal number. A second signal during that exits at once.
 *  - node itself SIGKILLed (no handler can run): children started with spawnGuarded() get
 *    SIGKILL from the kernel through their parent-death signal (see spawnGuarded).
 * ROOTPROBE_KEEP_TMP=1 keeps the temporary folders (their paths are printed on stderr).
 * The handlers are installed once, lazily, on the first track/onCleanup call.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { readFileSync, rmSync, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { findCommand } from './host.ts';

const children = new Set<ChildProcess>();
const tempDirs = new Set<string>();
const callbacks = new Set<() => unknown>();
let installed = false;
let signalled = false;

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** ROOTPROBE_KEEP_TMP=1: temp folders stay where they are (for debugging the harness). */
export function keepTmp(): boolean {
  return process.env.ROOTPROBE_KEEP_TMP === '1';
}

function alive(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null && child.pid !== undefined;
}

/** Sends `sig` to the child, and to its process group when it leads one (spawned detached). */
function sendSignal(child: ChildProcess, sig: NodeJS.Signals): void {
  if (!alive(child) || child.pid === undefined) return;
  if (groupLeaders.has(child)) {
    try {
      process.kill(-child.pid, sig);
      return;
    } catch {
      /* fall through to the single process */
    }
  }
  try {
    child.kill(sig);
  } catch {
    /* already gone */
  }
}
const groupLeaders = new WeakSet<ChildProcess>();

/**
 * Ends a child: SIGTERM, then SIGKILL if it has not exited after `graceMs` (at most 1 s by
 * default). Resolves when the child has exited (or at once if it already had).
 */
export async function terminate(child: ChildProcess, graceMs = 1000): Promise<void> {
  if (!alive(child)) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  sendSignal(child, graceMs > 0 ? 'SIGTERM' : 'SIGKILL');
  if (graceMs > 0) {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), graceMs);
    });
    const r = await Promise.race([exited.then(() => 'ok' as const), late]);
    clearTimeout(timer);
    if (r === 'ok') return;
    sendSignal(child, 'SIGKILL');
  }
  // SIGKILL cannot be refused; a bounded wait guards against a zombie we never hear about.
  await Promise.race([exited, new Promise((r) => setTimeout(r, 2000).unref())]);
}

function onExitSync(): void {
  for (const c of children) sendSignal(c, 'SIGKILL');
  children.clear();
  for (const fn of callbacks) {
    try {
      const r = fn();
      if (r instanceof Promise) r.catch(() => {});
    } catch {
      /* best effort at exit */
    }
  }
  callbacks.clear();
  if (keepTmp()) {
    for (const d of tempDirs) process.stderr.write(`rootprobe: kept temporary folder ${d}\n`);
  } else {
    for (const d of tempDirs) {
      try {
        rmSync(d, { recursive: true, force: true });
      } catch {
        /* best effort at exit */
      }
    }
  }
  tempDirs.clear();
}

function onSignal(sig: (typeof SIGNALS)[number]): void {
  const code = 128 + (os.constants.signals[sig] ?? 0);
  if (signalled) {
    // A second signal: stop waiting, kill everything synchronously and go.
    onExitSync();
    process.exit(code);
  }
  signalled = true;
  process.stderr.write(`\nrootprobe: ${sig}: stopping QEMU and removing temporary folders\n`);
  const hard = setTimeout(() => {
    onExitSync();
    process.exit(code);
  }, 10_000);
  hard.unref();
  cleanupAll()
    .catch((e) => process.stderr.write(`rootprobe: cleanup failed: ${(e as Error).message}\n`))
    .finally(() => process.exit(code));
}

function install(): void {
  if (installed) return;
  installed = true;
  for (const sig of SIGNALS) process.on(sig, onSignal);
  process.on('exit', onExitSync);
}

/** Tracks a child until it exits (or until the returned function is called). */
export function trackChild(child: ChildProcess): () => void {
  install();
  if (!alive(child) && child.pid !== undefined) return () => {};
  children.add(child);
  const untrack = (): void => {
    children.delete(child);
  };
  child.once('exit', untrack);
  child.once('error', untrack);
  return untrack;
}

/** Tracks a folder to be removed (recursively) on the way out, unless untracked first. */
export function trackTempDir(dir: string): () => void {
  install();
  const abs = path.resolve(dir);
  tempDirs.add(abs);
  return () => {
    tempDirs.delete(abs);
  };
}

/**
 * The start time of a process (field 22 of /proc/PID/stat, clock ticks since boot), which
 * with its pid names it uniquely: a pid reused by a later process has another start time.
 */
export function processStartTime(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // comm (field 2) is in parentheses and may hold spaces or parentheses: split after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const v = Number(fields[19]);
    return Number.isFinite(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

let tagMemo: string | undefined;

/**
 * This process's owner tag, `rp<pid>.<start time, base 36>`, put into the names of the
 * temporary folders it makes so that a later rootprobe can tell whether their owner is gone
 * (harness/sweep.ts).
 */
export function ownerTag(): string {
  tagMemo ??= `rp${process.pid}.${(processStartTime(process.pid) ?? 0).toString(36)}`;
  return tagMemo;
}

/** The owner (pid and start time) of a name made with ownerTag(), or undefined for a name without one. */
export function parseOwnerTag(name: string): { pid: number; start: number } | undefined {
  // Only the form mkdtemp gives (`…-rpPID.START-XXXXXX`): a name without a tag never parses as one.
  const m = /-rp(\d+)\.([0-9a-z]+)-[A-Za-z0-9]{6}$/.exec(name);
  if (!m) return undefined;
  return { pid: Number(m[1]), start: parseInt(m[2], 36) };
}

/** True when the process of that pid and start time still runs (a pid reused since does not count). */
export function ownerAlive(owner: { pid: number; start: number }): boolean {
  const st = processStartTime(owner.pid);
  return st !== undefined && (owner.start === 0 || st === owner.start);
}

/** A new tracked folder `<os.tmpdir()>/<prefix><owner tag>-XXXXXX`. */
export async function makeTempDir(prefix: string): Promise<string> {
  install();
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `${prefix}${ownerTag()}-`));
  trackTempDir(dir);
  return dir;
}

/** Removes a tracked temp folder now (kept under ROOTPROBE_KEEP_TMP=1) and untracks it. */
export async function removeTempDir(dir: string): Promise<void> {
  const abs = path.resolve(dir);
  tempDirs.delete(abs);
  if (!keepTmp()) await fs.rm(abs, { recursive: true, force: true });
}

/**
 * A function to run on the way out (signal, cleanupAll, or process exit). It runs once; at
 * process exit it runs synchronously, so a promise it returns is not awaited there.
 */
export function onCleanup(fn: () => unknown): () => void {
  install();
  callbacks.add(fn);
  return () => {
    callbacks.delete(fn);
  };
}

/** Ends every tracked child (SIGTERM, SIGKILL after 1 s), runs the callbacks, removes the folders. */
export async function cleanupAll(): Promise<void> {
  const cs = [...children];
  children.clear();
  await Promise.all(cs.map((c) => terminate(c, 1000)));
  const fns = [...callbacks];
  callbacks.clear();
  for (const fn of fns) {
    try {
      await fn();
    } catch (e) {
      process.stderr.write(`rootprobe: cleanup step failed: ${(e as Error).message}\n`);
    }
  }
  const dirs = [...tempDirs];
  // On a signal the folders stay tracked until the exit: work still in flight (an artifact
  // folder being assembled as <dir>.partial-PID) may write into one after it was removed here,
  // and the exit handler removes it again, synchronously, when nothing can run after it.
  if (!signalled || keepTmp()) tempDirs.clear();
  if (keepTmp()) {
    for (const d of dirs) process.stderr.write(`rootprobe: kept temporary folder ${d}\n`);
  } else {
    await Promise.all(dirs.map((d) => fs.rm(d, { recursive: true, force: true }).catch(() => {})));
  }
}

/** What is tracked now (for tests and the doctor). */
export function tracked(): { children: number[]; tempDirs: string[]; callbacks: number } {
  return {
    children: [...children].map((c) => c.pid ?? -1),
    tempDirs: [...tempDirs],
    callbacks: callbacks.size,
  };
}

export interface GuardedSpawnOptions extends SpawnOptions {
  /** Put the child in its own process group (not for a child that reads the terminal). */
  detached?: boolean;
}

/**
 * Spawns a tracked child that cannot outlive this process. Node cannot set the child's
 * parent-death signal itself (prctl(PR_SET_PDEATHSIG) needs native code), so the command runs
 * under util-linux's `setpriv --pdeathsig KILL`, which sets it and then execs the command: the
 * child keeps its pid through the execs, and the kernel SIGKILLs it when the thread that
 * spawned it dies, even by SIGKILL (so call this from node's main thread, not a worker).
 * setpriv leaves a window: if we die between the fork and its prctl(), no signal ever comes.
 * So setpriv execs a one-line `sh` first that checks its parent is still us (else exits) and
 * then execs the command. Without setpriv the child is only tracked (the caller should also
 * leave a pidfile). `pdeathsig` in the result says which it was.
 */
export function spawnGuarded(
  command: string,
  args: string[],
  options: GuardedSpawnOptions = {},
): { child: ChildProcess; pdeathsig: boolean } {
  const setpriv = findCommand('setpriv');
  const sh = findCommand('sh', ['/bin/sh']);
  const guarded = setpriv !== undefined && sh !== undefined;
  const child = guarded
    ? spawn(
        setpriv,
        ['--pdeathsig', 'KILL', '--', sh, '-c', GUARD_SCRIPT, 'rootprobe-guard', String(process.pid), command, ...args],
        options,
      )
    : spawn(command, args, options);
  if (options.detached) groupLeaders.add(child);
  trackChild(child);
  return { child, pdeathsig: guarded };
}

export interface GuardedResult {
  /** Exit status, or null when a signal ended it. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: Buffer;
}

/**
 * Runs a command to its end as spawnGuarded does, in a process group of its own (so that a
 * signal to rootprobe ends it and everything it started: apt-get's methods, dpkg-deb's tar,
 * make's compilers), with its output collected (at most `maxBuffer` bytes of each stream are
 * kept; the rest is dropped, not an error). `input` goes to its stdin; a command that exits
 * before reading it all is no error here (its exit status says how it went). Rejects only when
 * the command cannot be started (an error with `code`, e.g. ENOENT); a non-zero exit is in the
 * result.
 */
export function runGuarded(
  command: string,
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; maxBuffer?: number; input?: string | Buffer } = {},
): Promise<GuardedResult> {
  const max = options.maxBuffer ?? 64 << 20;
  return new Promise((resolve, reject) => {
    const { child } = spawnGuarded(command, args, {
      cwd: options.cwd,
      env: options.env,
      stdio: [options.input !== undefined ? 'pipe' : 'ignore', 'pipe', 'pipe'],
      detached: true,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outLen = 0;
    let errLen = 0;
    child.stdout!.on('data', (d: Buffer) => {
      if (outLen < max) out.push(d.subarray(0, max - outLen));
      outLen += d.length;
    });
    child.stderr!.on('data', (d: Buffer) => {
      if (errLen < max) err.push(d.subarray(0, max - errLen));
      errLen += d.length;
    });
    if (options.input !== undefined) {
      // EPIPE when the command stops reading (a decompressor at the end of its stream, `head`).
      child.stdin!.on('error', () => {});
      child.stdin!.end(options.input);
    }
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal, stdout: Buffer.concat(out), stderr: Buffer.concat(err) }));
  });
}

/** Runs after prctl(PR_SET_PDEATHSIG): exits if the parent died before that, else becomes the command. */
const GUARD_SCRIPT = '[ "$PPID" = "$1" ] || exit 137; shift; exec "$@"';

/**
 * Promise.all that waits for every promise before it throws the first failure: nothing
 * started here is still building (a mke2fs, a cache entry being written) when it returns.
 */
export async function settled<T extends readonly unknown[]>(ps: T): Promise<{ -readonly [K in keyof T]: Awaited<T[K]> }> {
  const rs = await Promise.allSettled(ps);
  const failed = rs.find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;
  return rs.map((r) => (r as PromiseFulfilledResult<unknown>).value) as { -readonly [K in keyof T]: Awaited<T[K]> };
}
