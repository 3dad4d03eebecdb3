/**
 * Deterministic newc (070701) writer.
 *
 * Our own framing and header encoder. It started on cpio-stream's packer, which we dropped:
 * its per-entry streams cost more than the copying itself, and its newc encoder (1.4.3,
 * lib/newc.js) is wrong in ways no small workaround fixes:
 *   - namesize is the name's length in UTF-16 code units, not in bytes, and the header buffer
 *     is sized the same way: a non-ASCII name like "café" gets a wrong namesize and its last
 *     bytes cut off;
 *   - Pack.entry() replaces every falsy field with a default: mtime 0 becomes the current time
 *     (not deterministic), dev 0 becomes 0o777777 and is copied into devminor; nlink is always 1;
 *   - values above 0xFFFFFFFF are clamped silently (a 5 GiB file gets a wrong size);
 *   - finalize() pads only archives under 512 bytes, and those between 512 and 1024 bytes by a
 *     slice with a negative end;
 *   - no hard-link handling and no gzip.
 *
 * What we write, like GNU cpio: per entry a 110-byte header (upper-case hex fields, dev fields
 * 0, namesize counting the name's bytes and its NUL), the name padded to 4, the data padded
 * to 4; then TRAILER!!!, and zeros to a multiple of 512 bytes. Inodes are 1..N in archive
 * order, folders count their subfolders in nlink, and a hard-link group shares one inode and
 * stores its data once, on the last entry of the group (size 0 on the others), as GNU cpio
 * writes and both GNU cpio and the kernel's init/initramfs.c expect. With gzip, the whole
 * segment is compressed with node's zlib (header: no name, mtime 0) and the compressed bytes
 * padded with zeros to a multiple of 4, so a segment appended after it starts 4-byte aligned
 * as the kernel requires.
 *
 * How we write it (the bytes do not depend on any of this): the archive is produced as 1 MiB
 * chunks by a synchronous generator. Headers, padding and small bodies are batched into the
 * chunk; host file bodies (`hostPath` entries) are read with read(2) straight into it, so a
 * file is never held whole and memory stays at a chunk or two whatever the file sizes; a
 * Buffer body of a chunk or more is passed on as it is. writeNewcFile writes plain archives
 * with write(2) on one fd, reusing the one chunk buffer, and lets the event loop run between
 * chunks every few milliseconds; gzip goes through node's zlib stream; packNewc collects the
 * chunks in memory.
 */
import { closeSync, createWriteStream, fstatSync, openSync, promises as fs, readFileSync, readSync, writeSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import { UsageError } from '../errors.ts';
import { ownerTag } from '../lifecycle.ts';
import { archivePath, TRAILER, TYPE_BITS, type CpioEntry, type PackOptions } from './entry.ts';

const U32_MAX = 0xffffffff;
const BLOCK = 512;
const EMPTY = Buffer.alloc(0);
/** The size of the chunks the archive is produced in. */
export const CHUNK = 1 << 20;

/** A fully resolved header: every newc field we write. */
export interface Planned {
  path: string;
  /** Full st_mode: type bits | permission bits. */
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  ino: number;
  nlink: number;
  rdevmajor: number;
  rdevminor: number;
  /** Bytes of data; for a `hostPath` body, set when the file is opened (just before its header is written). */
  size: number;
  /** The body: in memory, a host file, or where it sits in the spill file (at most one of them). */
  data?: Buffer;
  hostPath?: string;
  spill?: { offset: number; length: number };
}

function pad4(n: number): number {
  return (n + 3) & ~3;
}

const HEX = Buffer.from('0123456789ABCDEF', 'latin1'); // upper case, like GNU cpio
const MAGIC = Buffer.from('070701', 'latin1');

/** The bytes of a header with a name of `nameBytes` bytes: 110, the name, its NUL, padding to 4. */
function headerLength(nameBytes: number): number {
  return pad4(110 + nameBytes + 1);
}

/**
 * Writes one newc header with its name and padding into `buf` at `at`; returns its length.
 * `size` is given apart: a host file's is known only once it is opened.
 */
function writeHeader(buf: Buffer, at: number, p: Planned, size: number, name: Buffer): number {
  const namesize = name.length + 1; // includes the NUL
  const fields = [p.ino, p.mode, p.uid, p.gid, p.nlink, p.mtime, size, 0, 0, p.rdevmajor, p.rdevminor, namesize, 0];
  MAGIC.copy(buf, at);
  let o = at + 6;
  for (const f of fields) {
    if (!Number.isInteger(f) || f < 0 || f > U32_MAX) throw new Error(`internal: newc field ${f} out of range in ${p.path}`);
    for (let i = 7, v = f; i >= 0; i--, v >>>= 4) buf[o + i] = HEX[v & 15];
    o += 8;
  }
  name.copy(buf, at + 110);
  const end = at + headerLength(name.length);
  buf.fill(0, at + 110 + name.length, end); // the NUL and the padding
  return end - at;
}

// ---------------------------------------------------------------------------------------------
// Planning: validate, normalise, synthesise parents, sort, assign inodes and link counts.
// planEntries runs the phases in order; each is exported for its own tests, not from the
// package (cpio/index.ts).

/** An input entry; a file's in-memory data may already sit in the spill file. */
export interface PlanItem {
  entry: CpioEntry;
  spill?: { offset: number; length: number };
}

export interface PlanNode {
  path: string;
  parts: Buffer[];
  entry: CpioEntry | undefined; // undefined: a synthesised parent folder
  planned: Planned;
  target?: string; // hard links: normalised target
}

function u32(where: string, what: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > U32_MAX) {
    throw new UsageError(`${where}: ${what} ${String(v)} is not an integer from 0 to ${U32_MAX} (newc stores 32 bits).`);
  }
  return v;
}

