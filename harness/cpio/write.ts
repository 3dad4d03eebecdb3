/**
 * Deterministic newc (070701) writer.
 *
 * Built on cpio-stream's packer (lib/pack.js), but with our own header encoder. What we found
 * in cpio-stream 1.4.3 and what we do about it:
 *
 * Kept from cpio-stream's Pack stream (it gets these right):
 *   - the framing: header, then data, then zero padding of the data to 4 bytes;
 *   - streamed file data through the Sink with backpressure, and its check that the bytes
 *     streamed match the size in the header ("size mismatch");
 *   - writing the TRAILER!!! entry on finalize(), after the last streamed entry.
 *
 * Replaced, because its newc header encoder (lib/newc.js encode) is broken beyond a small
 * workaround (we swap `pack._encode` for encodeHeader() below):
 *   - namesize is the name's length in UTF-16 code units, not in bytes, and the header buffer
 *     is sized the same way: a non-ASCII name like "café" gets a wrong namesize and its last
 *     bytes cut off. (namesize does include the NUL, and the 110+namesize padding to 4 is
 *     right for ASCII names.)
 *   - Pack.entry() replaces every falsy field with a default: mtime 0 becomes the current
 *     time (not deterministic), dev 0 becomes 0o777777 and is copied into devminor, so the
 *     dev fields are never 0; nlink is always 1 (directories should count their subfolders).
 *   - encodeHex clamps values above 0xFFFFFFFF silently (a 5 GiB file gets a wrong size);
 *     we reject them with a UsageError instead.
 *   - `linkname` (symlink target) is fine, but we pass the target bytes as data ourselves.
 *   - finalize() pads with zeros only when the whole archive is under 512 bytes, and for
 *     archives between 512 and 1024 bytes it pads by a slice with a negative end (a length
 *     that means nothing). We set `pack.padding = 1` (no padding at all from it) and pad the
 *     segment to a multiple of 512 bytes ourselves, like GNU cpio.
 *   - It has no hard-link handling: we assign inodes, nlink, and put the data of a hard-link
 *     group on the last entry of the group only (others have size 0), as GNU cpio writes and
 *     both GNU cpio and the kernel's init/initramfs.c expect.
 *   - It has no gzip; we gzip with node's zlib (header: no name, mtime 0) and pad the
 *     compressed segment with zeros to a multiple of 4 bytes, so a segment appended after it
 *     starts 4-byte aligned as the kernel requires.
 */
import { createRequire } from 'node:module';
import { createWriteStream, promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import { UsageError } from '../errors.ts';
import { archivePath, TRAILER, TYPE_BITS, type CpioEntry, type PackOptions } from './entry.ts';

/** The parts of cpio-stream's Pack we use (the package has no type declarations). */
interface CpioStreamPack extends Readable {
  entry(header: object, buffer: Buffer, callback: (err?: Error) => void): Writable | undefined;
  entry(header: object, callback: (err?: Error) => void): Writable | undefined;
  finalize(): void;
  _encode: (header: PackHeader) => Buffer;
  padding: number;
}
const require = createRequire(import.meta.url);
const cpioStream = require('cpio-stream') as { pack(opts: { format: 'newc' }): CpioStreamPack };

const U32_MAX = 0xffffffff;
const EMPTY = Buffer.alloc(0);
const BLOCK = 512;

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
  size: number;
  /** In-memory data (size bytes), or where it sits in the spill file. */
  data?: Buffer;
  spill?: { offset: number; length: number };
}

/** What we hand to cpio-stream's Pack.entry(); it mutates the top-level fields, we read `rp`. */
interface PackHeader {
  rp?: Planned;
  size?: number;
}

function pad4(n: number): number {
  return (n + 3) & ~3;
}

function hex8(v: number): string {
  return v.toString(16).toUpperCase().padStart(8, '0'); // upper case, like GNU cpio
}

/** One newc header (magic 070701) with its name and the padding after the name. */
export function encodeHeader(h: Planned | undefined): Buffer {
  // cpio-stream calls us with its own END_OF_CPIO object (no `rp`) for the trailer.
  const p: Planned = h ?? {
    path: TRAILER, mode: 0, uid: 0, gid: 0, mtime: 0, ino: 0, nlink: 1, rdevmajor: 0, rdevminor: 0, size: 0,
  };
  const name = Buffer.from(p.path, 'utf8');
  const namesize = name.length + 1; // includes the NUL
  const buf = Buffer.alloc(pad4(110 + namesize)); // zero-filled: the NUL and the padding
  const fields = [p.ino, p.mode, p.uid, p.gid, p.nlink, p.mtime, p.size, 0, 0, p.rdevmajor, p.rdevminor, namesize, 0];
  let s = '070701';
  for (const f of fields) {
    if (!Number.isInteger(f) || f < 0 || f > U32_MAX) throw new Error(`internal: newc field ${f} out of range in ${p.path}`);
    s += hex8(f);
  }
  buf.write(s, 0, 'ascii');
  name.copy(buf, 110);
  return buf;
}

