/**
 * External mode, image side: read (never rewrite) someone else's initramfs to learn how its
 * flow can be probed, and build the one cpio segment rootprobe appends to it.
 *
 * The given file is only read: its segments (plain, gzip, and through the host's zstd/xz the
 * other common compressions; early microcode first is fine) are listed to find
 *  - which generator made it: dracut (a hooks/pre-pivot folder) or initramfs-tools
 *    (scripts/init-bottom/ORDER), or neither;
 *  - whether it already has a /.rootprobe (then it is refused: it is no pristine archive).
 * Our segment is appended after 4-byte alignment; the kernel unpacks the concatenation in
 * order, and a later entry replaces an earlier one of the same name. It holds the probe
 * toolkit in /.rootprobe with init.sh (the kernel runs it by `rdinit=/.rootprobe/init`, it
 * starts the agent and execs the distro's own init), agent.sh, and one hook for the stage
 * before the switch: for dracut a new file in hooks/pre-pivot; for initramfs-tools a
 * replacement ORDER for scripts/init-bottom (the original lines, then ours just before the
 * param.conf line: init-bottom is the last step before the switch); for anything else the
 * wrapper itself probes `initramfs`, before the distro's init has run at all.
 */
import * as zlib from 'node:zlib';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readNewc, type CpioReadEntry } from '../cpio/index.ts';
import { UsageError } from '../errors.ts';
import { requireTool } from '../host.ts';
import { runGuarded } from '../lifecycle.ts';
import { ImageTree } from '../image/tree.ts';
import { probeToolkit, TOOLKIT_DIR } from '../guest/toolkit.ts';
import type { ArchSpec } from '../arch/index.ts';
import { shellQuote } from '../quote.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
export const GUEST_DIR = path.join(here, 'guest');
export const RDINIT = `${TOOLKIT_DIR}/init`;

export type Generator = 'dracut' | 'initramfs-tools' | 'tiny-initramfs' | 'unknown';

/**
 * Generators whose archive has no hook point rootprobe can add a file to: the wrapper probes
 * `initramfs` itself, before their init has run. tiny-initramfs is one static C program as
 * /init (beside its modules, a `modules` list and an empty /target where it mounts the root):
 * nothing in it runs anything else before it switches.
 */
export const NO_HOOK_POINT: ReadonlySet<Generator> = new Set(['tiny-initramfs', 'unknown']);

export interface InitramfsInfo {
  file: string;
  generator: Generator;
  /** Number of cpio segments found. */
  segments: number;
  /** The compressions seen, in order ("none", "gzip", "zstd", ...). */
  compressions: string[];
  /** What /init is in the archive (the last entry of that name wins, as in the kernel). */
  init?: { type: CpioReadEntry['type']; target?: string };
  /** dracut: the hooks folder in the archive (e.g. "usr/lib/dracut/hooks"). */
  hookDir?: string;
  /** initramfs-tools: the archive's scripts/init-bottom/ORDER. */
  initBottomOrder?: string;
  /** Where the `initramfs` stage is taken: the generator's hook point, or rootprobe's wrapper. */
  hookPoint: string;
  /** Every path in the archive (later segments win). */
  paths: Set<string>;
}

const MAGIC: Array<[string, number[], string[]]> = [
  ['zstd', [0x28, 0xb5, 0x2f, 0xfd], ['zstd', '-dcq']],
  ['xz', [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], ['xz', '-dcq']],
  ['lzma', [0x5d, 0x00, 0x00], ['xz', '-dcq', '--format=lzma']],
  ['bzip2', [0x42, 0x5a, 0x68], ['bzip2', '-dcq']],
  ['lz4', [0x02, 0x21, 0x4c, 0x18], ['lz4', '-dcq']],
];

/**
 * Decompresses data with a host tool (through lifecycle.runGuarded, so a signal to rootprobe
 * ends it); trailing garbage after the stream is tolerated if output came out.
 */
async function hostDecompress(data: Buffer, argv: string[], what: string): Promise<Buffer> {
  const bin = requireTool(argv[0], `to read the ${what}`);
  const r = await runGuarded(bin, argv.slice(1), { input: data, maxBuffer: 1 << 30 }).catch((e: Error) => {
    throw new UsageError(`${what}: ${argv[0]} could not decompress it: ${e.message}`);
  });
  if (r.code === 0 || r.stdout.length > 0) return r.stdout;
  const said = r.stderr.toString('utf8').trim();
  throw new UsageError(
    `${what}: ${argv[0]} could not decompress it: ${said || (r.signal ? `killed by ${r.signal}` : `exit code ${r.code}`)}`,
  );
}

