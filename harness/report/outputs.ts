/**
 * Output paths, checked before anything boots and written so that one failed write never hides
 * the rest. `checkOutputs` answers, for each report file (--json, --junit, --tap, --evidence) and
 * folder (--artifacts), whether it can be written at all: an existing folder where a file is
 * wanted (or the other way round), a parent that is a file, a folder this user cannot write, a
 * read-only file system, /proc, /sys or /dev, or the same path given for two reports. It creates
 * nothing. `writeReports` then writes every report it is given, each as a temporary sibling
 * renamed into place (no temporary left behind when the write fails), and returns the ones that
 * failed instead of throwing, so the caller can still print its summary and say what was lost.
 */
import { constants, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { UsageError } from '../errors.ts';

export interface OutputPath {
  /** The option that named it, e.g. `--json`. */
  flag: string;
  path: string;
  kind: 'file' | 'folder';
  /** `-` means standard output (for --tap). */
  allowDash?: boolean;
}

/** Exit status when every run was reported on the terminal but a report file could not be written. */
export const EXIT_REPORT_LOST = 3;

const PSEUDO = ['/proc', '/sys', '/dev'];

function errCode(e: unknown): string {
  return (e as NodeJS.ErrnoException).code ?? 'error';
}

async function writable(dir: string): Promise<string | undefined> {
  try {
    await fs.access(dir, constants.W_OK | constants.X_OK);
    return undefined;
  } catch (e) {
    const code = errCode(e);
    if (code === 'EROFS') return 'it is on a read-only file system';
    if (code === 'EACCES' || code === 'EPERM') return 'this user cannot write there';
    return `it cannot be written (${code})`;
  }
}

/** Why `o` cannot be written, or undefined when it can. Creates nothing. */
export async function outputProblem(o: OutputPath): Promise<string | undefined> {
  if (o.path === '-') return o.allowDash ? undefined : `'-' (standard output) is only for --tap`;
  if (o.path === '') return 'the path is empty';
  if (o.path.includes('\0')) return 'the path holds a NUL byte';
  const abs = path.resolve(o.path);
  const pseudo = PSEUDO.find((p) => abs === p || abs.startsWith(`${p}/`));
  if (pseudo) return `${pseudo} is a kernel file system, not a place for ${o.kind === 'file' ? 'a report' : 'run folders'}`;
  let st;
  try {
    st = await fs.stat(abs);
  } catch (e) {
    const code = errCode(e);
    if (code === 'ENOTDIR') return `a part of it is a file, not a folder`;
    if (code === 'ELOOP') return 'it loops through symbolic links';
    if (code === 'ENAMETOOLONG') return 'the path is too long';
    if (code === 'EACCES') return 'this user cannot look into its folder';
    if (code !== 'ENOENT') return `it cannot be looked at (${code})`;
  }
  if (st) {
    if (o.kind === 'file') {
      if (st.isDirectory()) return 'it is a folder; give a file name';
      if (!st.isFile()) return 'it exists and is not a regular file';
      // The report goes to a temporary sibling renamed over it: the folder must be writable.
      return writable(path.dirname(abs)).then((w) => w && `its folder ${path.dirname(abs)}: ${w}`);
    }
    if (!st.isDirectory()) return 'it is a file, not a folder';
    return writable(abs);
  }
  // It does not exist: the nearest existing ancestor must be a folder this user can write.
  let dir = path.dirname(abs);
  for (;;) {
    let ds;
    try {
      ds = await fs.stat(dir);
    } catch (e) {
      const code = errCode(e);
      if (code === 'ENOTDIR') return `a part of it is a file, not a folder`;
      if (code !== 'ENOENT') return `its folder ${dir} cannot be looked at (${code})`;
    }
    if (ds) {
      if (!ds.isDirectory()) return `${dir} is a file, not a folder`;
      const w = await writable(dir);
      return w && (dir === path.dirname(abs) ? `its folder ${dir}: ${w}` : `its folder does not exist and ${dir} cannot be written: ${w}`);
    }
    const up = path.dirname(dir);
    if (up === dir) return 'no part of it exists';
    dir = up;
  }
}

/**
 * Throws a UsageError naming every output that cannot be written (with the reason), and any
 * path given for two outputs. Call it before the first download or boot.
 */
export async function checkOutputs(outputs: Array<OutputPath | undefined>): Promise<void> {
  const given = outputs.filter((o): o is OutputPath => o !== undefined);
  const problems: string[] = [];
  const seen = new Map<string, string>();
  for (const o of given) {
    const why = await outputProblem(o);
    if (why) problems.push(`${o.flag} ${o.path}: ${why}`);
    if (o.path === '-') continue;
    const abs = path.resolve(o.path);
    const other = seen.get(abs);
    if (other) problems.push(`${o.flag} ${o.path}: the same path as ${other}`);
    else seen.set(abs, o.flag);
  }
  if (problems.length)
    throw new UsageError(
      `cannot write ${problems.length === 1 ? 'an output' : 'these outputs'}, so nothing was run:\n  ${problems.join('\n  ')}`,
    );
}

/** Writes `text` to `file` (or standard output for `-`) through a temporary sibling; no temporary is left on failure. */
export async function writeOutput(file: string, text: string): Promise<void> {
  if (file === '-') {
    process.stdout.write(text);
    return;
  }
  await fs.mkdir(path.dirname(path.resolve(file)), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    await fs.writeFile(tmp, text);
    await fs.rename(tmp, file);
  } catch (e) {
    await fs.rm(tmp, { force: true }).catch(() => {});
    throw e;
  }
}

export interface Lost {
  flag: string;
  path: string;
  reason: string;
}

/**
 * Writes every report (each one's text made only when it is written), carrying on past a
 * failure; returns the ones that could not be written.
 */
export async function writeReports(reports: Array<{ flag: string; path: string | undefined; text: () => string }>): Promise<Lost[]> {
  const lost: Lost[] = [];
  for (const r of reports) {
    if (r.path === undefined) continue;
    try {
      await writeOutput(r.path, r.text());
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      lost.push({ flag: r.flag, path: r.path, reason: err.code ? `${err.code}: ${err.message}` : err.message });
    }
  }
  return lost;
}

/** The lines that name the lost reports (for stderr, after the summary). */
export function lostText(lost: Lost[]): string {
  return lost.map((l) => `rootprobe: could not write ${l.flag} ${l.path}: ${l.reason}\n`).join('');
}