function tooBig(where: string, size: number): void {
  if (size > U32_MAX) throw new UsageError(`${where}: ${size} bytes is too big for newc (at most ${U32_MAX} per file).`);
}

function perm(where: string, v: number | undefined, def: number): number {
  if (v === undefined) return def;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0o7777) {
    throw new UsageError(
      `${where}: mode ${typeof v === 'number' ? '0o' + v.toString(8) : String(v)} is not permission bits ` +
        `(0 to 0o7777); the file type comes from \`type\`, give e.g. 0o755.`,
    );
  }
  return v;
}

/** $SOURCE_DATE_EPOCH as a number, undefined when unset or empty; UsageError when malformed. */
export function sourceDateEpoch(): number | undefined {
  const v = process.env.SOURCE_DATE_EPOCH;
  if (v === undefined || v.trim() === '') return undefined;
  if (!/^\d+$/.test(v.trim()) || Number(v) > U32_MAX) {
    throw new UsageError(`SOURCE_DATE_EPOCH=${JSON.stringify(v)} is not a whole number of seconds from 0 to ${U32_MAX}. Fix or unset it.`);
  }
  return Number(v);
}

function compareParts(a: Buffer[], b: Buffer[]): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const c = Buffer.compare(a[i], b[i]);
    if (c !== 0) return c;
  }
  return a.length - b.length;
}

function splitParts(p: string): Buffer[] {
  return p.split('/').map((c) => Buffer.from(c, 'utf8'));
}

