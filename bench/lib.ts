/**
 * Helpers for the benchmark and the soak run: timing, medians, the machine's description,
 * the CLI as a child process, and the lower bound: a plain QEMU boot of a halting initramfs.
 */
import { execFileSync, spawn } from 'node:child_process';
import { promises as fs, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeNewcFile } from '../harness/cpio/index.ts';
import { requireTool } from '../harness/host.ts';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const BIN = path.join(ROOT, 'bin/rootprobe.js');

export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t0 = performance.now();
  const value = await fn();
  return { ms: performance.now() - t0, value };
}

export interface Machine {
  date: string;
  cpus: number;
  cpuModel: string;
  memMiB: number;
  qemu: string;
  node: string;
  loadavgStart: number[];
  loadavgEnd?: number[];
}

export function machine(): Machine {
  const cpuModel = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? os.cpus()[0]?.model ?? '?';
  let qemu = '?';
  try {
    qemu = execFileSync(requireTool('qemu-system-x86_64'), ['--version'], { encoding: 'utf8' }).split('\n')[0];
  } catch {
    /* reported as ? */
  }
  return {
    date: new Date().toISOString(),
    cpus: os.availableParallelism(),
    cpuModel,
    memMiB: Math.round(os.totalmem() / 2 ** 20),
    qemu,
    node: process.version,
    loadavgStart: os.loadavg().map((x) => Math.round(x * 100) / 100),
  };
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs `rootprobe ARGS` as a user does (node bin/rootprobe.js), timing it from spawn to exit. */
export function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: { ...process.env, CI: '1', ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr, ms: performance.now() - t0 }));
  });
}

/** Splits a line written by shellLine() (bare words and '...' with '\'' escapes) back into argv. */
export function parseShellLine(line: string): string[] {
  const out: string[] = [];
  let i = 0;
  const s = line.trim();
  while (i < s.length) {
    while (s[i] === ' ') i++;
    if (i >= s.length) break;
    let word = '';
    while (i < s.length && s[i] !== ' ') {
      if (s[i] === "'") {
        const end = s.indexOf("'", i + 1);
        if (end < 0) throw new Error(`unbalanced quote in: ${line}`);
        word += s.slice(i + 1, end);
        i = end + 1;
      } else if (s[i] === '\\') {
        word += s[i + 1];
        i += 2;
      } else {
        word += s[i++];
      }
    }
    out.push(word);
  }
  return out;
}

/**
 * The lower bound's argv from a run's argv: the same binary, machine, CPU, accelerator,
 * memory, kernel, command line and disks; the halting initramfs instead of the scenario's;
 * a null backend instead of the waiting result socket; no pidfile.
 */
export function lowerBoundArgv(runArgv: string[], haltInitrd: string, diskPaths: string[]): string[] {
  const out: string[] = [];
  let disk = 0;
  for (let i = 0; i < runArgv.length; i++) {
    const a = runArgv[i];
    if (a === '-pidfile') {
      i++;
      continue;
    }
    if (a === '-initrd') {
      out.push(a, haltInitrd);
      i++;
      continue;
    }
    if (a === '-drive' && runArgv[i + 1]?.startsWith('file=')) {
      const rest = runArgv[i + 1].replace(/^file=(?:[^,]|,,)*/, '');
      const p = diskPaths[disk++];
      if (!p) throw new Error('lowerBoundArgv: more -drive options than disk paths');
      out.push(a, `file=${p.replaceAll(',', ',,')}${rest}`);
      i++;
      continue;
    }
    out.push(a.startsWith('socket,id=res,') ? 'null,id=res' : a);
  }
  return out;
}

/** A newc initramfs whose /init powers off at once (static busybox). */
export async function haltInitramfs(outPath: string, extra = ''): Promise<string> {
  const bb = await fs.readFile(requireTool('busybox'));
  await writeNewcFile(
    [
      { type: 'dir', path: 'bin' },
      { type: 'dir', path: 'dev' },
      { type: 'char', path: 'dev/console', major: 5, minor: 1 },
      { type: 'file', path: 'bin/busybox', data: bb, mode: 0o755 },
      { type: 'file', path: 'init', data: Buffer.from(`#!/bin/busybox sh\n${extra}/bin/busybox poweroff -f\n`), mode: 0o755 },
    ],
    outPath,
  );
  return outPath;
}

export interface RawBoot {
  ms: number;
  code: number | null;
  /** printk time of "Run /init as init process" (the kernel's own boot), seconds */
  initAt?: number;
  /** printk time of "reboot: Power down", seconds */
  powerDownAt?: number;
  consoleBytes: number;
}

/** Boots argv (argv[0] = QEMU) to its exit, console read from a pipe; kills it after limitMs. */
export function rawBoot(argv: string[], limitMs = 300_000): Promise<RawBoot> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    let bytes = 0;
    child.stdout.on('data', (d: Buffer) => {
      bytes += d.length;
      if (text.length < 1_000_000) text += d.toString('latin1');
    });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), limitMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      const ms = performance.now() - t0;
      if (code !== 0) return reject(new Error(`raw QEMU exited ${code}: ${err.trim()}\n${text.slice(-2000)}`));
      resolve({
        ms,
        code,
        initAt: printkTime(text, 'Run /init as init process'),
        powerDownAt: printkTime(text, 'reboot: Power down'),
        consoleBytes: bytes,
      });
    });
  });
}

/** The printk timestamp (seconds) of the first console line containing `what`. */
export function printkTime(text: string, what: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.includes(what)) {
      const m = /^\[\s*(\d+\.\d+)\]/.exec(line);
      return m ? Number(m[1]) : undefined;
    }
  }
  return undefined;
}

export function fmtS(ms: number): string {
  return Number.isFinite(ms) ? `${(ms / 1000).toFixed(2)} s` : '-';
}

/** A plain text table. */
export function table(head: string[], rows: string[][]): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]): string =>
    r
      .map((c, i) => (c ?? '').padEnd(w[i]))
      .join('  ')
      .trimEnd();
  return [line(head), line(w.map((n) => '-'.repeat(n))), ...rows.map(line)].join('\n');
}
