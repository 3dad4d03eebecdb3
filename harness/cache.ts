/**
 * The on-disk cache: kernels, built kernels, images. Every entry is a folder built in a
 * temporary sibling and renamed into place only when whole, with a manifest of the sizes of
 * every file in it. An entry whose files no longer match the manifest (truncated, deleted)
 * is discarded and rebuilt; a half-built entry is never visible under its final name.
 * Two processes building the same entry serialise on a lock folder.
 */
import { createReadStream, promises as fs, readFileSync, statSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { ownerAlive, ownerTag, processStartTime, trackTempDir } from './lifecycle.ts';

const MANIFEST = '.rootprobe-manifest.json';

/** `$ROOTPROBE_CACHE`, else `$XDG_CACHE_HOME/rootprobe`, else `~/.cache/rootprobe`. */
export function cacheRoot(): string {
  if (process.env.ROOTPROBE_CACHE) return path.resolve(process.env.ROOTPROBE_CACHE);
  const xdg = process.env.XDG_CACHE_HOME;
  return path.join(xdg && path.isAbsolute(xdg) ? xdg : path.join(os.homedir(), '.cache'), 'rootprobe');
}

/**
 * A fact derived from a file's bytes (its sha256, the applet list of a busybox, a compiler's
 * version), remembered across processes: keyed by the file's path and its identity (device,
 * inode, size, mtime, ctime), kept as a small JSON file under <cache>/memo. A file changed in
 * any way gets a new key; a file modified within the last 2 s is not remembered, since another
 * write in the same clock tick would leave its identity unchanged (git's "racy" files).
 */
export async function fileMemo<T>(kind: string, file: string, compute: () => Promise<T>): Promise<T> {
  // The lookup is synchronous: a warm run makes a dozen before QEMU starts, and each awaited
  // stat and read went through the thread pool, four hops a read.
  const st = statSync(file);
  const id = `${kind}\0${path.resolve(file)}\0${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
  const memoFile = path.join(cacheRoot(), 'memo', `${createHash('sha256').update(id).digest('hex').slice(0, 40)}.json`);
  try {
    const stored = JSON.parse(readFileSync(memoFile, 'utf8')) as { id: string; value: T };
    if (stored.id === id) return stored.value;
  } catch {
    // not remembered yet, or unreadable: compute it
  }
  const value = await compute();
  if (Date.now() - Math.max(st.mtimeMs, st.ctimeMs) > 2000) {
    try {
      await fs.mkdir(path.dirname(memoFile), { recursive: true });
      const tmp = `${memoFile}.${process.pid}.tmp`;
      await fs.writeFile(tmp, JSON.stringify({ id, value }));
      await fs.rename(tmp, memoFile);
    } catch {
      // a read-only cache only costs the recomputation
    }
  }
  return value;
}

/** sha256 of a file's bytes, streamed (hex). Always reads the file: for a remembered one, fileMemo. */
export async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** A short stable hash of anything JSON-serialisable (keys sorted) or of raw bytes. */
export function contentHash(...parts: Array<unknown>): string {
  const h = createHash('sha256');
  for (const p of parts) {
    if (Buffer.isBuffer(p)) h.update(p);
    else h.update(stableJson(p));
    h.update('\0');
  }
  return h.digest('hex').slice(0, 32);
}

export function stableJson(v: unknown): string {
  return JSON.stringify(v, (_k, val) => {
    if (val && typeof val === 'object' && !Array.isArray(val) && !Buffer.isBuffer(val)) {
      return Object.fromEntries(
        Object.keys(val)
          .sort()
          .map((k) => [k, (val as Record<string, unknown>)[k]]),
      );
    }
    return val;
  });
}

interface Manifest {
  key: string;
  created: string;
  files: Record<string, number>;
}

async function listFiles(dir: string, base = dir, out: Record<string, number> = {}): Promise<Record<string, number>> {
  for (const ent of await fs.readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, ent.name);
    if (ent.isDirectory()) await listFiles(p, base, out);
    else if (ent.isFile() && ent.name !== MANIFEST) out[path.relative(base, p)] = (await fs.stat(p)).size;
  }
  return out;
}

/** True when `dir` is a whole entry: its manifest exists and every file has its size. */
export async function isWholeEntry(dir: string): Promise<boolean> {
  let m: Manifest;
  try {
    m = JSON.parse(readFileSync(path.join(dir, MANIFEST), 'utf8')) as Manifest;
  } catch {
    return false;
  }
  // Synchronous stats: a kernel's entry lists its ~1,100 modules, which awaited one after the
  // other took 30 ms of every run's start (and 25-45 ms all at once through the thread pool);
  // statSync takes a third of that, the metadata being in the page cache.
  for (const [rel, size] of Object.entries(m.files)) {
    if (statSync(path.join(dir, rel), { throwIfNoEntry: false })?.size !== size) return false;
  }
  return true;
}

async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
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
 * Whether the lock folder's holder still runs: its `pid` file holds `PID START` (START the
 * holder's start time, so a pid reused by another process does not keep the lock; an older
 * rootprobe wrote the pid alone). A lock folder whose pid file is not written yet (a holder
 * between its mkdir and its write) counts as held for a while after the folder was made.
 */
export async function lockHolderAlive(lockDir: string): Promise<boolean> {
  const text = await fs.readFile(path.join(lockDir, 'pid'), 'utf8').catch(() => undefined);
  if (text === undefined || !text.trim()) {
    const st = await fs.stat(lockDir).catch(() => undefined);
    return st !== undefined && Date.now() - st.mtimeMs < 10_000;
  }
  const [pid, start] = text.trim().split(/\s+/).map(Number);
  if (!(pid > 0)) return false;
  if (start === undefined || !Number.isFinite(start)) return pidAlive(pid);
  return ownerAlive({ pid, start });
}

/**
 * Runs `fn` holding a lock folder that records the holder's pid and start time, across
 * processes; a lock whose holder is gone is taken over. The lock is removed on a signal too.
 */
export async function withLock<T>(lockDir: string, fn: () => Promise<T>, onWait?: () => void): Promise<T> {
  let waited = false;
  let untrack: () => void = () => {};
  for (;;) {
    try {
      await fs.mkdir(lockDir);
      untrack = trackTempDir(lockDir);
      await fs.writeFile(path.join(lockDir, 'pid'), `${process.pid} ${processStartTime(process.pid) ?? ''}`.trim());
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      if (!(await lockHolderAlive(lockDir))) {
        await fs.rm(lockDir, { recursive: true, force: true });
        continue;
      }
      if (!waited && onWait) onWait();
      waited = true;
      await sleep(200);
    }
  }
  try {
    return await fn();
  } finally {
    await fs.rm(lockDir, { recursive: true, force: true });
    untrack();
  }
}

export interface CachedOptions {
  /** Called once if another process holds the entry's lock and this one waits. */
  onWait?: () => void;
}

/**
 * The folder of cache entry `kind/key`, built by `build(dir)` into a temporary folder if it
 * is missing or damaged. `build` writes files into the folder it is given; if it throws,
 * nothing is kept.
 */
export async function cachedEntry(
  kind: string,
  key: string,
  build: (dir: string) => Promise<void>,
  opts: CachedOptions = {},
): Promise<string> {
  if (!/^[A-Za-z0-9._-]+$/.test(key) || !/^[A-Za-z0-9._/-]+$/.test(kind) || kind.includes('..')) {
    throw new Error(`internal: bad cache key ${kind}/${key}`);
  }
  const parent = path.join(cacheRoot(), kind);
  const final = path.join(parent, key);
  if (await isWholeEntry(final)) return final;
  await fs.mkdir(parent, { recursive: true });
  return withLock(
    `${final}.lock`,
    async () => {
      if (await isWholeEntry(final)) return final;
      await fs.rm(final, { recursive: true, force: true });
      // Named with its owner and removed on a signal (lifecycle.ts); one left by a killed
      // rootprobe is swept at the next start (sweep.ts).
      const tmp = await fs.mkdtemp(path.join(parent, `.tmp-${key}-${ownerTag()}-`));
      const untrack = trackTempDir(tmp);
      try {
        await build(tmp);
        const manifest: Manifest = { key, created: new Date().toISOString(), files: await listFiles(tmp) };
        await fs.writeFile(path.join(tmp, MANIFEST), JSON.stringify(manifest, null, 1));
        await fs.rename(tmp, final);
      } catch (e) {
        await fs.rm(tmp, { recursive: true, force: true });
        throw e;
      } finally {
        untrack();
      }
      return final;
    },
    opts.onWait,
  );
}

/** Entries of a kind that are whole, by key. */
export async function listEntries(kind: string): Promise<string[]> {
  const parent = path.join(cacheRoot(), kind);
  const names = await fs.readdir(parent).catch(() => [] as string[]);
  const out: string[] = [];
  for (const n of names) {
    if (n.startsWith('.') || n.endsWith('.lock')) continue;
    if (await isWholeEntry(path.join(parent, n))) out.push(n);
  }
  return out.sort();
}
