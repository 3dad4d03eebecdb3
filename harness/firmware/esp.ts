/**
 * An EFI system partition image built without root: `mkfs.vfat -C` makes the FAT file system
 * in a plain file and mtools (`mmd`, `mcopy -i`) fills it; nothing is loop-mounted.
 *
 * Two layouts (espFiles):
 *   systemd-boot: \EFI\BOOT\BOOTX64.EFI is systemd-boot, \loader\loader.conf picks the one
 *                 Boot Loader Specification entry \loader\entries\rootprobe.conf, which names
 *                 \rootprobe\linux, \rootprobe\initrd and the command line.
 *   uki:          \EFI\BOOT\BOOTX64.EFI is the unified kernel image itself (firmware/uki.ts).
 * Both boot from the removable-media fallback path, so the fresh variable store of each run
 * needs no boot entry.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { requireTool } from '../host.ts';
import { MTOOLS_ENV, runTool } from './tool.ts';

/** One file in the ESP: its path there (`/` separated, no leading slash) and its content. */
export interface EspFile {
  path: string;
  /** A host file copied in, or text written. */
  source?: string;
  text?: string;
}

export interface BlsEntry {
  title: string;
  /** Paths on the ESP, as the entry names them (leading `/`). */
  linux: string;
  initrd: string[];
  options: string;
  /** Sorting key and machine-readable name (the file is `<id>.conf`). */
  id: string;
}

/** The text of a Boot Loader Specification type #1 entry (pure). */
export function blsEntryText(e: BlsEntry): string {
  if (/[\n\r]/.test(e.options + e.title)) throw new Error('internal: a BLS entry line cannot hold a newline');
  return [
    `title ${e.title}`,
    `sort-key rootprobe`,
    `linux ${e.linux}`,
    ...e.initrd.map((i) => `initrd ${i}`),
    `options ${e.options}`,
    '',
  ].join('\n');
}

/** loader.conf: the entry booted at once, no menu (a 0 timeout), nothing written to the variables by the editor. */
export function loaderConfText(entryId: string): string {
  return [`default ${entryId}.conf`, 'timeout 0', 'editor no', 'console-mode keep', ''].join('\n');
}

/** The removable-media path the firmware boots without a boot entry: EFI/BOOT/BOOT<ARCH>.EFI. */
export function fallbackPath(efiArch: string): string {
  return `EFI/BOOT/BOOT${efiArch.toUpperCase()}.EFI`;
}

export interface SystemdBootLayout {
  efiArch: string;
  /** systemd-boot's binary on the host. */
  loader: string;
  kernel: string;
  /** The initramfs (one file: the plan's segments joined), if any. */
  initrd?: string;
  /** The whole command line (the architecture's base options included). */
  cmdline: string;
  title: string;
}

/** The files of an ESP that boots through systemd-boot (pure). */
export function systemdBootFiles(l: SystemdBootLayout): EspFile[] {
  const entry: BlsEntry = {
    id: 'rootprobe',
    title: l.title,
    linux: '/rootprobe/linux',
    initrd: l.initrd ? ['/rootprobe/initrd'] : [],
    options: l.cmdline,
  };
  return [
    { path: fallbackPath(l.efiArch), source: l.loader },
    { path: 'loader/loader.conf', text: loaderConfText(entry.id) },
    { path: `loader/entries/${entry.id}.conf`, text: blsEntryText(entry) },
    { path: 'rootprobe/linux', source: l.kernel },
    ...(l.initrd ? [{ path: 'rootprobe/initrd', source: l.initrd }] : []),
  ];
}

/** The files of an ESP that boots a unified kernel image from the fallback path (pure). */
export function ukiFiles(efiArch: string, uki: string): EspFile[] {
  return [{ path: fallbackPath(efiArch), source: uki }];
}

/** Every folder the files need, parents first (pure). */
export function espFolders(files: EspFile[]): string[] {
  const dirs = new Set<string>();
  for (const f of files) {
    const parts = f.path.split('/').slice(0, -1);
    for (let i = 1; i <= parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
  }
  return [...dirs].sort((a, b) => a.split('/').length - b.split('/').length || a.localeCompare(b));
}

async function run(cmd: string, args: string[]): Promise<void> {
  await runTool(cmd, args, { env: MTOOLS_ENV(), maxBuffer: 1 << 20 });
}

/** The size of the FAT image for these bytes of files: room for FAT overhead, at least 34 MiB (a FAT32-able size). */
export function espSizeKiB(contentBytes: number): number {
  const kib = Math.ceil((contentBytes * 1.1) / 1024) + 4096;
  return Math.max(34 * 1024, Math.ceil(kib / 1024) * 1024);
}

/** Builds the ESP image `out` holding `files` (mkfs.vfat + mtools, no mount, no root). */
export async function buildEsp(files: EspFile[], out: string): Promise<void> {
  const mkfs = requireTool('mkfs.vfat', 'to build an EFI system partition');
  const mmd = requireTool('mmd', 'to build an EFI system partition');
  const mcopy = requireTool('mcopy', 'to build an EFI system partition');
  const tmp = `${out}.d`;
  await fs.rm(tmp, { recursive: true, force: true });
  await fs.mkdir(tmp, { recursive: true });
  try {
    let bytes = 0;
    const sources: Array<{ from: string; to: string }> = [];
    for (const [i, f] of files.entries()) {
      let from = f.source;
      if (from === undefined) {
        from = path.join(tmp, `text-${i}`);
        await fs.writeFile(from, f.text ?? '');
      }
      bytes += (await fs.stat(from)).size;
      sources.push({ from, to: f.path });
    }
    await fs.rm(out, { force: true });
    await run(mkfs, ['-C', '-F', '32', '-n', 'ROOTPROBE', out, String(espSizeKiB(bytes))]);
    for (const d of espFolders(files)) await run(mmd, ['-i', out, `::/${d}`]);
    for (const s of sources) await run(mcopy, ['-i', out, s.from, `::/${s.to}`]);
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
}
