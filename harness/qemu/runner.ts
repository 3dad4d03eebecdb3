/**
 * Boots one QEMU guest and watches it: the console streamed to `console.log` and, line by line,
 * through a ConsoleWatcher (console.ts: tail, notices, panic, kernel reports) to a handler; the
 * result channel (result-socket.ts) streamed to `result.stream` and to a handler as raw bytes.
 * The boot ends the moment QEMU exits, on a kernel panic line, at the deadline, on stop() or on
 * the abort signal; QEMU never outlives it (see lifecycle.ts). What happened is recorded as
 * events, and how the boot ended is a pure function of them (ending.ts).
 *
 * Files in runDir: console.log, result.stream, qemu.cmdline (the exact argv, shell-quoted on
 * one line; note that its result channel is a socket QEMU waits on: to rerun it by hand,
 * replace `socket,id=res,...` by `file,id=res,path=result.stream`, see standaloneArgv()),
 * qemu.pid (written by QEMU, removed by QEMU when it exits cleanly).
 */
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SetupError, UsageError } from '../errors.ts';
import { ownerTag, removeTempDir, spawnGuarded, terminate, trackTempDir } from '../lifecycle.ts';
import { MAX_SOCKET_PATH, qemuArgs, shellLine, type BootSpec } from './command.ts';
import { ConsoleWatcher } from './console.ts';
import { abortReason, BootEvents, type BootEnd, type BootEvent } from './ending.ts';
import { ResultSocket } from './result-socket.ts';
import { batchedWriter, endStream } from './streams.ts';
import type { KernelReport } from '../verdict/kernel-log.ts';
import { userSpaceLines } from '../verdict/user-space.ts';

export { PANIC_MARK } from './console.ts';

export type { BootSpec } from './command.ts';

export interface BootHandlers {
  /** each console line (no \r\n) */
  onConsole?(line: string): void;
  /** raw bytes from the result port as they arrive */
  onResult?(chunk: Buffer): void;
}

export type { BootEnd } from './ending.ts';

export interface BootOutcome {
  end: BootEnd;
  exitCode: number | null;
  signal: string | null;
  /** the 'Kernel panic - not syncing: ...' line */
  panicLine?: string;
  /** why stop() was called (or the abort reason) when end = 'stopped' */
  stopReason?: string;
  durationMs: number;
  /** last 20 console lines */
  consoleTail: string[];
  /**
   * Console lines that explain a failure printed long before it, so they may have left the
   * tail (at most 10): the initramfs failing to unpack, the kernel out of memory.
   */
  notices: string[];
  /** The kernel's reports of bugs it survived (WARNING, BUG, KASAN...): verdict/kernel-log.ts. */
  kernelReports: KernelReport[];
  /** What user space printed on the console before a panic (or the end), newest last, at most 10 lines. */
  userSpace?: string[];
  consoleLog: string;
  resultStream: string;
  cmdlineFile: string;
  /** the exact argv (argv[0] = qemu binary) */
  argv: string[];
  /** QEMU's own stderr (bounded, last 8 KiB) */
  stderr: string;
  /** QEMU's pid (also in runDir/qemu.pid while it runs) */
  pid?: number;
  /** false when QEMU runs without a parent-death signal (setpriv missing) */
  pdeathsig: boolean;
}

export interface BootControl {
  /** ends the boot now (kills QEMU), end='stopped' */
  stop(reason: string): void;
}

export interface BootOptions extends BootHandlers {
  deadlineMs: number;
  signal?: AbortSignal;
  /** console on the user's terminal (Ctrl-a x quits); the result channel stays on the socket */
  interactive?: boolean;
}

const STDERR_MAX = 8 * 1024;
/** After the panic line, QEMU usually exits by itself (panic=-1, -no-reboot); else it is killed. */
const PANIC_GRACE_MS = 500;
const MAX_TIMER = 2 ** 31 - 1;