/** One input entry as a node: validated, its path normalised, its header fields filled. */
export function planOne({ entry: e, spill }: PlanItem, defaultMtime: number, seen: Map<string, PlanNode>): PlanNode {
  if (!e || typeof e !== 'object') throw new UsageError(`A cpio entry must be an object, got ${String(e)}.`);
  const p = archivePath(e.path);
  const where = `cpio entry "${p}"`;
  if (p === TRAILER) {
    throw new UsageError(`${where}: this name marks the end of a newc archive; rename the entry.`);
  }
  if (seen.has(p)) {
    throw new UsageError(`${where} appears twice (as given: ${JSON.stringify(e.path)}); each path may appear once.`);
  }
  const base = { path: p, ino: 0, nlink: 1, rdevmajor: 0, rdevminor: 0, size: 0, uid: 0, gid: 0, mtime: defaultMtime };
  if (e.type !== 'hardlink') {
    base.uid = e.uid === undefined ? 0 : u32(where, 'uid', e.uid);
    base.gid = e.gid === undefined ? 0 : u32(where, 'gid', e.gid);
    base.mtime = e.mtime === undefined ? defaultMtime : u32(where, 'mtime', e.mtime);
  }
  let planned: Planned;
  let target: string | undefined;
  switch (e.type) {
    case 'file': {
      const mode = TYPE_BITS.file | perm(where, e.mode, 0o644);
      if (spill) {
        planned = { ...base, mode, size: spill.length, spill };
      } else if (e.hostPath !== undefined) {
        if (e.data !== undefined) throw new UsageError(`${where}: give data or hostPath, not both.`);
        if (typeof e.hostPath !== 'string' || e.hostPath === '' || e.hostPath.includes('\0')) {
          throw new UsageError(`${where}: hostPath ${JSON.stringify(e.hostPath)} must be a non-empty path without NUL.`);
        }
        planned = { ...base, mode, size: 0, hostPath: e.hostPath };
      } else {
        if (!Buffer.isBuffer(e.data)) throw new UsageError(`${where}: data must be a Buffer (or give hostPath).`);
        tooBig(where, e.data.length);
        planned = { ...base, mode, size: e.data.length, data: e.data };
      }
      break;
    }
    case 'dir':
      planned = { ...base, mode: TYPE_BITS.dir | perm(where, e.mode, 0o755) };
      break;
    case 'symlink': {
      if (typeof e.target !== 'string' || e.target === '' || e.target.includes('\0')) {
        throw new UsageError(`${where}: symlink target ${JSON.stringify(e.target)} must be a non-empty string without NUL.`);
      }
      const data = Buffer.from(e.target, 'utf8');
      planned = { ...base, mode: TYPE_BITS.symlink | 0o777, size: data.length, data };
      break;
    }
    case 'hardlink':
      if (typeof e.target !== 'string') throw new UsageError(`${where}: hard link target must be a string.`);
      target = archivePath(e.target);
      planned = { ...base, mode: TYPE_BITS.file };
      break;
    case 'char':
    case 'block':
      planned = {
        ...base,
        mode: TYPE_BITS[e.type] | perm(where, e.mode, 0o600),
        rdevmajor: u32(where, 'major', e.major),
        rdevminor: u32(where, 'minor', e.minor),
      };
      break;
    case 'fifo':
      planned = { ...base, mode: TYPE_BITS.fifo | perm(where, e.mode, 0o644) };
      break;
    default:
      throw new UsageError(
        `${where}: unknown type ${JSON.stringify((e as { type: unknown }).type)}; ` +
          `use file, dir, symlink, hardlink, char, block or fifo.`,
      );
  }
  return { path: p, parts: splitParts(p), entry: e, planned, target };
}

/** Adds the missing parent folders of every node; a parent that exists must be a folder. */
export function addParents(nodes: Map<string, PlanNode>, defaultMtime: number): void {
  for (const node of [...nodes.values()]) {
    const parts = node.path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const prefix = parts.slice(0, i).join('/');
      const parent = nodes.get(prefix);
      if (!parent) {
        nodes.set(prefix, {
          path: prefix,
          parts: splitParts(prefix),
          entry: undefined,
          planned: {
            path: prefix,
            mode: TYPE_BITS.dir | 0o755,
            uid: 0,
            gid: 0,
            mtime: defaultMtime,
            ino: 0,
            nlink: 1,
            rdevmajor: 0,
            rdevminor: 0,
            size: 0,
          },
        });
      } else if (parent.entry && parent.entry.type !== 'dir') {
        throw new UsageError(
          `cpio entry "${node.path}" is inside "${prefix}", which is a ${parent.entry.type}, not a folder. ` +
            `Make "${prefix}" a dir entry or move "${node.path}".`,
        );
      }
    }
  }
}

/** Inodes 1..N in archive order (hard links take their target's later); folder link counts 2 + subfolders. */
export function numberNodes(sorted: PlanNode[], nodes: Map<string, PlanNode>): void {
  // Inodes 1..N in archive order; hard links take their target's.
  let ino = 0;
  for (const n of sorted) if (n.entry?.type !== 'hardlink') n.planned.ino = ++ino;

  // Folder link counts: 2 + direct subfolders, like a real file system.
  for (const n of sorted) {
    if ((n.planned.mode & 0o170000) !== TYPE_BITS.dir) continue;
    n.planned.nlink = 2;
  }
  for (const n of sorted) {
    if ((n.planned.mode & 0o170000) !== TYPE_BITS.dir) continue;
    const slash = n.path.lastIndexOf('/');
    if (slash >= 0) nodes.get(n.path.slice(0, slash))!.planned.nlink++;
  }
}

