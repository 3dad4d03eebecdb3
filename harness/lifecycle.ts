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
import { rmSync, promises as fs } from 'node:fs';
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

/** A new tracked folder `<os.tmpdir()>/<prefix>XXXXXX`. */
export async function makeTempDir(prefix: string): Promise<string> {
  install();
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
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
  tempDirs.clear();
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

/** Runs after prctl(PR_SET_PDEATHSIG): exits if the parent died before that, else becomes the command. */
const GUARD_SCRIPT = '[ "$PPID" = "$1" ] || exit 137; shift; exec "$@"';
