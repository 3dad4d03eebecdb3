/**
 * A user's own EFI system partition (`run external --esp IMAGE`), read and edited with mtools
 * only, never mounted and never written: rootprobe works on a copy (a reflink, else sparse).
 *
 * What systemd-boot would boot is read from the copy: `\loader\loader.conf`'s `default` (a
 * glob, as systemd-boot takes it) over the Boot Loader Specification type #1 entries in
 * `\loader\entries\*.conf`, or the only entry there is. Its `linux` and `initrd` files are read
 * out (the kernel, and the initramfs: the entry's initrds joined in order, as systemd-boot hands
 * them to the kernel), and its `options` are the user's command line.
 *
 * The probe gets in the way a BLS entry allows: one more `initrd` line, naming rootprobe's
 * segment copied to `\rootprobe\rootprobe.img` on the copy, after the user's initrds (the kernel
 * unpacks the concatenated archives in order), and the entry's `options` replaced by the
 * command line the plan boots with (the user's options plus rootprobe's console, result port and
 * `rdinit=`). Nothing else on the copy changes.
 *
 * A type #2 entry (a unified kernel image in `\EFI\Linux\*.efi`) is taken apart as `--uki`
 * does (firmware/uki.ts) and put back at the same path on the copy, rebuilt on its own stub with
 * its `.linux`, its `.initrd` followed by rootprobe's segment, and the planned command line as
 * `.cmdline`.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { SetupError, UsageError } from '../errors.ts';
import { requireTool } from '../host.ts';
import { MTOOLS_ENV, runTool } from './tool.ts';
import { copyForRun } from '../image/disk.ts';
import { buildUki, splitUki, type UkiParts } from './uki.ts';

function mtool(name: string, args: string[]): Promise<string> {
  return runTool(requireTool(name, 'to read an EFI system partition'), args, { env: MTOOLS_ENV() });
}

/** A BLS type #1 entry's keys (pure): every `initrd` in order, the other keys last one wins. */
export interface ParsedEntry {
  linux?: string;
  initrd: string[];
  options: string[];
  title?: string;
  keys: Record<string, string>;
}

export function parseBlsEntry(text: string): ParsedEntry {
  const e: ParsedEntry = { initrd: [], options: [], keys: {} };
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^(\S+)\s*(.*)$/.exec(line)!;
    const [key, value] = [m[1], m[2].trim()];
    if (key === 'initrd') e.initrd.push(value);
    else if (key === 'options') e.options.push(value);
    else {
      e.keys[key] = value;
      if (key === 'linux') e.linux = value;
      if (key === 'title') e.title = value;
    }
  }
  return e;
}

/** loader.conf's `default`, if any (pure). */
export function loaderDefault(text: string): string | undefined {
  let d: string | undefined;
  for (const raw of text.split('\n')) {
    const m = /^\s*default\s+(\S+)/.exec(raw);
    if (m) d = m[1];
  }
  return d;
}

