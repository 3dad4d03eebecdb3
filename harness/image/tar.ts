/**
 * Root filesystems from tar archives: a distro's rootfs tarball or `docker export` output,
 * streamed (by the reader below) into an ImageTree (which then becomes an ext4 disk image with
 * buildExt4 or a cpio segment with buildCpioSegment). Nothing is extracted on the host and
 * no root privilege is needed: owners, modes (setuid bits too), symlinks, hard links, device
 * nodes and fifos are recorded in the tree, and the image builders write them (debugfs for
 * owners and devices on ext4, the headers themselves in cpio).
 *
 *   disks: [{ name: 'root', fs: 'ext4', sizeMiB: 512, content: (t) => importTar(t, 'rootfs.tar.zst') }]
 *
 * Rules:
 * - Entry names are taken relative to the root ("./etc/passwd", "etc/passwd" and
 *   "/etc/passwd" all mean /etc/passwd, as GNU tar extracts them). A name with a `..`
 *   component could leave the root when extracted: it is rejected with the entry's name.
 * - Hard links: the target must be an earlier entry of the same archive; a target with `..`,
 *   or one that is not in the archive, is rejected (a naive extraction would link a host file).
 * - Symlink targets are kept as they are: absolute targets resolve inside the guest. They are
 *   never followed: an entry below a symlinked folder is rejected by the tree.
 * - mtimes, user/group names and xattrs are not kept (images are built deterministically);
 *   numeric owners are.
 * - Compression: gzip (zlib), xz and zstd (the host's xz/zstd), recognised by magic bytes.
 *
 * - Sparse files (GNU tar --sparse: PAX formats 0.0, 0.1 and 1.0, and the old GNU format's
 *   tar type S) are imported sparse: their data regions are written at their offsets into a
 *   spill file with holes, which the image builders copy as it is (mke2fs -d keeps holes).
 *   Another tar type (a volume label, a multi-volume continuation, ...) is refused by name.
 *
 * Files up to 1 MiB are held in memory until the image is built; bigger ones are streamed into
 * a spill file in a temporary folder (zero blocks left as holes), never held whole, so an
 * entry of any size takes little memory. The archive is read by a small reader of our own:
 * ustar, GNU (long names, base-256 sizes) and pax headers.
 */