/**
 * All entries of an initramfs file: concatenated newc segments, each plain, gzip, zstd, xz,
 * lzma, bzip2 or lz4 (the last ones through host tools). Read only.
 */
export async function readInitramfs(file: string): Promise<{ entries: CpioReadEntry[]; segments: number; compressions: string[] }> {
  let data: Buffer;
  try {
    data = await fs.readFile(file);
  } catch (e) {
    throw new UsageError(`cannot read the initramfs ${file}: ${(e as Error).message}`);
  }
  const entries: CpioReadEntry[] = [];
  const compressions: string[] = [];
  const rest = data;
  for (;;) {
    try {
      entries.push(...(await readNewc(rest)));
      compressions.push(...segmentKinds(rest));
      break;
    } catch (e) {
      const m = /The segment at offset (\d+) is (\S+)-compressed/.exec((e as Error).message);
      if (!m) throw new UsageError(`${file} is not an initramfs rootprobe can read: ${(e as Error).message}`);
      const at = Number(m[1]);
      if (at > 0) {
        entries.push(...(await readNewc(rest.subarray(0, at))));
        compressions.push(...segmentKinds(rest.subarray(0, at)));
      }
      const kind = MAGIC.find(([, magic]) => magic.every((b, i) => rest[at + i] === b));
      if (!kind) throw new UsageError(`${file}: cannot decompress the segment at offset ${at} (${m[2]}).`);
      const plain = await hostDecompress(rest.subarray(at), kind[2], `${kind[0]} segment of ${file}`);
      entries.push(...(await readNewc(plain)));
      compressions.push(kind[0]);
      // A compressed segment is, in practice, the last one (it runs to the end of the file).
      break;
    }
  }
  return { entries, segments: compressions.length, compressions };
}

/** The compression of each segment in a buffer of plain and gzip newc segments, in order. */
function segmentKinds(buf: Buffer): string[] {
  const out: string[] = [];
  let o = 0;
  while (o < buf.length) {
    if (buf[o] === 0) {
      o++;
      continue;
    }
    if (buf[o] === 0x1f && buf[o + 1] === 0x8b) {
      const r = zlib.gunzipSync(buf.subarray(o), { info: true }) as unknown as { engine: zlib.Gunzip };
      out.push('gzip');
      o += r.engine.bytesWritten;
      continue;
    }
    const t = buf.indexOf('TRAILER!!!\0', o, 'latin1');
    out.push('none');
    if (t < 0) break;
    o = (t + 11 + 3) & ~3;
  }
  return out;
}

/** What rootprobe needs to know about an initramfs, read from it without changing it. */
export async function inspectInitramfs(file: string): Promise<InitramfsInfo> {
  const { entries, segments, compressions } = await readInitramfs(file);
  const last = new Map<string, CpioReadEntry>();
  for (const e of entries) last.set(e.path, e);
  const paths = new Set(last.keys());
  if ([...paths].some((p) => /^\.rootprobe(-agent)?(\/|$)/.test(p))) {
    throw new UsageError(`${file} already has a /.rootprobe folder: give the initramfs as the generator made it.`);
  }
  const info: InitramfsInfo = { file, generator: 'unknown', segments, compressions, paths, hookPoint: '' };
  const init = last.get('init');
  if (init) info.init = { type: init.type, target: init.target };
  const prePivot = [...paths].find((p) => /(^|\/)dracut\/hooks\/pre-pivot$/.test(p) && last.get(p)?.type === 'dir');
  if (prePivot) {
    info.generator = 'dracut';
    info.hookDir = prePivot.replace(/\/pre-pivot$/, '');
  } else {
    const order = last.get('scripts/init-bottom/ORDER');
    if (order && order.type === 'file') {
      info.generator = 'initramfs-tools';
      info.initBottomOrder = order.data.toString('utf8');
    } else if (isTinyInitramfs(last)) info.generator = 'tiny-initramfs';
  }
  info.hookPoint =
    info.generator === 'dracut'
      ? `${info.hookDir}/pre-pivot (a file of rootprobe's)`
      : info.generator === 'initramfs-tools'
        ? "scripts/init-bottom/ORDER (rootprobe's line before param.conf)"
        : `none in the archive: rootprobe's wrapper probes before ${info.init?.type === 'file' ? 'its /init' : 'the init'} runs`;
  return info;
}