function newPack(): CpioStreamPack {
  const pack = cpioStream.pack({ format: 'newc' });
  pack._encode = (header: PackHeader) => {
    const rp = header.rp;
    if (rp && header.size !== undefined && header.size !== rp.size) {
      throw new Error(`internal: cpio-stream size ${header.size} != planned ${rp.size} for ${rp.path}`);
    }
    return encodeHeader(rp);
  };
  pack.padding = 1; // see the comment at the top: we pad the segment ourselves
  return pack;
}

// ---------------------------------------------------------------------------------------------
// Planning: validate, normalise, synthesise parents, sort, assign inodes and link counts.

/** An input entry; a file's data may already sit in the spill file. */
interface Item {
  entry: CpioEntry;
  spill?: { offset: number; length: number };
}

interface Node {
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
    throw new UsageError(
      `SOURCE_DATE_EPOCH=${JSON.stringify(v)} is not a whole number of seconds from 0 to ${U32_MAX}. Fix or unset it.`,
    );
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

/** Turns input entries into the exact headers to write, in archive order. */
export function planEntries(items: Item[], opts: PackOptions = {}): Planned[] {
  const defaultMtime =
    opts.mtime !== undefined ? u32('packNewc options', 'mtime', opts.mtime) : (sourceDateEpoch() ?? 0);
  const nodes = new Map<string, Node>();

  for (const { entry: e, spill } of items) {
    if (!e || typeof e !== 'object') throw new UsageError(`A cpio entry must be an object, got ${String(e)}.`);
    const p = archivePath(e.path);
    const where = `cpio entry "${p}"`;
    if (p === TRAILER) {
      throw new UsageError(`${where}: this name marks the end of a newc archive; rename the entry.`);
    }
    if (nodes.has(p)) {
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
        if (spill) {
          planned = { ...base, mode: TYPE_BITS.file | perm(where, e.mode, 0o644), size: spill.length, spill };
        } else {
          if (!Buffer.isBuffer(e.data)) throw new UsageError(`${where}: data must be a Buffer.`);
          if (e.data.length > U32_MAX) {
            throw new UsageError(`${where}: ${e.data.length} bytes is too big for newc (at most ${U32_MAX} per file).`);
          }
          planned = { ...base, mode: TYPE_BITS.file | perm(where, e.mode, 0o644), size: e.data.length, data: e.data };
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
    nodes.set(p, { path: p, parts: splitParts(p), entry: e, planned, target });
  }

  // Synthesise missing parent folders; a parent that exists must be a folder.
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
            path: prefix, mode: TYPE_BITS.dir | 0o755, uid: 0, gid: 0, mtime: defaultMtime,
            ino: 0, nlink: 1, rdevmajor: 0, rdevminor: 0, size: 0,
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

  const sorted = [...nodes.values()].sort((a, b) => compareParts(a.parts, b.parts));

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

  // Hard-link groups: members share inode, mode, owner, mtime; data on the last member only.
  const groups = new Map<Node, Node[]>();
  for (const n of sorted) {
    if (n.entry?.type !== 'hardlink') continue;
    const t = nodes.get(n.target!);
    if (!t || !t.entry) {
      throw new UsageError(
        `cpio hard link "${n.path}" points at "${n.target}", which is not ${t ? 'a file' : 'in the archive'}. ` +
          `Add a file entry "${n.target}" or fix the target.`,
      );
    }
    if (t.entry.type !== 'file') {
      throw new UsageError(
        `cpio hard link "${n.path}" points at "${n.target}", which is a ${t.entry.type}; ` +
          `hard links must point at a file entry.`,
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
    const { size, data, spill } = f;
    for (const m of members) {
      m.planned.size = 0;
      m.planned.data = undefined;
      m.planned.spill = undefined;
    }
    holder.size = size;
    holder.data = data;
    holder.spill = spill;
  }

  return sorted.map((n) => n.planned);
}

// ---------------------------------------------------------------------------------------------
// Emitting.

type SpillReader = (at: { offset: number; length: number }) => Readable;

function addEntry(pack: CpioStreamPack, p: Planned, readSpill?: SpillReader): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const done = (err?: Error | null) => (err ? reject(err) : resolve());
    // Pack.entry() overwrites falsy top-level fields with defaults; our encoder reads `rp` only.
    // It decides "stream the data" from mode being S_IFREG, and checks streamed bytes against size.
    const header = { rp: p, mode: p.mode, size: p.size };
    if (p.spill && p.size > 0) {
      if (!readSpill) return reject(new Error(`internal: no spill reader for ${p.path}`));
      const sink = pack.entry(header, done);
      if (!sink) return reject(new Error(`cpio packer closed before entry "${p.path}"`));
      pipeline(readSpill(p.spill), sink).catch(reject);
    } else {
      const buf = p.data ?? EMPTY;
      if (buf.length !== p.size) return reject(new Error(`internal: ${p.path} has ${buf.length} bytes, planned ${p.size}`));
      delete (header as { size?: number }).size; // Pack sets it from the buffer
      if (!pack.entry(header, buf, done)) reject(new Error(`cpio packer closed before entry "${p.path}"`));
    }
  });
}

function packStream(plan: Planned[], readSpill?: SpillReader): Readable {
  const pack = newPack();
  (async () => {
    for (const p of plan) await addEntry(pack, p, readSpill);
    pack.finalize();
  })().catch((err: Error) => pack.destroy(err));
  return pack;
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

function stages(plan: Planned[], opts: PackOptions, readSpill?: SpillReader): Array<Readable | Transform> {
  const compress = opts.compress ?? 'none';
  if (compress !== 'none' && compress !== 'gzip') {
    throw new UsageError(`Unknown cpio compression ${JSON.stringify(compress)}; use 'none' or 'gzip'.`);
  }
  const s: Array<Readable | Transform> = [packStream(plan, readSpill), padTo(BLOCK)];
  if (compress === 'gzip') s.push(zlib.createGzip(), padTo(4));
  return s;
}

/** One newc segment (with TRAILER!!!), optionally gzip-compressed. Deterministic: same entries -> same bytes. */
export async function packNewc(entries: CpioEntry[], opts: PackOptions = {}): Promise<Buffer> {
  if (!Array.isArray(entries)) throw new UsageError('packNewc needs an array of entries.');
  const plan = planEntries(entries.map((entry) => ({ entry })), opts);
  const chunks: Buffer[] = [];
  const collect = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk);
      cb();
    },
  });
  await pipeline([...stages(plan, opts), collect]);
  return Buffer.concat(chunks);
}