import { createReadStream, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import * as zlib from 'node:zlib';
import { UsageError } from '../errors.ts';
import { requireTool } from '../host.ts';
import { makeTempDir, spawnGuarded } from '../lifecycle.ts';
import type { ImageTree } from './tree.ts';

export interface TarImportOptions {
  /** Where in the tree the archive's root goes (default "/"). */
  at?: string;
  /** For messages: what the archive is (default its path, or "tar stream"). */
  name?: string;
}

export interface TarImportSummary {
  entries: number;
  files: number;
  dirs: number;
  symlinks: number;
  hardlinks: number;
  devices: number;
  fifos: number;
  bytes: number;
}

/** The guest path for a tar entry name, or a UsageError if the name leaves the root. */
export function tarEntryPath(name: string, archive: string, at = '/'): string {
  if (name.includes('\0')) throw new UsageError(`${archive}: entry ${JSON.stringify(name)} has a NUL byte in its name.`);
  const parts = name.split('/').filter((s) => s !== '' && s !== '.');
  if (parts.includes('..')) {
    throw new UsageError(
      `${archive}: entry ${JSON.stringify(name)} escapes the root (its name has a ".." component); refusing the archive.`,
    );
  }
  const base = at === '/' ? '' : at.replace(/\/+$/, '');
  return parts.length === 0 ? at : `${base}/${parts.join('/')}`;
}

const MAGIC: Array<[string, number[]]> = [
  ['gzip', [0x1f, 0x8b]],
  ['xz', [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
  ['zstd', [0x28, 0xb5, 0x2f, 0xfd]],
  ['bzip2', [0x42, 0x5a, 0x68]],
];

/** Peeks at the first bytes of a stream; returns the compression and a stream that still starts at byte 0. */
async function sniff(src: Readable): Promise<{ kind: string; stream: Readable }> {
  const chunks: Buffer[] = [];
  let have = 0;
  const it = src[Symbol.asyncIterator]();
  while (have < 6) {
    const r = await it.next();
    if (r.done) break;
    const b = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
    chunks.push(b);
    have += b.length;
  }
  const head = Buffer.concat(chunks);
  const kind = MAGIC.find(([, m]) => m.every((b, i) => head[i] === b))?.[0] ?? 'none';
  async function* rest(): AsyncGenerator<Buffer> {
    if (head.length) yield head;
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      yield r.value as Buffer;
    }
  }
  return { kind, stream: Readable.from(rest(), { objectMode: false }) };
}

function decompressWith(tool: string, src: Readable, archive: string): Readable {
  const bin = requireTool(tool, `to read the ${tool}-compressed tar archive ${archive}`);
  const { child } = spawnGuarded(bin, ['-dc'], { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
  const out = new PassThrough();
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  src.on('error', (e) => out.destroy(e));
  child.stdin!.on('error', () => {}); // an early exit shows up as the exit code
  src.pipe(child.stdin!);
  child.stdout!.pipe(out, { end: false });
  child.on('close', (code) => {
    if (code === 0) out.end();
    else out.destroy(new UsageError(`${archive}: ${tool} -dc failed (exit ${code}): ${err.trim()}`));
  });
  return out;
}

/** Reads exact byte counts from a stream of chunks, without holding more than one chunk. */
class ByteReader {
  private buf: Buffer = Buffer.alloc(0);
  private readonly it: AsyncIterator<unknown>;
  offset = 0;
  constructor(src: AsyncIterable<unknown>) {
    this.it = src[Symbol.asyncIterator]();
  }
  private async fill(): Promise<boolean> {
    const r = await this.it.next();
    if (r.done) return false;
    const b = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value as Uint8Array);
    this.buf = this.buf.length ? Buffer.concat([this.buf, b]) : b;
    return true;
  }
  /** Exactly n bytes (n small), or undefined at the end of the stream before any byte. */
  async read(n: number): Promise<Buffer | undefined> {
    while (this.buf.length < n) {
      if (!(await this.fill())) {
        if (this.buf.length === 0) return undefined;
        throw new TarFormatError(`the archive ends in the middle of a block at byte ${this.offset + this.buf.length}`);
      }
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    this.offset += n;
    return out;
  }
  /** The next n bytes as a sequence of chunks (n may be many GiB). */
  async *chunks(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.buf.length === 0 && !(await this.fill())) {
        throw new TarFormatError(`the archive ends inside an entry's data (${left} bytes missing)`);
      }
      const take = Math.min(left, this.buf.length);
      const out = this.buf.subarray(0, take);
      this.buf = this.buf.subarray(take);
      this.offset += take;
      left -= take;
      yield out;
    }
  }
  async skip(n: number): Promise<void> {
    for await (const _ of this.chunks(n)) {
      /* dropped */
    }
  }
}

class TarFormatError extends Error {}

const BLOCK = 512;
const pad = (n: number): number => (BLOCK - (n % BLOCK)) % BLOCK;

function cstr(b: Buffer, off: number, len: number): string {
  const s = b.subarray(off, off + len);
  const z = s.indexOf(0);
  return (z === -1 ? s : s.subarray(0, z)).toString('utf8');
}

/** A numeric header field: octal text, or GNU's base-256 (high bit set) for big values. */
function num(b: Buffer, off: number, len: number): number {
  if (b[off] & 0x80) {
    let v = b[off] & 0x3f;
    for (let i = 1; i < len; i++) v = v * 256 + b[off + i];
    return v;
  }
  const t = cstr(b, off, len).trim();
  if (t === '') return 0;
  if (!/^[0-7]+$/.test(t)) throw new TarFormatError(`a header field holds ${JSON.stringify(t)}, not an octal number`);
  return parseInt(t, 8);
}

function checksumOk(h: Buffer): boolean {
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const c = i >= 148 && i < 156 ? 32 : h[i];
    unsigned += c;
    signed += c > 127 ? c - 256 : c;
  }
  const want = num(h, 148, 8);
  return want === unsigned || want === signed;
}

/** pax records ("LEN key=value\n"), in order (GNU sparse 0.0 repeats keys). */
function paxRecords(data: Buffer): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  let i = 0;
  while (i < data.length) {
    const sp = data.indexOf(0x20, i);
    if (sp === -1) break;
    const len = Number(data.subarray(i, sp).toString('latin1'));
    if (!Number.isInteger(len) || len <= 0 || i + len > data.length) throw new TarFormatError('a pax extended header record is malformed');
    const rec = data.subarray(sp + 1, i + len - 1).toString('utf8');
    const eq = rec.indexOf('=');
    if (eq > 0) out.push([rec.slice(0, eq), rec.slice(eq + 1)]);
    i += len;
  }
  return out;
}