/** tiny-initramfs's layout (mktirfs): /init an ELF program, /target, a `modules` list, no shell. */
function isTinyInitramfs(last: Map<string, CpioReadEntry>): boolean {
  const init = last.get('init');
  return (
    init?.type === 'file' &&
    init.data.subarray(0, 4).toString('latin1') === '\x7fELF' &&
    last.get('target')?.type === 'dir' &&
    !last.has('bin') &&
    !last.has('usr')
  );
}

export interface SegmentConfig {
  /** The init the wrapper execs (the user's rdinit=, else /init). */
  init: string;
  /** 'poweroff': once booted, the agent asks the distro to power off; 'none': the guest decides. */
  end: 'poweroff' | 'none';
  /** Seconds the agent waits for systemd to finish booting before it asks for the power-off. */
  bootWaitSec: number;
  /** The guest's architecture (the toolkit's programs are its); default x86-64. */
  arch?: ArchSpec;
  /** Start the two stand-in storage daemons from the initramfs (init.sh): see StorageDaemons. */
  daemons?: StorageDaemons;
}

/**
 * `marked`: one daemon's argv[0] is `@rootprobe-storaged`, systemd's mark for a root storage
 * daemon; `unmarked`: the same daemon without the `@` (the broken twin). Either way a second
 * one, `rootprobe-storaged-plain`, shows what happens to any other process of the initramfs.
 */
export type StorageDaemons = 'marked' | 'unmarked';

/** The `initramfs-tools` ORDER with our hook: just before the param.conf line, or at the end. */
export function orderWithHook(order: string, hookLine: string): string {
  const lines = order.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const at = lines.findIndex((l) => l.includes('/conf/param.conf'));
  if (at < 0) lines.push(hookLine);
  else lines.splice(at, 0, hookLine);
  return `${lines.join('\n')}\n`;
}

/** The segment appended to the user's initramfs, as an ImageTree. */
export async function externalSegment(info: InitramfsInfo, cfg: SegmentConfig): Promise<ImageTree> {
  const t = new ImageTree('rootprobe external segment', { arch: cfg.arch });
  t.merge(await probeToolkit());
  const R = TOOLKIT_DIR;
  t.script(`${R}/init`, path.join(GUEST_DIR, 'init.sh'));
  t.script(`${R}/agent`, path.join(GUEST_DIR, 'agent.sh'));
  t.copy(`${R}/hook-initramfs.sh`, path.join(GUEST_DIR, 'hook-initramfs.sh'), 0o755);
  t.copy(`${R}/hook-shutdown.sh`, path.join(GUEST_DIR, 'hook-shutdown.sh'), 0o644);
  t.dir('/.rootprobe-agent', 0o700);
  const conf = [
    `RP_INIT=${shellQuote(cfg.init)}`,
    `RP_GENERATOR=${info.generator}`,
    `RP_PROBE_IN_WRAPPER=${NO_HOOK_POINT.has(info.generator) ? 1 : 0}`,
    `RP_END=${cfg.end}`,
    `RP_BOOT_WAIT=${Math.max(1, Math.round(cfg.bootWaitSec))}`,
    `RP_SHUTDOWN=${info.generator === 'dracut' ? 1 : 0}`,
    `RP_HOOKDIR=${shellQuote(info.hookDir ?? 'usr/lib/dracut/hooks')}`,
    `RP_DAEMONS=${cfg.daemons ?? ''}`,
    '',
  ].join('\n');
  t.file(`${R}/external.conf`, conf, 0o644);
  if (info.generator === 'dracut') {
    if (cfg.end === 'poweroff') t.file(`${R}/want-shutdown`, '', 0o644);
    t.copy(`/${info.hookDir}/pre-pivot/99-rootprobe.sh`, path.join(GUEST_DIR, 'hook-initramfs.sh'), 0o755);
  } else if (info.generator === 'initramfs-tools') {
    t.file('/scripts/init-bottom/ORDER', orderWithHook(info.initBottomOrder ?? '', `${R}/hook-initramfs.sh "$@"`), 0o644);
  }
  return t;
}
