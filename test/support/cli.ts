/**
 * Running rootprobe (or any command) as a user would, from tests: a child process with its
 * output collected, never a call into the CLI module (so exit codes and stderr are real).
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BIN = path.join(ROOT, 'bin/rootprobe.js');

export interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
  /** wall time in milliseconds */
  ms: number;
}

/** Runs a command to its end. */
export function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Ran> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd ?? ROOT, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr, ms: Date.now() - started }));
  });
}

/** `rootprobe ARGS` in plain (CI) output mode. */
export function cli(args: string[], opts: { cwd?: string; env?: Record<string, string | undefined> } = {}): Promise<Ran> {
  return run(process.execPath, [BIN, ...args], { cwd: opts.cwd, env: { ...process.env, CI: '1', ...opts.env } });
}

/** QEMU processes whose command line mentions `marker` (runs of other tests are left out). */
export function qemuPids(marker: string): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'latin1');
      if (/(^|\/)qemu-system-x86_64\0/.test(cmd) && cmd.includes(marker)) out.push(Number(p));
    } catch {
      /* gone */
    }
  }
  return out;
}