/** Hard-link groups: members share inode, mode, owner, mtime; the data goes on the last member only. */
export function groupHardLinks(sorted: PlanNode[], nodes: Map<string, PlanNode>): void {
  const groups = new Map<PlanNode, PlanNode[]>();
  for (const n of sorted) {
    if (n.entry?.type !== 'hardlink') continue;
    const t = nodes.get(n.target!);
    if (!t?.entry) {
      throw new UsageError(
        `cpio hard link "${n.path}" points at "${n.target}", which is not ${t ? 'a file' : 'in the archive'}. ` +
          `Add a file entry "${n.target}" or fix the target.`,
      );
    }
    if (t.entry.type !== 'file') {
      throw new UsageError(
        `cpio hard link "${n.path}" points at "${n.target}", which is a ${t.entry.type}; ` + `hard links must point at a file entry.`,
      );
    }
    if (!groups.has(t)) groups.set(t, []);
  }
  for (const n of sorted) {
    if (n.entry?.type === 'hardlink') groups.get(nodes.get(n.target!)!)!.push(n);
    else if (groups.has(n)) groups.get(n)!.push(n);
  }
  for (const [file, members] of groups) {
    const f = file.planned;
    for (const m of members) {
      const mp = m.planned;
      mp.ino = f.ino;
      mp.mode = f.mode;
      mp.uid = f.uid;
      mp.gid = f.gid;
      mp.mtime = f.mtime;
      mp.nlink = members.length;
    }
    const holder = members[members.length - 1].planned; // members are in archive order
    const { size, data, hostPath, spill } = f;
    for (const m of members) {
      m.planned.size = 0;
      m.planned.data = undefined;
      m.planned.hostPath = undefined;
      m.planned.spill = undefined;
    }
    holder.size = size;
    holder.data = data;
    holder.hostPath = hostPath;
    holder.spill = spill;
  }
}

/** Turns input entries into the exact headers to write, in archive order. */
export function planEntries(items: PlanItem[], opts: PackOptions = {}): Planned[] {
  const defaultMtime = opts.mtime !== undefined ? u32('packNewc options', 'mtime', opts.mtime) : (sourceDateEpoch() ?? 0);
  const nodes = new Map<string, PlanNode>();
  for (const item of items) {
    const n = planOne(item, defaultMtime, nodes);
    nodes.set(n.path, n);
  }
  addParents(nodes, defaultMtime);
  const sorted = [...nodes.values()].sort((a, b) => compareParts(a.parts, b.parts));
  numberNodes(sorted, nodes);
  groupHardLinks(sorted, nodes);
  return sorted.map((n) => n.planned);
}

// ---------------------------------------------------------------------------------------------
// Emitting.

const TRAILER_ENTRY: Planned = {
  path: TRAILER,
  mode: 0,
  uid: 0,
  gid: 0,
  mtime: 0,
  ino: 0,
  nlink: 1,
  rdevmajor: 0,
  rdevminor: 0,
  size: 0,
};

/** The chunk being filled. */
class Chunker {
  buf = Buffer.allocUnsafe(CHUNK);
  pos = 0;
  /** Bytes handed out before the current chunk. */
  done = 0;

  /** reuse: the consumer is done with a chunk when it asks for the next one (it writes synchronously). */
  constructor(private readonly reuse: boolean) {}

  get room(): number {
    return CHUNK - this.pos;
  }

  /** Hands out the filled part; without `reuse` the next bytes go to a fresh buffer. */
  take(): Buffer {
    const chunk = this.buf.subarray(0, this.pos);
    this.done += this.pos;
    this.pos = 0;
    if (!this.reuse) this.buf = Buffer.allocUnsafe(CHUNK);
    return chunk;
  }
}

function* zeros(c: Chunker, n: number): Generator<Buffer, void, undefined> {
  while (n > 0) {
    if (c.room === 0) yield c.take();
    const k = Math.min(n, c.room);
    c.buf.fill(0, c.pos, c.pos + k);
    c.pos += k;
    n -= k;
  }
}

