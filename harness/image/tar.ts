/**
 * Root filesystems from tar archives: a distro's rootfs tarball or `docker export` output,
 * streamed with tar-stream into an ImageTree (which then becomes an ext4 disk image with
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
 * File contents are held in memory until the image is built (a minbase Debian root is about
 * 200 MB).
 */
import { createReadStream } from 'node:fs';
import { spawn } from 'node:child_process';
import { PassThrough, Readable } from 'node:stream';
import * as zlib from 'node:zlib';
import * as tar from 'tar-stream';
import { UsageError } from '../errors.ts';
import { requireTool } from '../host.ts';
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
  const child = spawn(bin, ['-dc'], { stdio: ['pipe', 'pipe', 'pipe'] });
  const out = new PassThrough();
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  src.on('error', (e) => out.destroy(e));
  child.stdin.on('error', () => {}); // an early exit shows up as the exit code
  src.pipe(child.stdin);
  child.stdout.pipe(out, { end: false });
  child.on('close', (code) => {
    if (code === 0) out.end();
    else out.destroy(new UsageError(`${archive}: ${tool} -dc failed (exit ${code}): ${err.trim()}`));
  });
  return out;
}

async function readAll(s: AsyncIterable<unknown>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(Buffer.from(c as Uint8Array));
  return Buffer.concat(chunks);
}

/**
 * Adds every entry of a tar archive (a file path or a stream of tar bytes, compressed or not)
 * to `tree`. Resolves when the whole archive is read; a bad entry is a UsageError naming it.
 */
export async function importTar(
  tree: ImageTree,
  source: string | Readable,
  opts: TarImportOptions = {},
): Promise<TarImportSummary> {
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
  const extract = tar.extract();
  const done = (async () => {
    for await (const entry of extract) {
      const h = entry.header;
      const p = tarEntryPath(h.name, archive, at);
      const mode = (h.mode ?? 0o644) & 0o7777;
      const owned = (): void => {
        if ((h.uid ?? 0) !== 0 || (h.gid ?? 0) !== 0) tree.chown(p, h.uid ?? 0, h.gid ?? 0);
      };
      sum.entries++;
      switch (h.type) {
        case 'file':
        case 'contiguous-file': {
          const data = await readAll(entry);
          if (p === at) throw new UsageError(`${archive}: entry ${JSON.stringify(h.name)} is a file where the root folder is.`);
          tree.file(p, data, mode);
          owned();
          sum.files++;
          sum.bytes += data.length;
          break;
        }
        case 'directory':
          entry.resume();
          tree.dir(p, mode);
          owned();
          sum.dirs++;
          break;
        case 'symlink':
          entry.resume();
          if (!h.linkname) throw new UsageError(`${archive}: symlink ${JSON.stringify(h.name)} has an empty target.`);
          tree.symlink(p, h.linkname);
          owned();
          sum.symlinks++;
          break;
        case 'link': {
          entry.resume();
          const target = h.linkname ?? '';
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
        case 'character-device':
        case 'block-device':
          entry.resume();
          tree.device(p, h.type === 'character-device' ? 'char' : 'block', h.devmajor ?? 0, h.devminor ?? 0, mode);
          owned();
          sum.devices++;
          break;
        case 'fifo':
          entry.resume();
          tree.fifo(p, mode);
          owned();
          sum.fifos++;
          break;
        default:
          entry.resume();
          throw new UsageError(`${archive}: entry ${JSON.stringify(h.name)} has tar type ${JSON.stringify(h.type)}, which rootprobe cannot import.`);
      }
      seen.add(p);
    }
  })();
  const fed = new Promise<void>((resolve, reject) => {
    plain.on('error', (e) => {
      extract.destroy(e);
      reject(e);
    });
    plain.pipe(extract).on('finish', resolve).on('error', reject);
  });
  try {
    await Promise.all([done, fed]);
  } catch (e) {
    plain.unpipe(extract);
    plain.destroy();
    raw.destroy();
    if (e instanceof UsageError) throw e;
    throw new UsageError(`${archive}: not a readable tar archive: ${(e as Error).message}`);
  }
  if (sum.entries === 0) throw new UsageError(`${archive}: the tar archive has no entries.`);
  return sum;
}
