/**
 * Unified kernel images (UAPI.5): systemd's EFI stub (linux<arch>.efi.stub, Debian's
 * systemd-boot-efi) with the kernel, the initramfs and the command line added as PE sections
 * `.linux`, `.initrd`, `.cmdline` (and `.osrel`, `.uname`). By `ukify build` where the host has
 * it; else by objcopy, the way the spec describes and ukify itself does it: each new section
 * placed after the stub's last one, at a virtual address aligned to the stub's
 * SectionAlignment (ukiLayout, a pure function of the stub's headers and the sizes), so that
 * no section overlaps another or the stub's image.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { SetupError } from '../errors.ts';
import { findCommand, requireHostFile, requireTool, SYSTEMD_BOOT_EFI } from '../host.ts';
import { runTool } from './tool.ts';

export interface PeSection {
  name: string;
  virtualAddress: number;
  virtualSize: number;
  rawSize: number;
}

export interface PeInfo {
  /** PE32+ (0x20b) or PE32 (0x10b). */
  magic: number;
  imageBase: bigint;
  sectionAlignment: number;
  fileAlignment: number;
  sizeOfImage: number;
  sections: PeSection[];
}

/** The headers of a PE image (pure: a buffer in). */
export function readPe(buf: Buffer): PeInfo {
  if (buf.length < 0x40 || buf.toString('latin1', 0, 2) !== 'MZ') throw new SetupError('not a PE image (no MZ header)');
  const pe = buf.readUInt32LE(0x3c);
  if (buf.toString('latin1', pe, pe + 4) !== 'PE\0\0') throw new SetupError('not a PE image (no PE signature)');
  const coff = pe + 4;
  const nsections = buf.readUInt16LE(coff + 2);
  const optSize = buf.readUInt16LE(coff + 16);
  const opt = coff + 20;
  const magic = buf.readUInt16LE(opt);
  if (magic !== 0x20b && magic !== 0x10b) throw new SetupError(`unknown PE optional header magic 0x${magic.toString(16)}`);
  const imageBase = magic === 0x20b ? buf.readBigUInt64LE(opt + 24) : BigInt(buf.readUInt32LE(opt + 28));
  const sectionAlignment = buf.readUInt32LE(opt + 32);
  const fileAlignment = buf.readUInt32LE(opt + 36);
  const sizeOfImage = buf.readUInt32LE(opt + 56);
  const sections: PeSection[] = [];
  let at = opt + optSize;
  for (let i = 0; i < nsections; i++, at += 40) {
    sections.push({
      name: buf.toString('latin1', at, at + 8).replace(/\0+$/, ''),
      virtualSize: buf.readUInt32LE(at + 8),
      virtualAddress: buf.readUInt32LE(at + 12),
      rawSize: buf.readUInt32LE(at + 16),
    });
  }
  return { magic, imageBase, sectionAlignment, fileAlignment, sizeOfImage, sections };
}

export interface UkiPart {
  /** `.linux`, `.initrd`, `.cmdline`, `.osrel`, `.uname` */
  section: string;
  size: number;
}

export interface PlacedPart extends UkiPart {
  /** The section's virtual address relative to the image base (RVA), and absolute (objcopy's VMA). */
  rva: number;
  vma: bigint;
}