function* copyIn(c: Chunker, data: Buffer): Generator<Buffer, void, undefined> {
  if (data.length >= CHUNK) {
    // Big enough to go out on its own, without a copy.
    if (c.pos > 0) yield c.take();
    c.done += data.length;
    yield data;
    return;
  }
  for (let off = 0; off < data.length; ) {
    if (c.room === 0) yield c.take();
    const k = Math.min(data.length - off, c.room);
    data.copy(c.buf, c.pos, off, off + k);
    c.pos += k;
    off += k;
  }
}

/** `length` bytes of fd, from `position` (null: the file position), read straight into the chunks. */
function* readIn(c: Chunker, fd: number, length: number, position: number | null, what: string): Generator<Buffer, void, undefined> {
  for (let left = length; left > 0; ) {
    if (c.room === 0) yield c.take();
    const n = readSync(fd, c.buf, c.pos, Math.min(left, c.room), position);
    if (n === 0) {
      throw new Error(
        `${what} ended ${left} bytes short of the ${length} bytes it had when opened: it shrank while the archive was written.`,
      );
    }
    c.pos += n;
    left -= n;
    if (position !== null) position += n;
  }
}

/**
 * Opens the host file of a `hostPath` body: its size now, and an fd to stream it from, or for
 * a file that says it is empty (procfs and sysfs files do), its content read whole.
 */
function openHost(entry: string, hostPath: string): { size: number; fd?: number; data?: Buffer } {
  let fd: number;
  try {
    fd = openSync(hostPath, 'r');
  } catch (err) {
    throw new Error(`cpio entry "${entry}": cannot open its host file: ${(err as Error).message}`);
  }
  let keep = false;
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new UsageError(`cpio entry "${entry}": its host file ${hostPath} is not a regular file.`);
    if (st.size > 0) {
      tooBig(`cpio entry "${entry}" (${hostPath})`, st.size);
      keep = true;
      return { size: st.size, fd };
    }
    const data = readFileSync(fd);
    tooBig(`cpio entry "${entry}" (${hostPath})`, data.length);
    return { size: data.length, data };
  } finally {
    if (!keep) closeSync(fd);
  }
}

/**
 * The archive as chunks of at most CHUNK bytes (a Buffer body of CHUNK or more comes as it
 * is). With `reuse`, every chunk but such bodies is the same buffer: the consumer must be
 * done with a chunk before it asks for the next.
 */
function* archiveChunks(plan: Planned[], reuse: boolean, spillFd?: number): Generator<Buffer, void, undefined> {
  const c = new Chunker(reuse);
  for (const p of [...plan, TRAILER_ENTRY]) {
    let fd: number | undefined;
    try {
      let { size, data } = p;
      if (p.hostPath !== undefined) ({ size, fd, data } = openHost(p.path, p.hostPath));
      const name = Buffer.from(p.path, 'utf8');
      const hlen = headerLength(name.length);
      if (hlen <= c.room) {
        c.pos += writeHeader(c.buf, c.pos, p, size, name);
      } else {
        const h = Buffer.allocUnsafe(hlen);
        writeHeader(h, 0, p, size, name);
        yield* copyIn(c, h);
      }
      if (data) {
        if (data.length !== size) throw new Error(`internal: ${p.path} has ${data.length} bytes, planned ${size}`);
        yield* copyIn(c, data);
      } else if (fd !== undefined) {
        yield* readIn(c, fd, size, null, `host file ${p.hostPath} (cpio entry "${p.path}")`);
      } else if (p.spill) {
        if (spillFd === undefined) throw new Error(`internal: no spill file for ${p.path}`);
        yield* readIn(c, spillFd, size, p.spill.offset, `the spill file (cpio entry "${p.path}")`);
      } else if (size !== 0) {
        throw new Error(`internal: ${p.path} has no data, planned ${size} bytes`);
      }
      yield* zeros(c, pad4(size) - size);
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }
  yield* zeros(c, (BLOCK - ((c.done + c.pos) % BLOCK)) % BLOCK); // like GNU cpio
  if (c.pos > 0) yield c.take();
}

/** Pads the stream with zeros to a multiple of `block` bytes. */
function padTo(block: number): Transform {
  let n = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      n += chunk.length;
      cb(null, chunk);
    },
    flush(cb) {
      const rest = (block - (n % block)) % block;
      cb(null, rest ? Buffer.alloc(rest) : undefined);
    },
  });
}