/** A folder for the result socket whose path leaves room under the 107-byte sun_path limit. */
function shortTempDir(): string {
  const base = Buffer.byteLength(os.tmpdir()) <= 60 ? os.tmpdir() : '/tmp';
  const dir = mkdtempSync(path.join(base, `rootprobe-q-${ownerTag()}-`)); // owner tag: swept if we are SIGKILLed (sweep.ts)
  if (Buffer.byteLength(path.join(dir, 'res.sock')) > MAX_SOCKET_PATH) {
    rmSync(dir, { recursive: true, force: true });
    throw new SetupError(`no temporary folder with a path short enough for a unix socket (tried ${base})`);
  }
  return dir;
}

function mustExist(what: string, p: string): void {
  if (!existsSync(p)) {
    throw new SetupError(`the ${what} ${p} does not exist; build or fetch it first (check the path given to the runner)`);
  }
}

/** Replaces the waiting result socket by a file, so a person can rerun the argv from a shell. */
export function standaloneArgv(argv: string[], resultFile = 'result.stream'): string[] {
  return argv.map((a) => (a.startsWith('socket,id=res,') ? `file,id=res,path=${resultFile.replaceAll(',', ',,')}` : a));
}

export function bootQemu(spec: BootSpec, opts: BootOptions): { control: BootControl; outcome: Promise<BootOutcome> } {
  if (!(typeof opts.deadlineMs === 'number' && opts.deadlineMs > 0)) {
    throw new UsageError(`deadlineMs must be a positive number of milliseconds; got ${opts.deadlineMs}`);
  }
  if (spec.kernel !== undefined) mustExist('kernel image', spec.kernel);
  if (spec.esp) mustExist('EFI system partition', spec.esp.path);
  if (spec.uefi) {
    mustExist('UEFI firmware', spec.uefi.code);
    mustExist('UEFI variable store', spec.uefi.vars);
  }
  if (spec.initrd !== undefined) mustExist('initramfs', spec.initrd);
  for (const d of spec.disks ?? []) mustExist('disk image', d.path);
  if (spec.qemuBinary !== undefined) mustExist('QEMU binary', spec.qemuBinary);

  mkdirSync(spec.runDir, { recursive: true });
  const consoleLog = path.join(spec.runDir, 'console.log');
  const resultStream = path.join(spec.runDir, 'result.stream');
  const cmdlineFile = path.join(spec.runDir, 'qemu.cmdline');
  const pidFile = path.join(spec.runDir, 'qemu.pid');

  // A private folder: the result socket (short path) and QEMU's TMPDIR (snapshot overlays).
  const privDir = shortTempDir();
  trackTempDir(privDir);
  const socketPath = path.join(privDir, 'res.sock');
  let argv: string[];
  try {
    argv = qemuArgs(spec, { resultSocket: socketPath, interactive: opts.interactive });
  } catch (e) {
    void removeTempDir(privDir);
    throw e;
  }
  writeFileSync(cmdlineFile, `${shellLine(argv)}\n`);
  rmSync(pidFile, { force: true });

  const consoleWs = createWriteStream(consoleLog);
  const resultWs = createWriteStream(resultStream);
  let stderrBuf = Buffer.alloc(0);
  const events = new BootEvents();
  const timers: NodeJS.Timeout[] = [];

  const started = Date.now();
  const { child, pdeathsig } = spawnGuarded(argv[0], argv.slice(1), {
    stdio: opts.interactive ? ['inherit', 'inherit', 'pipe'] : ['ignore', 'pipe', 'pipe'],
    // Own process group: a Ctrl-C on the terminal reaches rootprobe, which ends QEMU itself.
    // Interactive QEMU stays in the foreground group, or it could not read the terminal.
    detached: !opts.interactive,
    env: { ...process.env, TMPDIR: privDir },
  });

  const kill = (graceMs: number): void => {
    if (!events.exited) void terminate(child, graceMs);
  };
  /** Records what happened; the first request to end the boot ends QEMU. */
  const observe = (ev: BootEvent): void => {
    if (!events.record(ev)) return;
    if (ev.kind === 'panic') timers.push(setTimeout(() => kill(0), PANIC_GRACE_MS));
    else kill(1000);
  };
  const stop = (reason: string): void => observe({ kind: 'stop', reason });
  /** A user's handler that throws stops the boot, saying so. */
  const guarded =
    <T>(name: string, handler: ((x: T) => void) | undefined) =>
    (x: T): void => {
      if (!handler) return;
      try {
        handler(x);
      } catch (e) {
        stop(`${name} handler threw: ${(e as Error).message}`);
      }
    };

  // A host write error (a full disk) on the console log or the result stream ends the boot,
  // saying so (qemu/../verdict/host-disk.ts names it), instead of crashing the process.
  for (const [ws, file] of [
    [consoleWs, consoleLog],
    [resultWs, resultStream],
  ] as const) {
    ws.on('error', (e: NodeJS.ErrnoException) => stop(`the host could not write ${file}: ${e.code ?? ''} ${e.message}`.trim()));
  }

  // Console: a ring of the last lines, never the whole text.
  const con = new ConsoleWatcher({
    onPanic: (line) => observe({ kind: 'panic', line }),
    onLine: guarded('onConsole', opts.onConsole),
  });
  const consoleOut = child.stdout ? batchedWriter(consoleWs, child.stdout) : undefined;
  child.stdout?.on('data', (chunk: Buffer) => {
    consoleOut!.push(chunk);
    con.write(chunk);
  });
  child.stderr?.on('data', (raw: Buffer) => {
    // QEMU announces that it waits for our socket connection; that is expected, not news.
    const chunk = raw.includes('QEMU waiting for connection on')
      ? Buffer.from(raw.toString('utf8').replace(/^.*QEMU waiting for connection on.*\n?/gm, ''))
      : raw;
    if (chunk.length === 0) return;
    if (opts.interactive) process.stderr.write(chunk);
    stderrBuf = Buffer.concat([stderrBuf, chunk]);
    if (stderrBuf.length > STDERR_MAX) stderrBuf = stderrBuf.subarray(stderrBuf.length - STDERR_MAX);
  });

  // Result channel: QEMU listens and waits for us before it starts the guest.
  const result = new ResultSocket({
    socketPath,
    file: resultWs,
    onData: guarded('onResult', opts.onResult),
    onClose: () => observe({ kind: 'result-closed' }),
    keepTrying: () => !events.settled,
  });
  result.connect();

  timers.push(setTimeout(() => observe({ kind: 'deadline' }), Math.min(opts.deadlineMs, MAX_TIMER)));
  const onAbort = (): void => stop(abortReason(opts.signal?.reason));
  if (opts.signal?.aborted) onAbort();
  else opts.signal?.addEventListener('abort', onAbort, { once: true });

  const outcome = new Promise<BootOutcome>((resolve) => {
    let spawnError: Error | undefined;
    const finish = async (exitCode: number | null, signal: string | null): Promise<void> => {
      if (events.exited) return;
      events.record({ kind: 'exit', exitCode, signal });
      const durationMs = Date.now() - started;
      for (const t of timers) clearTimeout(t);
      opts.signal?.removeEventListener('abort', onAbort);
      con.end(); // a last partial line may still be the panic line
      // QEMU is gone, so the socket's far end is closed; wait briefly for the last bytes.
      await result.drain(1000);
      consoleOut?.flush();
      await Promise.all([endStream(consoleWs), endStream(resultWs)]);
      await removeTempDir(privDir);
      const ending = events.ending();
      resolve({
        ...ending,
        durationMs,
        consoleTail: [...con.tail],
        notices: [...con.notices],
        kernelReports: [...con.kernelReports],
        userSpace: userSpaceLines(con.recent),
        consoleLog,
        resultStream,
        cmdlineFile,
        argv,
        stderr: stderrBuf.toString('utf8') + (spawnError ? `\nspawn failed: ${spawnError.message}` : ''),
        ...(child.pid !== undefined ? { pid: child.pid } : {}),
        pdeathsig,
      });
    };
    child.once('error', (e) => {
      spawnError = e;
      events.record({ kind: 'spawn-error', message: e.message });
      // A spawn failure emits no 'close' when no stdio was opened; don't wait for it.
      setTimeout(() => void finish(child.exitCode, child.signalCode), 50);
    });
    child.once('close', (code, sig) => void finish(code, sig));
  });

  return {
    control: {
      stop(reason: string) {
        stop(reason);
      },
    },
    outcome,
  };
}