function globRe(glob: string): RegExp {
  return new RegExp(
    `^${glob
      .replace(/[.+^${}()|\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
  );
}

/**
 * The entry systemd-boot boots at once (pure): the one loader.conf's default names (as an id
 * with or without `.conf`, a glob allowed), or the only entry; otherwise a UsageError naming them.
 */
export function chooseEntry(entries: string[], def: string | undefined, esp: string): string {
  if (entries.length === 0)
    throw new UsageError(
      `--esp ${esp} has no Boot Loader Specification entries (loader/entries/*.conf): nothing rootprobe can add the probe to`,
    );
  if (def !== undefined) {
    const re = globRe(def);
    const hit = entries.filter((e) => re.test(e) || re.test(e.replace(/\.conf$/, '')));
    if (hit.length > 0) return hit.sort().reverse()[0];
    throw new UsageError(`--esp ${esp}: loader/loader.conf's default '${def}' names none of the entries ${entries.join(', ')}`);
  }
  if (entries.length === 1) return entries[0];
  throw new UsageError(
    `--esp ${esp} has ${entries.length} entries (${entries.join(', ')}) and no default in loader/loader.conf: say which one boots there (default NAME.conf)`,
  );
}

/** A path as a BLS entry writes it (`/EFI/x`, `\EFI\x`) as mtools takes it. */
function espPath(p: string): string {
  return `::/${p.replace(/\\/g, '/').replace(/^\/+/, '')}`;
}

export interface UserEsp {
  /** The sparse copy that is edited and booted. */
  copy: string;
  /** `bls`: a type #1 entry in loader/entries; `uki`: a type #2 entry, a UKI in EFI/Linux. */
  kind: 'bls' | 'uki';
  /** With `uki`: the UKI taken apart. */
  uki?: UkiParts;
  /** The entry's file on the ESP (`loader/entries/NAME.conf`) and its text. */
  entry: string;
  entryText: string;
  parsed: ParsedEntry;
  /** The kernel read out of the copy, and its initrds joined (absent: the entry has none). */
  kernel: string;
  initramfs?: string;
  /** The entry's options: the user's command line. */
  cmdline: string;
}

/** Copies the user's ESP sparsely into `dir` and reads the entry that boots (the user's file is only read). */
export async function readUserEsp(esp: string, dir: string): Promise<UserEsp> {
  const copy = path.join(dir, 'esp.img');
  await copyForRun(esp, copy).catch((e: Error) => Promise.reject(new SetupError(`copying ${esp}: ${e.message}`)));
  const list = await mtool('mdir', ['-b', '-i', copy, '::/loader/entries']).catch((e: Error) => {
    if (/not found/.test(e.message)) return '';
    throw new UsageError(`--esp ${esp} is not a FAT file system mtools can read: ${e.message}`);
  });
  const entries = list
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.endsWith('.conf'))
    .map((l) => l.replace(/^::\/loader\/entries\//, ''));
  const ukis = (await mtool('mdir', ['-b', '-i', copy, '::/EFI/Linux']).catch(() => ''))
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => /\.efi$/i.test(l))
    .map((l) => l.replace(/^::\/EFI\/Linux\//i, ''));
  const conf = await mtool('mtype', ['-i', copy, '::/loader/loader.conf']).catch(() => '');
  const name = chooseEntry([...entries, ...ukis], loaderDefault(conf), esp);
  const get = (from: string, to: string, what: string): Promise<string> =>
    mtool('mcopy', ['-n', '-i', copy, espPath(from), to]).catch((e: Error) =>
      Promise.reject(new UsageError(`--esp ${esp}: ${what} names ${from}, which the ESP does not hold (${e.message})`)),
    );
  if (!entries.includes(name)) {
    const entry = `EFI/Linux/${name}`;
    const file = path.join(dir, 'esp-uki.efi');
    await get(entry, file, 'the entry list');
    const parts = await splitUki(file, dir).catch((e: Error) => Promise.reject(new UsageError(`--esp ${esp}: ${entry}: ${e.message}`)));
    const cmdline = parts.cmdline ? (await fs.readFile(parts.cmdline, 'utf8')).replace(/\0+$/, '').trim() : '';
    return {
      copy,
      kind: 'uki',
      uki: parts,
      entry,
      entryText: '',
      parsed: { linux: '.linux', initrd: parts.initrd ? ['.initrd'] : [], options: [cmdline], keys: {} },
      kernel: parts.linux,
      initramfs: parts.initrd,
      cmdline,
    };
  }
  const entry = `loader/entries/${name}`;
  const entryText = await mtool('mtype', ['-i', copy, `::/${entry}`]);
  const parsed = parseBlsEntry(entryText);
  if (!parsed.linux)
    throw new UsageError(`--esp ${esp}: ${entry} has no linux line (a type #1 entry names its kernel; 'efi' entries are not probed)`);
  const kernel = path.join(dir, 'esp-linux');
  await get(parsed.linux, kernel, entry);
  let initramfs: string | undefined;
  if (parsed.initrd.length > 0) {
    initramfs = path.join(dir, 'esp-initrd');
    const parts: Buffer[] = [];
    for (const [i, p] of parsed.initrd.entries()) {
      const f = path.join(dir, `esp-initrd-${i}`);
      await get(p, f, entry);
      parts.push(await fs.readFile(f));
      await fs.rm(f);
    }
    await fs.writeFile(initramfs, Buffer.concat(parts));
  }
  return { copy, kind: 'bls', entry, entryText, parsed, kernel, initramfs, cmdline: parsed.options.join(' ').trim() };
}

/** Where rootprobe's segment goes on the copy, as the added initrd line names it. */
export const SEGMENT_ON_ESP = '/rootprobe/rootprobe.img';

/** The entry's text with rootprobe's initrd after the user's and the options replaced (pure). */
export function probedEntryText(text: string, cmdline: string): string {
  if (/[\n\r]/.test(cmdline)) throw new UsageError('the command line cannot hold a newline');
  const lines = text.replace(/\n+$/, '').split('\n');
  const out: string[] = [];
  let lastInitrd = -1;
  let optionsAt = -1;
  for (const l of lines) {
    const key = /^\s*(\S+)/.exec(l)?.[1];
    if (key === 'options') {
      if (optionsAt < 0) {
        optionsAt = out.length;
        out.push(`options ${cmdline}`);
      }
      continue;
    }
    out.push(l);
    if (key === 'initrd') lastInitrd = out.length - 1;
  }
  if (optionsAt < 0) out.push(`options ${cmdline}`);
  const linuxAt = out.findIndex((l) => /^\s*linux\s/.test(l));
  out.splice((lastInitrd >= 0 ? lastInitrd : linuxAt) + 1, 0, `initrd ${SEGMENT_ON_ESP}`);
  return `${out.join('\n')}\n`;
}

/**
 * Puts rootprobe's segment on the copy (mtools; the user's image is not touched): for a type #1
 * entry as one more initrd and the edited entry; for a type #2 entry inside its UKI, rebuilt.
 */
export async function probeUserEsp(u: UserEsp, segment: string, cmdline: string, dir: string, efiArch: string): Promise<string> {
  if (u.kind === 'uki') {
    const initrd = path.join(dir, 'esp-uki-initrd');
    await fs.writeFile(initrd, Buffer.concat([await fs.readFile(u.initramfs!), await fs.readFile(segment)]));
    const built = await buildUki(
      { kernel: u.kernel, initrd, cmdline, efiArch, stub: u.uki!.stub },
      path.join(dir, 'esp-uki-probed.efi'),
      dir,
    );
    await mtool('mcopy', ['-o', '-i', u.copy, built.path, `::/${u.entry}`]);
    return `${u.entry} rebuilt (${built.tool}): its .linux, .initrd + rootprobe's segment, .cmdline + rootprobe's`;
  }
  const text = probedEntryText(u.entryText, cmdline);
  const entryFile = path.join(dir, 'esp-entry.conf');
  await fs.writeFile(entryFile, text);
  await mtool('mmd', ['-D', 's', '-i', u.copy, '::/rootprobe']).catch(() => undefined);
  await mtool('mcopy', ['-o', '-i', u.copy, segment, espPath(SEGMENT_ON_ESP)]);
  await mtool('mcopy', ['-o', '-i', u.copy, entryFile, `::/${u.entry}`]);
  const back = await mtool('mtype', ['-i', u.copy, `::/${u.entry}`]);
  if (back !== text) throw new SetupError(`the entry ${u.entry} on the ESP copy ${u.copy} did not read back as written`);
  return `${u.entry}, linux ${u.parsed.linux}, initrd ${[...u.parsed.initrd, `${SEGMENT_ON_ESP} (rootprobe's)`].join(' + ')}, options ${JSON.stringify(u.cmdline)} + rootprobe's`;
}