/** A file's data regions: [offset in the file, length], stored one after the other in the archive. */
type SparseMap = Array<[number, number]>;

interface RawEntry {
  name: string;
  /** The tar type flag as a character ('0', '5', 'S', ...). */
  flag: string;
  mode: number;
  uid: number;
  gid: number;
  linkname: string;
  devmajor: number;
  devminor: number;
  /** Bytes of data stored in the archive. */
  size: number;
  sparse?: { format: string; realSize: number; map?: SparseMap };
}

const FLAG_NAMES: Record<string, string> = {
  V: 'a GNU volume label',
  M: 'a GNU multi-volume continuation',
  D: 'a GNU incremental dump folder',
  N: 'an old GNU long-name list',
  A: 'a Solaris ACL',
  E: 'a Solaris extended attribute',
  I: 'an inode-only entry',
  X: 'an old POSIX extended header',
};

function parseSparseMap(text: string, what: string): SparseMap {
  const nums = text
    .split(',')
    .filter((x) => x !== '')
    .map(Number);
  if (nums.length % 2 || nums.some((n) => !Number.isSafeInteger(n) || n < 0)) throw new TarFormatError(`${what} is malformed`);
  const map: SparseMap = [];
  for (let i = 0; i < nums.length; i += 2) map.push([nums[i], nums[i + 1]]);
  return map;
}

/**
 * The entries of a plain (decompressed) tar stream: ustar, GNU (long names, old-format sparse
 * files, base-256 sizes) and pax (path, linkpath, size, uid, gid, GNU sparse 0.0, 0.1, 1.0).
 * `onEntry` gets each entry with its data still in the stream and must read exactly `size`
 * bytes with `body` (or leave them; they are skipped).
 */