/**
 * Same as packNewc, streamed to a file (written under a temporary name, renamed when whole).
 * Memory stays bounded for an AsyncIterable: file data goes to a temporary spill file while
 * the entries are collected (they must be sorted before writing), and is streamed from there.
 */
export async function writeNewcFile(
  entries: CpioEntry[] | AsyncIterable<CpioEntry>,
  outPath: string,
  opts: PackOptions = {},
): Promise<void> {
  let spillDir: string | undefined;
  let spill: FileHandle | undefined;
  const tmpOut = `${outPath}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  try {
    let items: Item[];
    if (Array.isArray(entries)) {
      items = entries.map((entry) => ({ entry }));
    } else {
      items = [];
      let offset = 0;
      for await (const entry of entries) {
        if (entry && entry.type === 'file' && Buffer.isBuffer(entry.data) && entry.data.length > 0) {
          if (!spill) {
            spillDir = await fs.mkdtemp(path.join(os.tmpdir(), 'rootprobe-cpio-'));
            spill = await fs.open(path.join(spillDir, 'spill'), 'w+');
          }
          const length = entry.data.length;
          await spill.write(entry.data, 0, length, offset);
          items.push({ entry: { ...entry, data: EMPTY }, spill: { offset, length } });
          offset += length;
        } else {
          items.push({ entry });
        }
      }
    }
    const plan = planEntries(items, opts);
    const fh = spill;
    const readSpill: SpillReader | undefined = fh
      ? ({ offset, length }) => fh.createReadStream({ start: offset, end: offset + length - 1, autoClose: false })
      : undefined;
    await pipeline([...stages(plan, opts, readSpill), createWriteStream(tmpOut)]);
    await fs.rename(tmpOut, outPath);
  } catch (err) {
    await fs.rm(tmpOut, { force: true });
    throw err;
  } finally {
    await spill?.close();
    if (spillDir) await fs.rm(spillDir, { recursive: true, force: true });
  }
}
