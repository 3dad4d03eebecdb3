/**
 * newc reader: one or more concatenated segments, each plain or gzip-compressed, with zero
 * padding between them, following the rules of the kernel's init/initramfs.c (each plain
 * segment must start 4-byte aligned; inside a compressed segment only plain segments and
 * zeros may follow each other).
 *
 * Our own code rather than cpio-stream's extractor, which in 1.4.3 decodes names as ASCII
 * (non-ASCII names come out mangled), stops at the first TRAILER!!! (no concatenated
 * segments), has no gzip, and on a truncated archive just ends without an error.
 */
import * as zlib from 'node:zlib';
import { lenientPath, S_IFMT, TRAILER, TYPE_BITS, type CpioReadEntry } from './entry.ts';

const FIELDS = [
  'ino',
  'mode',
  'uid',
  'gid',
  'nlink',
  'mtime',
  'filesize',
  'devmajor',
  'devminor',
  'rdevmajor',
  'rdevminor',
  'namesize',
  'check',
] as const;
type Field = (typeof FIELDS)[number];

const TYPE_OF_BITS = new Map<number, CpioReadEntry['type']>(
  Object.entries(TYPE_BITS).map(([t, bits]) => [bits, t as CpioReadEntry['type']]),
);

/** Magic numbers of the other compressions the kernel may accept, for a clear error. */
const OTHER_COMPRESSIONS: Array<[string, number[]]> = [
  ['xz', [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
  ['zstd', [0x28, 0xb5, 0x2f, 0xfd]],
  ['bzip2', [0x42, 0x5a, 0x68]],
  ['lz4', [0x02, 0x21, 0x4c, 0x18]],
  ['lzo', [0x89, 0x4c, 0x5a, 0x4f]],
  ['lzma', [0x5d, 0x00, 0x00]],
];

function pad4(n: number): number {
  return (n + 3) & ~3;
}

function startsWith(buf: Buffer, at: number, bytes: number[]): boolean {
  return bytes.every((b, i) => buf[at + i] === b);
}

function showBytes(buf: Buffer, at: number): string {
  const b = buf.subarray(at, at + 8);
  return `${JSON.stringify(b.toString('latin1'))} (hex ${b.toString('hex')})`;
}

type Where = (offset: number) => string;

/**
 * Reads one or more concatenated newc segments (each may be gzip-compressed, with zero padding
 * between them, as the kernel accepts). Throws a clear Error on damage.
 * Entries come in archive order; a path present in several segments appears several times
 * (the kernel would let the later one win).
 */
export async function readNewc(data: Buffer): Promise<CpioReadEntry[]> {
  if (!Buffer.isBuffer(data)) throw new TypeError('readNewc needs a Buffer.');
  const out: CpioReadEntry[] = [];
  const top: Where = (o) => `offset ${o}`;
  let o = 0;
  let segments = 0;
  while (o < data.length) {
    if (data[o] === 0) {
      o++;
      continue;
    }
    if (data[o] === 0x1f && data[o + 1] === 0x8b) {
      let res: { buffer: Buffer; engine: zlib.Gunzip };
      try {
        res = zlib.gunzipSync(data.subarray(o), { info: true }) as unknown as { buffer: Buffer; engine: zlib.Gunzip };
      } catch (err) {
        throw new Error(`gzip segment at offset ${o} is damaged or truncated: ${(err as Error).message}`);
      }
      const start = o;
      const inner: Where = (i) => `offset ${i} of the data decompressed from the gzip segment at offset ${start}`;
      readPlain(res.buffer, 0, inner, out);
      o += res.engine.bytesWritten;
      segments++;
      continue;
    }
    if (data[o] === 0x30) {
      o = readSegment(data, o, top, out);
      segments++;
      continue;
    }
    const other = OTHER_COMPRESSIONS.find(([, magic]) => startsWith(data, o, magic));
    if (other) {
      throw new Error(`The segment at offset ${o} is ${other[0]}-compressed; readNewc reads plain and gzip newc segments only.`);
    }
    throw new Error(`bad magic at offset ${o}: expected a newc header ("070701") or gzip data, found ${showBytes(data, o)}.`);
  }
  if (segments === 0) throw new Error(`No newc archive found: the ${data.length} bytes are all zero or empty.`);
  return out;
}

/** Plain segments and zeros, up to the end of buf (the inside of a compressed segment). */
function readPlain(buf: Buffer, from: number, where: Where, out: CpioReadEntry[]): void {
  let o = from;
  let segments = 0;
  while (o < buf.length) {
    if (buf[o] === 0) {
      o++;
      continue;
    }
    if (buf[o] !== 0x30) {
      throw new Error(
        `bad magic at ${where(o)}: expected a newc header ("070701") or zero padding, found ${showBytes(buf, o)} ` +
          `(the kernel allows no nested compression).`,
      );
    }
    o = readSegment(buf, o, where, out);
    segments++;
  }
  if (segments === 0) throw new Error(`No newc archive in the data at ${where(from)}: it is all zeros.`);
}

/** An 8-digit hex field, read from the bytes (the guest's frames are read while it boots: no strings per field). */
function parseField(buf: Buffer, at: number, name: Field, entryAt: () => string): number {
  let v = 0;
  for (let i = 0; i < 8; i++) {
    const c = buf[at + i];
    const d = c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x66 ? c - 0x57 : c >= 0x41 && c <= 0x46 ? c - 0x37 : -1;
    if (d < 0) {
      const s = buf.toString('latin1', at, at + 8);
      throw new Error(`bad newc header at ${entryAt()}: field ${name} is ${JSON.stringify(s)}, not 8 hex digits.`);
    }
    v = v * 16 + d;
  }
  return v;
}

/** One segment, from its first header through TRAILER!!!; returns the offset after the trailer. */
function readSegment(buf: Buffer, start: number, where: Where, out: CpioReadEntry[]): number {
  if (start % 4 !== 0) {
    throw new Error(
      `newc segment at ${where(start)} does not start on a 4-byte boundary; the kernel rejects that. ` +
        `Pad the data before it with zeros to a multiple of 4 bytes.`,
    );
  }
  const links = new Map<string, CpioReadEntry[]>();
  const sizes = new Map<CpioReadEntry, number>();
  let o = start;
  let last: string | undefined;
  for (;;) {
    const entryStart = o;
    const at = (): string => where(entryStart);
    if (o >= buf.length || o + 110 > buf.length) {
      const after = last === undefined ? '' : ` after entry ${JSON.stringify(last)}`;
      throw new Error(
        o >= buf.length
          ? `truncated archive: it ends at ${at()}${after} without a ${TRAILER} entry.`
          : `truncated newc header at ${at()}${after}: needs 110 bytes, only ${buf.length - o} left.`,
      );
    }
    const magic = buf.toString('latin1', o, o + 6);
    if (magic !== '070701' && magic !== '070702') {
      const hint = magic === '070707' ? ' That is the old portable (odc) format; write the archive with -H newc.' : '';
      throw new Error(`bad magic at ${at()}: expected "070701" (newc), found ${showBytes(buf, o)}.${hint}`);
    }
    const h = {} as Record<Field, number>;
    FIELDS.forEach((f, i) => (h[f] = parseField(buf, o + 6 + 8 * i, f, at)));
    if (h.namesize < 1) throw new Error(`bad newc header at ${at()}: namesize is 0 (it counts the name's NUL).`);
    const nameEnd = o + 110 + h.namesize;
    if (nameEnd > buf.length) {
      throw new Error(`truncated entry at ${at()}: its name needs ${h.namesize} bytes, only ${buf.length - o - 110} left.`);
    }
    if (buf[nameEnd - 1] !== 0) {
      throw new Error(`bad newc header at ${at()}: the name (namesize ${h.namesize}) does not end with a NUL byte.`);
    }
    const name = buf.toString('utf8', o + 110, nameEnd - 1);
    const dataStart = pad4(nameEnd);
    if (name === TRAILER) {
      fillHardLinks(links, sizes);
      return Math.min(pad4(dataStart + h.filesize), buf.length);
    }
    const dataEnd = dataStart + h.filesize;
    if (dataEnd > buf.length) {
      throw new Error(
        `truncated entry ${JSON.stringify(name)} at ${at()}: its header says ${h.filesize} bytes of data, ` +
          `only ${Math.max(0, buf.length - dataStart)} left.`,
      );
    }
    const body = buf.subarray(dataStart, dataEnd);
    if (magic === '070702') {
      let sum = 0;
      for (const b of body) sum = (sum + b) >>> 0;
      if (sum !== h.check) {
        throw new Error(`entry ${JSON.stringify(name)} at ${at()}: checksum ${h.check} in the header, ${sum} in the data.`);
      }
    }
    const type = TYPE_OF_BITS.get(h.mode & S_IFMT);
    if (!type) {
      throw new Error(`entry ${JSON.stringify(name)} at ${at()}: unknown file type bits 0o${(h.mode & S_IFMT).toString(8)} in mode.`);
    }
    const e: CpioReadEntry = {
      path: lenientPath(name),
      type,
      mode: h.mode & 0o7777,
      uid: h.uid,
      gid: h.gid,
      mtime: h.mtime,
      ino: h.ino,
      nlink: h.nlink,
      data: type === 'file' ? body : Buffer.alloc(0),
    };
    if (type === 'symlink') e.target = body.toString('utf8');
    if (type === 'char' || type === 'block') {
      e.major = h.rdevmajor;
      e.minor = h.rdevminor;
    }
    if (type === 'file' && h.nlink >= 2) {
      const key = `${h.devmajor}:${h.devminor}:${h.ino}`;
      if (!links.has(key)) links.set(key, []);
      links.get(key)!.push(e);
      sizes.set(e, h.filesize);
    }
    out.push(e);
    last = name;
    o = pad4(dataEnd);
  }
}

/** newc stores a hard-link group's data once (GNU: on the last entry); give it to every member. */
function fillHardLinks(links: Map<string, CpioReadEntry[]>, sizes: Map<CpioReadEntry, number>): void {
  for (const members of links.values()) {
    const holder = [...members].reverse().find((m) => (sizes.get(m) ?? 0) > 0);
    if (!holder) continue;
    for (const m of members) m.data = holder.data;
  }
}
