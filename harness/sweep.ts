/**
 * What rootprobe processes that are gone left behind, removed at the start of the next one:
 *  - cache entries being built (`<cache>/<kind>/.tmp-<key>-…`), apt download folders
 *    (`<cache>/apt/<suite>/download-…`) and small `*.PID.tmp` files;
 *  - lock folders (`*.lock`) whose holder is gone;
 *  - temporary folders in TMPDIR (and /tmp, where the QEMU socket folders go when TMPDIR is
 *    long) named `rootprobe-…` with an owner tag (lifecycle.ownerTag).
 * A name is removed only when its owner is known to be gone: the pid in its owner tag (or lock
 * file) no longer runs with the recorded start time, or, for a cache temporary of an older
 * rootprobe without a tag, the entry's lock (held all the while an entry is built) has no live
 * holder. Anything of a live process, and a TMPDIR folder without an owner tag, is left alone.
 * SIGKILL leaves these behind (no handler runs); Ctrl-C and SIGTERM remove their own at once.
 */
import { existsSync, promises as fs, readdirSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { cacheRoot, lockHolderAlive } from './cache.ts';
import { ownerAlive, parseOwnerTag } from './lifecycle.ts';

export interface Swept {
  path: string;
  why: string;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * A folder's names, read synchronously: the sweep runs at every start, before anything else,
 * and the cache holds hundreds of entries; awaited one by one, its reads and stats took
 * 25-30 ms of every command's start, synchronously about 2.
 */
function entries(dir: string): Array<{ name: string; dir: boolean }> {
  try {
    return readdirSync(dir, { withFileTypes: true }).map((d) => ({ name: d.name, dir: d.isDirectory() }));
  } catch {
    return [];
  }
}

/** `.tmp-<key>-[<tag>-]XXXXXX`: whether its builder is gone. */
async function cacheTempGone(parent: string, name: string): Promise<boolean> {
  const owner = parseOwnerTag(name);
  if (owner) return !ownerAlive(owner);
  // An older rootprobe's temporary: its key's lock is held for as long as it builds.
  const m = /^\.tmp-(.+)-[A-Za-z0-9]{6}$/.exec(name);
  if (!m) return false;
  const lock = path.join(parent, `${m[1]}.lock`);
  const st = await fs.stat(lock).catch(() => undefined);
  if (!st) {
    // No lock at all: left by a process that died. A temporary made in the last minute is left
    // alone (its lock may be on its way to being removed by a holder that just renamed it).
    const own = await fs.stat(path.join(parent, name)).catch(() => undefined);
    return own !== undefined && Date.now() - own.mtimeMs > 60_000;
  }
  return !(await lockHolderAlive(lock));
}

async function sweepCacheDir(dir: string, depth: number, out: Swept[]): Promise<void> {
  for (const e of entries(dir)) {
    const p = path.join(dir, e.name);
    if (e.dir && e.name.startsWith('.tmp-')) {
      if (await cacheTempGone(dir, e.name)) out.push({ path: p, why: 'a cache entry whose builder is gone' });
    } else if (e.dir && e.name.startsWith('download-')) {
      const owner = parseOwnerTag(e.name);
      // An older rootprobe's download folder: its suite's apt tree lock is held while it downloads.
      const gone = owner ? !ownerAlive(owner) : !(await lockHolderAlive(`${dir}.lock`));
      if (gone) out.push({ path: p, why: 'an apt download folder whose process is gone' });
    } else if (e.dir && e.name.endsWith('.lock')) {
      if (!(await lockHolderAlive(p))) out.push({ path: p, why: 'a lock whose holder is gone' });
    } else if (!e.dir && /\.(\d+)\.tmp$/.test(e.name)) {
      const pid = Number(/\.(\d+)\.tmp$/.exec(e.name)![1]);
      if (!pidAlive(pid)) out.push({ path: p, why: 'a half-written file whose writer is gone' });
    } else if (e.dir && depth > 0 && !e.name.startsWith('.')) {
      // Kinds nest (images/…, distro/…); a whole entry is not searched.
      if (!existsSync(path.join(p, '.rootprobe-manifest.json'))) await sweepCacheDir(p, depth - 1, out);
    }
  }
}

async function sweepTmp(dir: string, out: Swept[]): Promise<void> {
  for (const e of entries(dir)) {
    if (!e.name.startsWith('rootprobe-')) continue;
    const owner = parseOwnerTag(e.name);
    if (owner && !ownerAlive(owner)) out.push({ path: path.join(dir, e.name), why: 'a temporary folder whose rootprobe is gone' });
  }
}

/** What would be swept now (nothing is removed). */
export async function findLeftovers(opts: { cache?: string; tmpDirs?: string[] } = {}): Promise<Swept[]> {
  const out: Swept[] = [];
  await sweepCacheDir(opts.cache ?? cacheRoot(), 3, out);
  const tmps = opts.tmpDirs ?? [...new Set([os.tmpdir(), '/tmp'].map((d) => path.resolve(d)))];
  for (const t of tmps) await sweepTmp(t, out);
  return out;
}

/** Removes what processes that are gone left behind; returns what it removed. Never throws. */
export async function sweepLeftovers(opts: { cache?: string; tmpDirs?: string[] } = {}): Promise<Swept[]> {
  const found = await findLeftovers(opts).catch(() => [] as Swept[]);
  const removed: Swept[] = [];
  for (const s of found) {
    try {
      await fs.rm(s.path, { recursive: true, force: true });
      removed.push(s);
    } catch {
      // another user's, or already gone: not ours to insist on
    }
  }
  return removed;
}