function alignUp(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

/**
 * Where each part goes (pure): after the end of the stub's last section (or its SizeOfImage,
 * whichever is later), each at the stub's SectionAlignment, in the order given.
 */
export function ukiLayout(stub: PeInfo, parts: UkiPart[]): PlacedPart[] {
  const align = stub.sectionAlignment || 0x1000;
  let next = alignUp(Math.max(stub.sizeOfImage, ...stub.sections.map((s) => s.virtualAddress + Math.max(s.virtualSize, s.rawSize))), align);
  return parts.map((p) => {
    if (stub.sections.some((s) => s.name === p.section)) throw new SetupError(`the stub already has a ${p.section} section`);
    const placed = { ...p, rva: next, vma: stub.imageBase + BigInt(next) };
    next = alignUp(next + Math.max(p.size, 1), align);
    return placed;
  });
}

/** objcopy's arguments for the layout (pure). */
export function objcopyArgs(placed: Array<PlacedPart & { file: string }>, stub: string, out: string): string[] {
  const args: string[] = [];
  for (const p of placed) {
    args.push(
      '--add-section',
      `${p.section}=${p.file}`,
      '--set-section-flags',
      `${p.section}=data,readonly`,
      '--change-section-vma',
      `${p.section}=0x${p.vma.toString(16)}`,
    );
  }
  return [...args, stub, out];
}

const run = (cmd: string, args: string[]): Promise<string> => runTool(cmd, args);

export interface UkiInput {
  kernel: string;
  initrd?: string;
  cmdline: string;
  /** `uname -r` of the kernel, for `.uname`. */
  release?: string;
  efiArch: string;
  /** Default: systemd-boot-efi's linux<arch>.efi.stub. */
  stub?: string;
}

export interface UkiBuilt {
  path: string;
  tool: 'ukify' | 'objcopy';
  /** The sections rootprobe placed (objcopy) or read back (ukify). */
  sections: PeSection[];
}

/** Assembles a UKI at `out`; `dir` takes the section files (cmdline, osrel). */
export async function buildUki(input: UkiInput, out: string, dir: string): Promise<UkiBuilt> {
  const stub =
    input.stub ?? requireHostFile(path.join(SYSTEMD_BOOT_EFI, `linux${input.efiArch}.efi.stub`), 'to assemble a unified kernel image');
  const cmdlineFile = path.join(dir, 'uki.cmdline');
  await fs.writeFile(cmdlineFile, input.cmdline);
  const osrel = path.join(dir, 'uki.osrel');
  await fs.writeFile(osrel, 'ID=rootprobe\nNAME="rootprobe"\nPRETTY_NAME="rootprobe test image"\n');
  await fs.rm(out, { force: true });
  const ukify = findCommand('ukify', ['/usr/lib/systemd/ukify']);
  if (ukify && !process.env.ROOTPROBE_NO_UKIFY) {
    await run(ukify, [
      'build',
      `--linux=${input.kernel}`,
      ...(input.initrd ? [`--initrd=${input.initrd}`] : []),
      `--cmdline=@${cmdlineFile}`,
      `--os-release=@${osrel}`,
      ...(input.release ? [`--uname=${input.release}`] : []),
      `--stub=${stub}`,
      `--output=${out}`,
    ]);
    return { path: out, tool: 'ukify', sections: readPe(await fs.readFile(out)).sections };
  }
  const objcopy = requireTool('objcopy', 'to assemble a unified kernel image');
  const stubPe = readPe(await fs.readFile(stub));
  const has = (n: string): boolean => stubPe.sections.some((s) => s.name === n);
  // A user's UKI taken apart keeps its own .osrel (and the like): only what it lacks is added.
  const files: Array<{ section: string; file: string }> = [
    ...(has('.osrel') ? [] : [{ section: '.osrel', file: osrel }]),
    { section: '.cmdline', file: cmdlineFile },
  ];
  if (input.release && !has('.uname')) {
    const uname = path.join(dir, 'uki.uname');
    await fs.writeFile(uname, input.release);
    files.push({ section: '.uname', file: uname });
  }
  if (input.initrd) files.push({ section: '.initrd', file: input.initrd });
  // .linux last: the stub loads it as a PE image of its own; the kernel's size is the biggest.
  files.push({ section: '.linux', file: input.kernel });
  const sizes = await Promise.all(files.map(async (f) => (await fs.stat(f.file)).size));
  const placed = ukiLayout(
    stubPe,
    files.map((f, i) => ({ section: f.section, size: sizes[i] })),
  ).map((p, i) => ({ ...p, file: files[i].file }));
  await run(objcopy, objcopyArgs(placed, stub, out));
  const built = readPe(await fs.readFile(out));
  for (const p of placed) {
    const s = built.sections.find((x) => x.name === p.section);
    if (!s || s.virtualAddress !== p.rva) {
      throw new SetupError(
        `objcopy placed ${p.section} at ${s ? `0x${s.virtualAddress.toString(16)}` : 'nowhere'}, not at 0x${p.rva.toString(16)}: the UKI ${out} is not as planned`,
      );
    }
  }
  return { path: out, tool: 'objcopy', sections: built.sections };
}

export interface UkiParts {
  /** The kernel (.linux), the initramfs (.initrd) and command line (.cmdline) dumped into files. */
  linux: string;
  initrd?: string;
  cmdline?: string;
  /** The UKI without those sections: its own stub (with .osrel, .sbat, ...), to put the new ones on. */
  stub: string;
  /** Every section the UKI had, in order. */
  sections: string[];
}

/** Takes a UKI apart into `dir` (objcopy --dump-section; the file itself is only read). */
export async function splitUki(uki: string, dir: string): Promise<UkiParts> {
  let pe: PeInfo;
  try {
    pe = readPe(await fs.readFile(uki));
  } catch (e) {
    throw new SetupError(`${uki} is not a unified kernel image: ${(e as Error).message}`);
  }
  const names = pe.sections.map((s) => s.name);
  if (!names.includes('.linux'))
    throw new SetupError(`${uki} is a PE image without a .linux section: not a unified kernel image (sections: ${names.join(', ')})`);
  const objcopy = requireTool('objcopy', 'to take a unified kernel image apart');
  const parts: UkiParts = { linux: path.join(dir, 'uki-linux'), stub: path.join(dir, 'uki-stub.efi'), sections: names };
  const dump = ['--dump-section', `.linux=${parts.linux}`];
  if (names.includes('.initrd')) dump.push('--dump-section', `.initrd=${(parts.initrd = path.join(dir, 'uki-initrd'))}`);
  if (names.includes('.cmdline')) dump.push('--dump-section', `.cmdline=${(parts.cmdline = path.join(dir, 'uki-cmdline'))}`);
  const scratch = path.join(dir, 'uki-scratch.efi');
  await run(objcopy, [...dump, uki, scratch]);
  await fs.rm(scratch, { force: true });
  const remove = ['.linux', '.initrd', '.cmdline', '.uname'].filter((n) => names.includes(n)).flatMap((n) => ['--remove-section', n]);
  await run(objcopy, [...remove, uki, parts.stub]);
  return parts;
}