async function readTar(
  src: AsyncIterable<unknown>,
  onEntry: (e: RawEntry, body: () => AsyncGenerator<Buffer>, r: ByteReader) => Promise<void>,
): Promise<void> {
  const r = new ByteReader(src);
  let pax: Array<[string, string]> = [];
  let longName: string | undefined;
  let longLink: string | undefined;
  for (;;) {
    const h = await r.read(BLOCK);
    if (!h) return; // an archive without its end blocks: GNU tar accepts it too
    if (h.every((b) => b === 0)) return;
    if (!checksumOk(h))
      throw new TarFormatError(`the header at byte ${r.offset - BLOCK} has a wrong checksum (not a tar archive, or damaged)`);
    const flag = h[156] === 0 ? '0' : String.fromCharCode(h[156]);
    let size = num(h, 124, 12);
    if (flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K') {
      if (size > 16 << 20) throw new TarFormatError(`an extended header of ${size} bytes is more than rootprobe reads`);
      const data = size ? Buffer.concat(await collect(r.chunks(size))) : Buffer.alloc(0);
      await r.skip(pad(size));
      if (flag === 'x') pax = paxRecords(data);
      else if (flag === 'L') longName = cstr(data, 0, data.length);
      else if (flag === 'K') longLink = cstr(data, 0, data.length);
      continue;
    }
    const ustar = h.subarray(257, 263).toString('latin1') === 'ustar\0';
    let name = cstr(h, 0, 100);
    if (ustar && h[345]) name = `${cstr(h, 345, 155)}/${name}`;
    const e: RawEntry = {
      name: longName ?? name,
      flag,
      mode: num(h, 100, 8),
      uid: num(h, 108, 8),
      gid: num(h, 116, 8),
      linkname: longLink ?? cstr(h, 157, 100),
      devmajor: num(h, 329, 8),
      devminor: num(h, 337, 8),
      size,
    };
    longName = longLink = undefined;
    if (flag === 'S') {
      // Old GNU sparse: 4 map entries in the header, more in extension blocks, the real size at 483.
      const map: SparseMap = [];
      const take = (b: Buffer, off: number, count: number): void => {
        for (let i = 0; i < count; i++) {
          const o = off + i * 24;
          if (b[o] === 0) break;
          map.push([num(b, o, 12), num(b, o + 12, 12)]);
        }
      };
      take(h, 386, 4);
      let extended = h[482] !== 0;
      while (extended) {
        const x = await r.read(BLOCK);
        if (!x) throw new TarFormatError(`the archive ends inside the sparse map of ${e.name}`);
        take(x, 0, 21);
        extended = x[504] !== 0;
      }
      e.sparse = { format: 'GNU old-format sparse (tar type S)', realSize: num(h, 483, 12), map };
    }
    const get = (k: string): string | undefined => {
      let v: string | undefined;
      for (const [key, val] of pax) if (key === k) v = val;
      return v;
    };
    if (pax.length) {
      if (get('path') !== undefined) e.name = get('path')!;
      if (get('linkpath') !== undefined) e.linkname = get('linkpath')!;
      if (get('size') !== undefined) e.size = size = Number(get('size'));
      if (get('uid') !== undefined) e.uid = Number(get('uid'));
      if (get('gid') !== undefined) e.gid = Number(get('gid'));
      const major = get('GNU.sparse.major');
      const minor = get('GNU.sparse.minor');
      if (major !== undefined || get('GNU.sparse.map') !== undefined || get('GNU.sparse.offset') !== undefined) {
        if (get('GNU.sparse.name') !== undefined) e.name = get('GNU.sparse.name')!;
        const real = Number(get('GNU.sparse.realsize') ?? get('GNU.sparse.size'));
        if (!Number.isSafeInteger(real) || real < 0) throw new TarFormatError(`the PAX sparse file ${e.name} has no valid real size`);
        if (major === '1' && minor === '0') {
          e.sparse = { format: 'PAX sparse 1.0', realSize: real }; // the map is at the start of the data
        } else if (get('GNU.sparse.map') !== undefined) {
          e.sparse = {
            format: 'PAX sparse 0.1',
            realSize: real,
            map: parseSparseMap(get('GNU.sparse.map')!, `the sparse map of ${e.name}`),
          };
        } else if (get('GNU.sparse.offset') !== undefined) {
          const offs = pax.filter(([k]) => k === 'GNU.sparse.offset').map(([, v]) => v);
          const lens = pax.filter(([k]) => k === 'GNU.sparse.numbytes').map(([, v]) => v);
          if (offs.length !== lens.length) throw new TarFormatError(`the sparse map of ${e.name} is malformed`);
          e.sparse = {
            format: 'PAX sparse 0.0',
            realSize: real,
            map: parseSparseMap(offs.flatMap((o, i) => [o, lens[i]]).join(','), `the sparse map of ${e.name}`),
          };
        } else {
          e.sparse = { format: `PAX sparse ${major}.${minor}`, realSize: real };
        }
      }
      pax = [];
    }
    if (!Number.isSafeInteger(e.size) || e.size < 0) throw new TarFormatError(`entry ${JSON.stringify(e.name)} has an invalid size`);
    const hasData = !['1', '2', '3', '4', '5', '6'].includes(flag);
    const dataLen = hasData ? e.size : 0;
    let consumed = 0;
    const gen = async function* (): AsyncGenerator<Buffer> {
      for await (const c of r.chunks(dataLen - consumed)) {
        consumed += c.length;
        yield c;
      }
    };
    await onEntry(e, gen, r);
    if (consumed < dataLen) await r.skip(dataLen - consumed);
    await r.skip(pad(dataLen));
  }
}

