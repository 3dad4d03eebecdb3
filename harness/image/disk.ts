/**
 * ext4 and raw disk images, built without root on the host and cached by content.
 *
 * buildExt4: the tree is written into a temporary folder (files, folders, symlinks, hard
 * links, with fixed times), `mke2fs -d` fills the image from it, and a `debugfs -w` script
 * adds what a user without root cannot make on the host: device nodes, fifos, root ownership
 * and any mode the host changed. UUID and directory hash seed come from the content, times
 * from SOURCE_DATE_EPOCH (E2FSPROGS_FAKE_TIME for mke2fs and debugfs).
 *
 * Cached images are shared: copy one with copyForRun() before a guest writes to it.
 */
import { constants, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { cachedEntry, contentHash, fileMemo } from '../cache.ts';
import { DefinitionError, SetupError, UsageError } from '../errors.ts';
import { requireTool } from '../host.ts';
import { runGuarded } from '../lifecycle.ts';
import { foldMessage } from '../report/fold.ts';
import type { ImageTree, TreeEntry } from './tree.ts';

/** Bump when the bytes written for the same tree and options change. */
const DISK_FORMAT = 'ext4-2';
export const DISK_FILE = 'disk.img';

export interface Ext4Options {
  sizeMiB: number;
  /** Volume label, up to 16 bytes. */
  label?: string;
  /** Filesystem UUID; default: derived from the content. */
  uuid?: string;
  /** mke2fs -t: ext4 (default), or ext2 for an old-style initrd image. */
  fsType?: 'ext4' | 'ext2';
}

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(cmd: string, args: string[], env?: NodeJS.ProcessEnv): Promise<RunResult> {
  // mke2fs, debugfs, e2fsck: in a process group ended with rootprobe (lifecycle.ts).
  let r;
  try {
    r = await runGuarded(cmd, args, { env: { ...process.env, ...env } });
  } catch (e) {
    throw new SetupError(`cannot run ${cmd}: ${(e as Error).message}`);
  }
  return { code: r.code ?? 1, stdout: r.stdout.toString('utf8'), stderr: r.stderr.toString('utf8') };
}

/** Seconds since the epoch used for every time stamp in built images. */
export function imageEpoch(): number {
  const v = Number(process.env.SOURCE_DATE_EPOCH);
  return Number.isInteger(v) && v > 0 ? v : 1;
}

/** A UUID (version 4 layout) derived from a string. */
export function uuidFrom(seed: string): string {
  const h = contentHash('uuid', seed);
  const b = Buffer.from(h, 'hex');
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const x = b.toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function checkSize(sizeMiB: number, who: string): void {
  if (!Number.isInteger(sizeMiB) || sizeMiB < 2 || sizeMiB > 1 << 20) {
    throw new UsageError(`${who}: sizeMiB must be a whole number of MiB from 2 to 1048576, not ${sizeMiB}.`);
  }
}

let mke2fsVersion: Promise<string> | undefined;
function e2fsprogsVersion(mke2fs: string): Promise<string> {
  // Its first line is the binary's own version: remembered by the binary's identity, which
  // saves every warm run a spawn of mke2fs (8 ms) before QEMU starts.
  mke2fsVersion ??= fileMemo('mke2fs-version', mke2fs, () => run(mke2fs, ['-V']).then((r) => (r.stderr + r.stdout).split('\n')[0].trim()));
  return mke2fsVersion;
}

/** debugfs quotes: a path in double quotes; paths with quotes or newlines cannot be written. */
function q(p: string): string {
  if (/["\n\r\\]/.test(p)) {
    throw new UsageError(`the path ${JSON.stringify(p)} cannot go into an ext4 image here (it holds a quote, backslash or newline).`);
  }
  return `"${p}"`;
}

const TYPE_BITS = { dir: 0o040000, file: 0o100000, symlink: 0o120000, char: 0o020000, block: 0o060000, fifo: 0o010000 };

interface Geometry {
  blockSize: number;
  freeBlocks: number;
  freeInodes: number;
  blockCount: number;
}

function parseDumpe2fs(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z][A-Za-z0-9 #_/()-]*?):\s*(.*)$/.exec(line);
    if (m && !(m[1] in out)) out[m[1]] = m[2].trim();
  }
  return out;
}

/** Blocks and inodes a tree needs in a filesystem of `bs`-byte blocks (an estimate, a little high). */
async function treeNeeds(entries: TreeEntry[], bs: number): Promise<{ blocks: number; inodes: number; bytes: number }> {
  let blocks = 0;
  let inodes = 0;
  let bytes = 0;
  const dirBytes = new Map<string, number>();
  for (const e of entries) {
    const parent = path.posix.dirname(e.path);
    dirBytes.set(parent, (dirBytes.get(parent) ?? 24) + 8 + Math.ceil(path.posix.basename(e.path).length / 4) * 4);
    if (e.type === 'hardlink') continue;
    inodes++;
    if (e.type === 'dir') dirBytes.set(e.path, dirBytes.get(e.path) ?? 24);
    if (e.type === 'symlink' && e.target.length >= 60) blocks++;
    if (e.type === 'file') {
      // A sparse host file (a tar import's spill) takes its allocated blocks, not its size: mke2fs -d keeps holes.
      let size: number;
      if (e.source.kind === 'data') size = e.source.data.length;
      else {
        const st = await fs.stat(e.source.hostPath);
        size = Math.min(st.size, st.blocks * 512);
      }
      bytes += size;
      const b = Math.ceil(size / bs);
      // Four extents (128 MiB each at 4 KiB blocks) fit in the inode; beyond, index blocks.
      blocks += b + (b > 4 * 32768 ? Math.ceil(b / 32768 / 340) + 1 : 0);
    }
  }
  for (const n of dirBytes.values()) blocks += Math.max(1, Math.ceil(n / (bs - 12)));
  return { blocks: Math.ceil(blocks * 1.01) + 8, inodes, bytes };
}

function mib(n: number): string {
  return `${(n / (1 << 20)).toFixed(n < 10 << 20 ? 2 : 1)} MiB`;
}

async function mkfs(
  img: string,
  sizeMiB: number,
  label: string | undefined,
  uuid: string,
  hashSeed: string,
  dir: string | undefined,
  fsType: 'ext4' | 'ext2' = 'ext4',
): Promise<RunResult> {
  const mke2fs = requireTool('mke2fs', 'to build ext4 disk images');
  const fh = await fs.open(img, 'w');
  await fh.truncate(sizeMiB * 1024 * 1024);
  await fh.close();
  const args = ['-q', '-t', fsType, '-U', uuid, '-E', `root_owner=0:0,hash_seed=${hashSeed}`, '-F'];
  if (label !== undefined) args.push('-L', label);
  if (dir) args.push('-d', dir);
  args.push(img, `${sizeMiB}M`);
  const epoch = String(imageEpoch());
  return run(mke2fs, args, { E2FSPROGS_FAKE_TIME: epoch, SOURCE_DATE_EPOCH: epoch });
}

/** An empty filesystem of the same options, to learn how much room the tree gets. */
async function probeGeometry(
  tmp: string,
  sizeMiB: number,
  label: string | undefined,
  uuid: string,
  fsType?: 'ext4' | 'ext2',
): Promise<Geometry> {
  const img = path.join(tmp, 'probe.img');
  try {
    const r = await mkfs(img, sizeMiB, label, uuid, uuid, undefined, fsType);
    if (r.code !== 0) {
      throw new DefinitionError(`mke2fs cannot make an ext4 filesystem of ${sizeMiB} MiB: ${foldMessage((r.stderr || r.stdout).trim())}`);
    }
    const d = await run(requireTool('dumpe2fs'), ['-h', img]);
    const f = parseDumpe2fs(d.stdout);
    return {
      blockSize: Number(f['Block size']),
      freeBlocks: Number(f['Free blocks']),
      freeInodes: Number(f['Free inodes']),
      blockCount: Number(f['Block count']),
    };
  } finally {
    await fs.rm(img, { force: true });
  }
}

/** Writes the tree under `root`; returns the debugfs commands for what could not be written. */
async function materialise(tree: ImageTree, entries: TreeEntry[], root: string): Promise<string[]> {
  const epoch = imageEpoch();
  const cmds: string[] = [];
  const host = (p: string): string => path.join(root, p);
  const nodes: TreeEntry[] = [];
  for (const e of entries) {
    q(e.path);
    switch (e.type) {
      case 'dir':
        await fs.mkdir(host(e.path), { recursive: true });
        break;
      case 'file':
        if (e.source.kind === 'data') await fs.writeFile(host(e.path), e.source.data);
        else {
          const src = e.source.hostPath;
          await fs.copyFile(src, host(e.path), constants.COPYFILE_FICLONE).catch((err: Error) => {
            throw new SetupError(`image "${tree.name}": cannot copy ${src} to ${e.path}: ${err.message}`);
          });
        }
        await fs.chmod(host(e.path), e.mode);
        break;
      case 'symlink':
        await fs.symlink(e.target, host(e.path));
        break;
      case 'hardlink':
        break;
      default:
        nodes.push(e);
    }
  }
  for (const e of entries) if (e.type === 'hardlink') await fs.link(host(e.target), host(e.path));
  // Times and folder modes last, deepest first, so writing into folders is still allowed.
  const t = new Date(epoch * 1000);
  for (const e of [...entries].reverse()) {
    if (e.type === 'hardlink' || e.type === 'char' || e.type === 'block' || e.type === 'fifo') continue;
    if (e.type === 'dir') await fs.chmod(host(e.path), e.mode);
    await fs.lutimes(host(e.path), t, t);
  }
  // What the host did not keep: owners and modes (umask, setgid rules), checked by lstat.
  for (const e of entries) {
    if (e.type === 'hardlink' || e.type === 'char' || e.type === 'block' || e.type === 'fifo') continue;
    const st = await fs.lstat(host(e.path));
    if (e.type !== 'symlink' && (st.mode & 0o7777) !== e.mode) {
      cmds.push(`set_inode_field ${q(e.path)} mode 0${(TYPE_BITS[e.type] | e.mode).toString(8)}`);
    }
    // mke2fs -d copies the host ctime, which no user can set: pin it to the image epoch.
    cmds.push(`set_inode_field ${q(e.path)} ctime @${epoch}`);
    if (st.uid !== e.uid) cmds.push(`set_inode_field ${q(e.path)} uid ${e.uid}`);
    if (st.gid !== e.gid) cmds.push(`set_inode_field ${q(e.path)} gid ${e.gid}`);
  }
  // Device nodes and fifos: debugfs mknod makes a name in its current folder.
  for (const e of nodes) {
    if (e.type !== 'char' && e.type !== 'block' && e.type !== 'fifo') continue;
    const dir = path.posix.dirname(e.path);
    const name = path.posix.basename(e.path);
    cmds.push(`cd ${q(dir)}`);
    cmds.push(e.type === 'fifo' ? `mknod ${q(name)} p` : `mknod ${q(name)} ${e.type === 'char' ? 'c' : 'b'} ${e.major} ${e.minor}`);
    cmds.push('cd "/"');
    cmds.push(`set_inode_field ${q(e.path)} mode 0${(TYPE_BITS[e.type] | e.mode).toString(8)}`);
    cmds.push(`set_inode_field ${q(e.path)} uid ${e.uid}`);
    cmds.push(`set_inode_field ${q(e.path)} gid ${e.gid}`);
  }
  const r = await tree.root();
  cmds.push(`set_inode_field "/" mode 0${(TYPE_BITS.dir | r.mode).toString(8)}`);
  if (r.uid !== 0) cmds.push(`set_inode_field "/" uid ${r.uid}`);
  if (r.gid !== 0) cmds.push(`set_inode_field "/" gid ${r.gid}`);
  return cmds;
}

/** Runs a debugfs -w script; any message other than the banner is an error. */
async function debugfsScript(img: string, cmds: string[], scriptPath: string): Promise<void> {
  await fs.writeFile(scriptPath, `${cmds.join('\n')}\n`);
  try {
    const epoch = String(imageEpoch());
    const r = await run(requireTool('debugfs', 'to add device nodes and owners to disk images'), ['-w', '-f', scriptPath, img], {
      E2FSPROGS_FAKE_TIME: epoch,
      SOURCE_DATE_EPOCH: epoch,
    });
    const errors = r.stderr.split('\n').filter((l) => l.trim() && !/^debugfs [0-9.]+ \(/.test(l));
    if (r.code !== 0 || errors.length) {
      throw new SetupError(
        `debugfs could not finish the disk image ${img}: ${errors.length ? foldMessage(errors.join('\n'), { maxLines: 20, maxBytes: 2048 }) : `exit code ${r.code}`}`,
      );
    }
  } finally {
    await fs.rm(scriptPath, { force: true });
  }
}

/** The cache key of an ext4 image of `tree` with these options. */
export async function ext4Key(tree: ImageTree, opts: Ext4Options): Promise<string> {
  const version = await e2fsprogsVersion(requireTool('mke2fs', 'to build ext4 disk images'));
  const fp = await tree.fingerprint();
  const parts: unknown[] = [DISK_FORMAT, fp, opts.sizeMiB, opts.label ?? null, opts.uuid ?? null, imageEpoch(), version];
  if (opts.fsType === 'ext2') return `ext2-${contentHash(...parts, 'ext2')}`;
  return `ext4-${contentHash(...parts)}`;
}

/** The path of a cached ext4 image holding `tree` (do not let a guest write to it: copyForRun). */
export async function buildExt4(tree: ImageTree, opts: Ext4Options): Promise<string> {
  checkSize(opts.sizeMiB, `ext4 image "${tree.name}"`);
  if (opts.label !== undefined && Buffer.byteLength(opts.label) > 16) {
    throw new UsageError(`ext4 image "${tree.name}": label ${JSON.stringify(opts.label)} is longer than 16 bytes.`);
  }
  if (opts.uuid !== undefined && !UUID_RE.test(opts.uuid)) {
    throw new UsageError(
      `ext4 image "${tree.name}": uuid ${JSON.stringify(opts.uuid)} is not of the form 01234567-89ab-cdef-0123-456789abcdef.`,
    );
  }
  await tree.validate();
  const key = await ext4Key(tree, opts);
  const uuid = opts.uuid ?? uuidFrom(key);
  const hashSeed = uuidFrom(`${key}/hash`);
  const dir = await cachedEntry('images', key, async (tmp) => {
    const entries = await tree.list();
    const geo = await probeGeometry(tmp, opts.sizeMiB, opts.label, uuid, opts.fsType);
    const need = await treeNeeds(entries, geo.blockSize);
    if (need.blocks > geo.freeBlocks || need.inodes > geo.freeInodes) {
      throw new DefinitionError(
        `the tree of image "${tree.name}" does not fit in its ${opts.sizeMiB} MiB ext4 disk: it needs about ` +
          `${mib(need.blocks * geo.blockSize)} (${mib(need.bytes)} of file content, ${need.inodes} inodes), and an empty ` +
          `filesystem of that size has ${mib(geo.freeBlocks * geo.blockSize)} and ${geo.freeInodes} inodes free. ` +
          `Give the disk a larger sizeMiB.`,
      );
    }
    const root = path.join(tmp, 'tree');
    await fs.mkdir(root);
    try {
      const cmds = await materialise(tree, entries, root);
      const img = path.join(tmp, DISK_FILE);
      const r = await mkfs(img, opts.sizeMiB, opts.label, uuid, hashSeed, root, opts.fsType);
      if (r.code !== 0) {
        const out = foldMessage((r.stderr || r.stdout).trim(), { maxLines: 20, maxBytes: 2048 });
        if (/no space|could not allocate|not enough space|inode/i.test(out)) {
          throw new DefinitionError(
            `the tree of image "${tree.name}" (${mib(need.bytes)} of file content, ${need.inodes} inodes) does not fit ` +
              `in its ${opts.sizeMiB} MiB ext4 disk; mke2fs said: ${out}. Give the disk a larger sizeMiB.`,
          );
        }
        throw new SetupError(`mke2fs failed to build the ext4 image of "${tree.name}": ${out}`);
      }
      await debugfsScript(img, cmds, path.join(tmp, 'debugfs.cmds'));
    } finally {
      await fs.chmod(root, 0o700).catch(() => {});
      await rmTree(root);
    }
  });
  return path.join(dir, DISK_FILE);
}

/** rm -rf that also gets through folders the tree made read-only. */
async function rmTree(root: string): Promise<void> {
  try {
    await fs.rm(root, { recursive: true, force: true });
  } catch {
    const walk = async (d: string): Promise<void> => {
      await fs.chmod(d, 0o700).catch(() => {});
      for (const e of await fs.readdir(d, { withFileTypes: true }).catch(() => [])) {
        if (e.isDirectory()) await walk(path.join(d, e.name));
      }
    };
    await walk(root);
    await fs.rm(root, { recursive: true, force: true });
  }
}

/** The path of a cached all-zero (sparse) disk image of `sizeMiB`. */
export async function rawImage(opts: { sizeMiB: number }): Promise<string> {
  checkSize(opts.sizeMiB, 'raw image');
  const dir = await cachedEntry('images', `raw-${opts.sizeMiB}M`, async (tmp) => {
    const fh = await fs.open(path.join(tmp, DISK_FILE), 'w');
    await fh.truncate(opts.sizeMiB * 1024 * 1024);
    await fh.close();
  });
  return path.join(dir, DISK_FILE);
}

/**
 * Copies a (cached) image for one run: a reflink where the filesystem can, else a sparse copy
 * (GNU cp --sparse=always), else a plain copy. The copy is writable.
 */
export async function copyForRun(cachedPath: string, destPath: string): Promise<void> {
  await fs.rm(destPath, { force: true });
  try {
    await fs.copyFile(cachedPath, destPath, constants.COPYFILE_FICLONE_FORCE);
  } catch {
    const r = await run('cp', ['--sparse=always', '--reflink=auto', '--', cachedPath, destPath]).catch(() => undefined);
    if (r?.code !== 0) await fs.copyFile(cachedPath, destPath);
  }
  await fs.chmod(destPath, 0o644);
}

export interface ImageInfo {
  features: string[];
  needsRecovery: boolean;
  /** "clean", "not clean", "clean with errors" ... */
  state: string;
  clean: boolean;
  label: string;
  uuid: string;
  blockSize: number;
  blockCount: number;
  freeBlocks: number;
  mountCount: number;
  /** All `dumpe2fs -h` fields by name. */
  fields: Record<string, string>;
}

/** The superblock facts of an ext2/3/4 image (`dumpe2fs -h`). */
export async function imageInfo(imagePath: string): Promise<ImageInfo> {
  const r = await run(requireTool('dumpe2fs', 'to read disk image features'), ['-h', imagePath]);
  if (r.code !== 0) {
    throw new SetupError(
      `dumpe2fs cannot read ${imagePath}: ${foldMessage(r.stderr.trim()) || `exit code ${r.code}`}. Is it an ext2/3/4 image?`,
    );
  }
  const f = parseDumpe2fs(r.stdout);
  const features = (f['Filesystem features'] ?? '').split(/\s+/).filter(Boolean);
  const state = f['Filesystem state'] ?? '';
  const label = f['Filesystem volume name'] ?? '';
  return {
    features,
    needsRecovery: features.includes('needs_recovery'),
    state,
    clean: state === 'clean' && !features.includes('needs_recovery'),
    label: label === '<none>' ? '' : label,
    uuid: f['Filesystem UUID'] ?? '',
    blockSize: Number(f['Block size']),
    blockCount: Number(f['Block count']),
    freeBlocks: Number(f['Free blocks']),
    mountCount: Number(f['Mount count']),
    fields: f,
  };
}

/** `e2fsck -fn`: a forced, read-only check. clean = exit code 0. */
export async function fsck(imagePath: string): Promise<{ clean: boolean; exitCode: number; output: string }> {
  const r = await run(requireTool('e2fsck', 'to check disk images'), ['-fn', imagePath]);
  const output = `${r.stdout}${r.stderr}`;
  if (r.code & 8) throw new SetupError(`e2fsck could not check ${imagePath}: ${foldMessage(output.trim())}`);
  return { clean: r.code === 0, exitCode: r.code, output };
}
