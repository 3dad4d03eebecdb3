/**
 * A small ELF64 reader: just what library resolution needs. It reads the file header, the
 * program headers, PT_INTERP and the dynamic section (DT_NEEDED, DT_RUNPATH, DT_RPATH,
 * DT_SONAME), mapping DT_STRTAB's virtual address to a file offset through the PT_LOAD
 * segments. No section headers, no symbols.
 */
import { promises as fs } from 'node:fs';

export const EM_X86_64 = 62;

const PT_LOAD = 1;
const PT_DYNAMIC = 2;
const PT_INTERP = 3;

const DT_NULL = 0n;
const DT_NEEDED = 1n;
const DT_STRTAB = 5n;
const DT_SONAME = 14n;
const DT_RPATH = 15n;
const DT_RUNPATH = 29n;

export interface ElfInfo {
  /** e_machine (62 = x86-64). */
  machine: number;
  /** e_type: 2 = executable, 3 = shared object / PIE. */
  type: number;
  /** PT_INTERP: the program interpreter, e.g. /lib64/ld-linux-x86-64.so.2. */
  interp?: string;
  /** True when the file has a PT_DYNAMIC segment. */
  dynamic: boolean;
  needed: string[];
  rpath: string[];
  runpath: string[];
  soname?: string;
}

/** Thrown when a file is not an ELF64 little-endian object; `reason` says why. */
export class NotElfError extends Error {
  override name = 'NotElfError';
}

interface Phdr {
  type: number;
  offset: bigint;
  vaddr: bigint;
  filesz: bigint;
}

async function readAt(fh: fs.FileHandle, offset: bigint | number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  const { bytesRead } = await fh.read(buf, 0, length, Number(offset));
  return buf.subarray(0, bytesRead);
}

function cstring(buf: Buffer, at: number): string {
  const end = buf.indexOf(0, at);
  return buf.toString('utf8', at, end < 0 ? buf.length : end);
}

/** Reads the dynamic-linking facts of an ELF64 little-endian file. */
export async function readElf(file: string): Promise<ElfInfo> {
  const fh = await fs.open(file, 'r');
  try {
    const eh = await readAt(fh, 0, 64);
    if (eh.length < 64 || eh.readUInt32BE(0) !== 0x7f454c46) throw new NotElfError(`${file} is not an ELF file`);
    if (eh[4] !== 2) throw new NotElfError(`${file} is not a 64-bit ELF file`);
    if (eh[5] !== 1) throw new NotElfError(`${file} is not a little-endian ELF file`);
    const type = eh.readUInt16LE(16);
    const machine = eh.readUInt16LE(18);
    const phoff = eh.readBigUInt64LE(32);
    const phentsize = eh.readUInt16LE(54);
    const phnum = eh.readUInt16LE(56);
    if (phentsize < 56 || phnum > 4096) throw new NotElfError(`${file} has malformed program headers`);
    const ph = await readAt(fh, phoff, phentsize * phnum);
    if (ph.length < phentsize * phnum) throw new NotElfError(`${file} is truncated (program headers)`);
    const phdrs: Phdr[] = [];
    for (let i = 0; i < phnum; i++) {
      const o = i * phentsize;
      phdrs.push({
        type: ph.readUInt32LE(o),
        offset: ph.readBigUInt64LE(o + 8),
        vaddr: ph.readBigUInt64LE(o + 16),
        filesz: ph.readBigUInt64LE(o + 32),
      });
    }
    const info: ElfInfo = { machine, type, dynamic: false, needed: [], rpath: [], runpath: [] };
    const interp = phdrs.find((p) => p.type === PT_INTERP);
    if (interp) info.interp = cstring(await readAt(fh, interp.offset, Number(interp.filesz)), 0);
    const dyn = phdrs.find((p) => p.type === PT_DYNAMIC);
    if (!dyn) return info;
    info.dynamic = true;
    const d = await readAt(fh, dyn.offset, Number(dyn.filesz));
    const tags: Array<[bigint, bigint]> = [];
    for (let o = 0; o + 16 <= d.length; o += 16) {
      const tag = d.readBigInt64LE(o);
      if (tag === DT_NULL) break;
      tags.push([tag, d.readBigUInt64LE(o + 8)]);
    }
    const strtabAddr = tags.find(([t]) => t === DT_STRTAB)?.[1];
    if (strtabAddr === undefined) return info;
    // The string table's virtual address lies in a PT_LOAD segment; map it to the file.
    const seg = phdrs.find((p) => p.type === PT_LOAD && strtabAddr >= p.vaddr && strtabAddr < p.vaddr + p.filesz);
    if (!seg) throw new NotElfError(`${file}: DT_STRTAB is outside every PT_LOAD segment`);
    const strOff = seg.offset + (strtabAddr - seg.vaddr);
    const strMax = Number(seg.filesz - (strtabAddr - seg.vaddr));
    const strtab = await readAt(fh, strOff, Math.min(strMax, 1 << 20));
    const str = (v: bigint): string => cstring(strtab, Number(v));
    for (const [tag, val] of tags) {
      if (tag === DT_NEEDED) info.needed.push(str(val));
      else if (tag === DT_RPATH) info.rpath.push(...str(val).split(':').filter(Boolean));
      else if (tag === DT_RUNPATH) info.runpath.push(...str(val).split(':').filter(Boolean));
      else if (tag === DT_SONAME) info.soname = str(val);
    }
    return info;
  } finally {
    await fh.close();
  }
}

/** True when an ELF file needs no dynamic loader: no PT_INTERP and no DT_NEEDED. */
export function isStatic(info: ElfInfo): boolean {
  return !info.interp && info.needed.length === 0;
}