async function collect(g: AsyncIterable<Buffer>): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const c of g) out.push(c);
  return out;
}

/** Files up to this size are kept in memory; bigger ones (and sparse ones) go to a spill file. */
const INLINE_MAX = 1 << 20;
const ZERO = Buffer.alloc(64 << 10);

/**
 * Writes `chunks` into `fd` from `offset` on, leaving holes where a whole 4 KiB-aligned block
 * is zero (the spill file is sparse: a 3 GiB file of zeros takes no space).
 */
async function writeSparse(fd: fs.FileHandle, offset: number, chunks: AsyncIterable<Buffer>): Promise<number> {
  let pos = offset;
  for await (const c of chunks) {
    let i = 0;
    while (i < c.length) {
      const n = Math.min(c.length - i, ZERO.length - (pos % 4096));
      const part = c.subarray(i, i + n);
      if (!part.equals(ZERO.subarray(0, part.length))) await fd.write(part, 0, part.length, pos);
      i += n;
      pos += n;
    }
  }
  return pos - offset;
}

/**
 * Adds every entry of a tar archive (a file path or a stream of tar bytes, compressed or not)
 * to `tree`. Resolves when the whole archive is read; a bad entry is a UsageError naming it.
 */
export async function importTar(tree: ImageTree, source: string | Readable, opts: TarImportOptions = {}): Promise<TarImportSummary> {
  const archive = opts.name ?? (typeof source === 'string' ? source : 'tar stream');
  const at = opts.at ? tree.norm(opts.at, 'tar import folder') : '/';
  let raw: Readable;
  if (typeof source === 'string') {
    raw = createReadStream(source);
    await new Promise<void>((resolve, reject) => {
      raw.once('open', () => resolve());
      raw.once('error', (e) => reject(new UsageError(`cannot read the tar archive ${source}: ${(e as Error).message}`)));
    });
  } else {
    raw = source;
  }
  const { kind, stream } = await sniff(raw);
  let plain: Readable;
  if (kind === 'none') plain = stream;
  else if (kind === 'gzip') plain = stream.pipe(zlib.createGunzip());
  else if (kind === 'xz' || kind === 'zstd') plain = decompressWith(kind, stream, archive);
  else throw new UsageError(`${archive}: ${kind}-compressed tar archives are not supported; decompress it first.`);

  const sum: TarImportSummary = { entries: 0, files: 0, dirs: 0, symlinks: 0, hardlinks: 0, devices: 0, fifos: 0, bytes: 0 };
  const seen = new Set<string>();
  let spillDir: string | undefined;
  let spills = 0;
  const spillFile = async (): Promise<string> => {
    spillDir ??= await makeTempDir('rootprobe-tar-');
    return path.join(spillDir, `f${spills++}`);
  };
  const onEntry = async (h: RawEntry, body: () => AsyncGenerator<Buffer>): Promise<void> => {
    const p = tarEntryPath(h.name, archive, at);
    const mode = h.mode & 0o7777;
    const owned = (): void => {
      if (h.uid !== 0 || h.gid !== 0) tree.chown(p, h.uid, h.gid);
    };
    sum.entries++;
    switch (h.flag) {
      case '0':
      case '7':
      case 'S': {
        if (p === at) throw new UsageError(`${archive}: entry ${JSON.stringify(h.name)} is a file where the root folder is.`);
        const sp = h.sparse;
        if (!sp && h.size <= INLINE_MAX) {
          const data = Buffer.concat(await collect(body()));
          tree.file(p, data, mode);
          sum.bytes += data.length;
        } else {
          // Streamed to a spill file (sparse where the data is zero), never held whole.
          const file = await spillFile();
          const fd = await fs.open(file, 'w');
          try {
            if (!sp) {
              sum.bytes += await writeSparse(fd, 0, body());
            } else {
              let map = sp.map;
              const it = body();
              const reader = new ByteReader({ [Symbol.asyncIterator]: () => it });
              if (!map) {
                // PAX 1.0: the map leads the data as decimal lines, padded to a block.
                const lines: string[] = [];
                let text = '';
                let used = 0;
                const line = async (): Promise<string> => {
                  for (;;) {
                    const nl = text.indexOf('\n');
                    if (nl >= 0) {
                      const l = text.slice(0, nl);
                      text = text.slice(nl + 1);
                      return l;
                    }
                    const blk = await reader.read(BLOCK);
                    if (!blk) throw new TarFormatError(`the sparse map of ${h.name} is cut short`);
                    used += BLOCK;
                    text += blk.toString('latin1');
                    if (used > 1 << 20) throw new TarFormatError(`the sparse map of ${h.name} is too long`);
                  }
                };
                const count = Number(await line());
                if (!Number.isSafeInteger(count) || count < 0) throw new TarFormatError(`the sparse map of ${h.name} is malformed`);
                for (let i = 0; i < count * 2; i++) lines.push(await line());
                map = parseSparseMap(lines.join(','), `the sparse map of ${h.name}`);
              }
              for (const [off, len] of map) {
                if (off + len > sp.realSize) throw new TarFormatError(`the sparse map of ${h.name} reaches past its size`);
                sum.bytes += await writeSparse(fd, off, reader.chunks(len));
              }
            }
            await fd.truncate(sp ? sp.realSize : h.size);
          } finally {
            await fd.close();
          }
          tree.copy(p, file, mode);
        }
        owned();
        sum.files++;
        break;
      }
      case '5':
        tree.dir(p, mode);
        owned();
        sum.dirs++;
        break;
      case '2':
        if (!h.linkname) throw new UsageError(`${archive}: symlink ${JSON.stringify(h.name)} has an empty target.`);
        tree.symlink(p, h.linkname);
        owned();
        sum.symlinks++;
        break;
      case '1': {
        const target = h.linkname;
        if (target.startsWith('/') || target.split('/').includes('..')) {
          throw new UsageError(
            `${archive}: hard link ${JSON.stringify(h.name)} -> ${JSON.stringify(target)} escapes the root ` +
              `(an absolute or ".." target would link a file outside it when extracted); refusing the archive.`,
          );
        }
        const tp = tarEntryPath(target, archive, at);
        if (!seen.has(tp)) {
          throw new UsageError(
            `${archive}: hard link ${JSON.stringify(h.name)} -> ${JSON.stringify(target)}: the target is not an earlier entry of the archive.`,
          );
        }
        tree.hardlink(p, tp);
        sum.hardlinks++;
        break;
      }
      case '3':
      case '4':
        tree.device(p, h.flag === '3' ? 'char' : 'block', h.devmajor, h.devminor, mode);
        owned();
        sum.devices++;
        break;
      case '6':
        tree.fifo(p, mode);
        owned();
        sum.fifos++;
        break;
      default:
        throw new UsageError(
          `${archive}: entry ${JSON.stringify(h.name)} has tar type '${h.flag}'` +
            `${FLAG_NAMES[h.flag] ? ` (${FLAG_NAMES[h.flag]})` : ''}, which rootprobe cannot import.`,
        );
    }
    if (h.sparse && h.flag !== '0' && h.flag !== 'S') {
      throw new UsageError(
        `${archive}: entry ${JSON.stringify(h.name)} is a ${h.sparse.format} entry of tar type '${h.flag}', which rootprobe cannot import.`,
      );
    }
    seen.add(p);
  };
  try {
    await readTar(plain, onEntry);
  } catch (e) {
    plain.destroy();
    raw.destroy();
    if (e instanceof UsageError) throw e;
    throw new UsageError(`${archive}: not a readable tar archive: ${(e as Error).message}`);
  }
  if (sum.entries === 0) throw new UsageError(`${archive}: the tar archive has no entries.`);
  return sum;
}