/** The gzip stages after the archive's chunks: compress, pad to 4 bytes. */
function gzipped(chunks: Iterable<Buffer>): Array<Readable | Transform> {
  return [Readable.from(chunks, { objectMode: true, highWaterMark: 2 }), zlib.createGzip(), padTo(4)];
}

function compression(opts: PackOptions): 'none' | 'gzip' {
  const compress = opts.compress ?? 'none';
  if (compress !== 'none' && compress !== 'gzip') {
    throw new UsageError(`Unknown cpio compression ${JSON.stringify(compress)}; use 'none' or 'gzip'.`);
  }
  return compress;
}

function writeAll(fd: number, buf: Buffer, position: number | null): void {
  for (let off = 0; off < buf.length; ) off += writeSync(fd, buf, off, buf.length - off, position === null ? null : position + off);
}

/** Writes the chunks to a new file with write(2), letting the event loop run every few ms. */
async function writePlain(chunks: Iterable<Buffer>, file: string): Promise<void> {
  const fd = openSync(file, 'w');
  try {
    let since = performance.now();
    for (const chunk of chunks) {
      writeAll(fd, chunk, null);
      if (performance.now() - since > 10) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        since = performance.now();
      }
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * One newc segment (with TRAILER!!!), optionally gzip-compressed. Deterministic: same entries
 * -> same bytes. `hostPath` bodies are read as the archive is made; the result is in memory.
 */
export async function packNewc(entries: CpioEntry[], opts: PackOptions = {}): Promise<Buffer> {
  if (!Array.isArray(entries)) throw new UsageError('packNewc needs an array of entries.');
  const compress = compression(opts);
  const plan = planEntries(
    entries.map((entry) => ({ entry })),
    opts,
  );
  if (compress === 'none') return Buffer.concat([...archiveChunks(plan, false)]);
  const chunks: Buffer[] = [];
  const collect = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk);
      cb();
    },
  });
  await pipeline([...gzipped(archiveChunks(plan, false)), collect]);
  return Buffer.concat(chunks);
}

/**
 * Same bytes as packNewc, streamed to a file (written under a temporary name, renamed when
 * whole). Memory stays bounded: `hostPath` bodies are streamed from their files, and for an
 * AsyncIterable, in-memory data goes to a temporary spill file while the entries are collected
 * (they must be sorted before writing), and is streamed from there.
 */
export async function writeNewcFile(
  entries: CpioEntry[] | AsyncIterable<CpioEntry>,
  outPath: string,
  opts: PackOptions = {},
): Promise<void> {
  const compress = compression(opts);
  let spillDir: string | undefined;
  let spillFd: number | undefined;
  const tmpOut = `${outPath}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  try {
    let items: PlanItem[];
    if (Array.isArray(entries)) {
      items = entries.map((entry) => ({ entry }));
    } else {
      items = [];
      let offset = 0;
      for await (const entry of entries) {
        if (entry && entry.type === 'file' && entry.hostPath === undefined && Buffer.isBuffer(entry.data) && entry.data.length > 0) {
          if (spillFd === undefined) {
            spillDir = await fs.mkdtemp(path.join(os.tmpdir(), `rootprobe-cpio-${ownerTag()}-`)); // swept if we are SIGKILLed
            spillFd = openSync(path.join(spillDir, 'spill'), 'w+');
          }
          const length = entry.data.length;
          writeAll(spillFd, entry.data, offset);
          items.push({ entry: { ...entry, data: EMPTY }, spill: { offset, length } });
          offset += length;
        } else {
          items.push({ entry });
        }
      }
    }
    const plan = planEntries(items, opts);
    if (compress === 'gzip') {
      await pipeline([...gzipped(archiveChunks(plan, false, spillFd)), createWriteStream(tmpOut)]);
    } else {
      await writePlain(archiveChunks(plan, true, spillFd), tmpOut);
    }
    await fs.rename(tmpOut, outPath);
  } catch (err) {
    await fs.rm(tmpOut, { force: true });
    throw err;
  } finally {
    if (spillFd !== undefined) closeSync(spillFd);
    if (spillDir) await fs.rm(spillDir, { recursive: true, force: true });
  }
}
