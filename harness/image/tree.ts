/**
 * ImageTree: an in-memory description of a file tree, used alike for initramfs segments and
 * for disk images. Building the description does no I/O; host files are read when the tree
 * is built, and everything that needs the host (busybox, shared libraries, kernel modules,
 * copied files) is checked by `validate()`, before anything boots.
 *
 * The calls are recorded in order and replayed when the tree is resolved, so a later call
 * wins over an earlier one for the same path. Two kinds of entries never replace anything:
 * busybox applet links and the parent folders made implicitly; any explicit call replaces
 * them (so `busybox()` then `file('/sbin/init', …)` gives the file, in either order).
 */
import { createHash } from 'node:crypto';
import { promises as fs, statSync } from 'node:fs';
import { runGuarded } from '../lifecycle.ts';
import * as path from 'node:path';
import { archivePath, type CpioEntry } from '../cpio/index.ts';
import { moduleClosure, readModule, type ModuleFile } from '../../kernels/modules.ts';
import { SetupError, UsageError } from '../errors.ts';
import { fileMemo, sha256File } from '../cache.ts';
import { isStatic, readElf } from './elf.ts';
import { neededFiles } from './libs.ts';
import { defaultArch, type ArchSpec } from '../arch/index.ts';
import { foreignNeededFiles, guestBusybox, isNative } from '../guest/userland.ts';

/** A program copied into a guest of another architecture is a mistake: say so before it boots. */
async function checkMachine(host: string, arch: ArchSpec, what: string): Promise<void> {
  if (isNative(arch)) return;
  const info = await readElf(host).catch(() => undefined);
  if (info && info.machine !== arch.elfMachine) {
    throw new UsageError(
      `${what} is copied from ${host}, a program for another architecture (ELF machine ${info.machine}), into an ${arch.name} guest; ` +
        `use hostBinary() (it takes the ${arch.name} build from Debian's package) or ctx.program() for C helpers.`,
    );
  }
}

export type FileSource = { kind: 'data'; data: Buffer } | { kind: 'host'; hostPath: string };

interface Owner {
  uid: number;
  gid: number;
}

/** One resolved entry of a tree. `mode` is the permission bits (0o7777), never the type. */
export type TreeNode =
  | ({ type: 'dir'; mode: number } & Owner)
  | ({ type: 'file'; source: FileSource; mode: number } & Owner)
  | ({ type: 'symlink'; target: string } & Owner)
  | { type: 'hardlink'; target: string }
  | ({ type: 'char' | 'block'; major: number; minor: number; mode: number } & Owner)
  | ({ type: 'fifo'; mode: number } & Owner);

/** A resolved entry with its guest-absolute path ("/bin/sh"). */
export type TreeEntry = TreeNode & { path: string };

/** The kernel facts kernelModules() needs (a `Kernel` from kernels/index.ts fits). */
export interface KernelLike {
  id?: string;
  release: string;
  modulesDir?: string;
}

/** Where kernelModules() lists the module files in load order, one guest path a line. */
export const MODULES_LOAD_FILE = '/etc/rootprobe/modules.load';

interface Slot {
  node: TreeNode;
  /** Never replaces an existing entry; replaced by any explicit one. */
  weak: boolean;
  /** Made as the parent of something, not asked for. */
  implicit: boolean;
}

interface Ctx {
  map: Map<string, Slot>;
  /** The guest's architecture: the tree's own (forArch), else x86-64. */
  arch: ArchSpec;
  /** Kernel modules added so far, per release, in load order. */
  modules: Map<string, ModuleFile[]>;
}

type Op = (t: ImageTree, ctx: Ctx) => Promise<void> | void;

const ROOT_OWNER: Owner = { uid: 0, gid: 0 };

function checkMode(mode: number, what: string): number {
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777) {
    throw new UsageError(`${what}: mode ${mode} is not a permission mode (0 to 0o7777; give it in octal, e.g. 0o755).`);
  }
  return mode;
}

function sortPaths(a: string, b: string): number {
  // Component-wise order: parents first, then siblings by name ("a", "a/b", "a-b" ...).
  const pa = a.split('/');
  const pb = b.split('/');
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    if (pa[i] !== pb[i]) return pa[i] < pb[i] ? -1 : 1;
  }
  return pa.length - pb.length;
}

const busyboxListMemo = new Map<string, Promise<string[]>>();

function busyboxApplets(bin: string): Promise<string[]> {
  let p = busyboxListMemo.get(bin);
  if (!p) {
    p = fileMemo('busybox-applets', bin, () =>
      runGuarded(bin, ['--list-full'], { maxBuffer: 1 << 20 }).then(
        (r) => {
          if (r.code !== 0) throw new SetupError(`${bin} --list-full failed (exit status ${r.code ?? r.signal}); is it a working busybox?`);
          return r.stdout
            .toString('utf8')
            .split('\n')
            .map((l) => l.trim())
            .filter(Boolean);
        },
        (e: Error) => {
          throw new SetupError(`${bin} --list-full failed (${e.message}); is it a working busybox?`);
        },
      ),
    );
    busyboxListMemo.set(bin, p);
    p.catch(() => busyboxListMemo.delete(bin));
  }
  return p;
}

const hashMemo = new Map<string, string>();

/**
 * sha256 of a host file, streamed; remembered per (path, inode, size, mtime, ctime) in this
 * process and across processes (fileMemo), so that a warm image build reads no file whole.
 */
export async function hashHostFile(file: string): Promise<string> {
  // Synchronous (as fileMemo's lookup): a warm run hashes a dozen host files before QEMU starts.
  const st = statSync(file);
  const key = `${file}\0${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
  const hit = hashMemo.get(key);
  if (hit) return hit;
  const digest = await fileMemo('sha256', file, () => sha256File(file));
  hashMemo.set(key, digest);
  return digest;
}

export class ImageTree {
  readonly name: string;
  private ops: Op[] = [];
  private resolved?: Promise<Map<string, Slot>>;

  /** The architecture of the programs it gets (busybox, hostBinary, copyFrom); default x86-64. */
  private arch?: ArchSpec;

  constructor(name = 'image', opts: { arch?: ArchSpec } = {}) {
    this.name = name;
    this.arch = opts.arch;
  }

  /**
   * Builds the tree for guests of `arch`: trees merged into it are too (their steps run when
   * this tree is built), so a scenario's `t.merge(baseRootDisk())` gets the guest's busybox.
   */
  forArch(arch: ArchSpec): this {
    this.arch = arch;
    this.resolved = undefined;
    return this;
  }

  /** Normalises a guest path to "/a/b"; `..`, a relative path or an empty one is a UsageError. */
  norm(p: string, what = 'path'): string {
    if (typeof p !== 'string' || !p.startsWith('/')) {
      throw new UsageError(`${what} ${JSON.stringify(p)} in image "${this.name}" must be absolute (start with "/").`);
    }
    const parts = p.split('/').filter((s) => s !== '' && s !== '.');
    if (parts.includes('..')) {
      throw new UsageError(`${what} ${JSON.stringify(p)} in image "${this.name}" contains "..": paths may not leave the image.`);
    }
    const out = `/${parts.join('/')}`;
    if (out !== '/') {
      try {
        archivePath(out);
      } catch (e) {
        throw new UsageError(`${what} ${JSON.stringify(p)} in image "${this.name}" is not allowed: ${(e as Error).message}`);
      }
    }
    return out;
  }

  private push(op: Op): this {
    this.ops.push(op);
    this.resolved = undefined;
    return this;
  }

  private put(ctx: Ctx, p: string, node: TreeNode, weak = false): void {
    if (p === '/') {
      if (node.type !== 'dir') throw new UsageError(`the root of image "${this.name}" must be a folder.`);
      ctx.map.set('/', { node, weak: false, implicit: false });
      return;
    }
    // Parents: implicit folders where missing; a non-folder parent is a definition error.
    const parts = p.split('/').slice(1);
    for (let i = 1; i < parts.length; i++) {
      const parent = `/${parts.slice(0, i).join('/')}`;
      const s = ctx.map.get(parent);
      if (!s) {
        ctx.map.set(parent, { node: { type: 'dir', mode: 0o755, ...ROOT_OWNER }, weak: true, implicit: true });
      } else if (s.node.type !== 'dir') {
        if (weak) return;
        if (s.weak) {
          ctx.map.set(parent, { node: { type: 'dir', mode: 0o755, ...ROOT_OWNER }, weak: true, implicit: true });
        } else {
          throw new UsageError(`cannot put ${p} in image "${this.name}": ${parent} is a ${s.node.type}, not a folder.`);
        }
      }
    }
    const old = ctx.map.get(p);
    if (old) {
      if (weak) return;
      if (old.node.type === 'dir' && node.type === 'dir') {
        ctx.map.set(p, { node, weak: false, implicit: false });
        return;
      }
      if (old.node.type === 'dir') {
        const prefix = `${p}/`;
        for (const k of ctx.map.keys()) {
          if (k.startsWith(prefix)) {
            throw new UsageError(`cannot replace the folder ${p} with a ${node.type} in image "${this.name}": it contains ${k}.`);
          }
        }
      }
    }
    ctx.map.set(p, { node, weak, implicit: false });
  }

  /** A folder (parents are made as needed, 0755). */
  dir(p: string, mode = 0o755): this {
    const g = this.norm(p);
    checkMode(mode, `dir ${g}`);
    return this.push((t, ctx) => t.put(ctx, g, { type: 'dir', mode, ...ROOT_OWNER }));
  }

  /** A file with the given content. */
  file(p: string, data: string | Buffer, mode = 0o644): this {
    const g = this.norm(p);
    checkMode(mode, `file ${g}`);
    const buf = Buffer.isBuffer(data) ? Buffer.from(data) : Buffer.from(data, 'utf8');
    return this.push((t, ctx) => t.put(ctx, g, { type: 'file', source: { kind: 'data', data: buf }, mode, ...ROOT_OWNER }));
  }

  /**
   * A copy of a host file, read when the image is built (big files are streamed into disk
   * images). Without `mode`, the host file's permission bits.
   */
  copy(guestPath: string, hostPath: string, mode?: number): this {
    const g = this.norm(guestPath);
    if (mode !== undefined) checkMode(mode, `copy ${g}`);
    // The commonest slip: the file's text where its host path goes (`t.script('/init', '#!/bin/sh…')`).
    if (/\n/.test(hostPath) || hostPath.startsWith('#!')) {
      throw new UsageError(
        `image "${this.name}": ${g}: copy() and script() take the path of a file on this machine, and this is a ` +
          `file's text (${JSON.stringify(hostPath.slice(0, 24))}…); give the text with file(${JSON.stringify(g)}, text, 0o755).`,
      );
    }
    const host = path.resolve(hostPath);
    return this.push(async (t, ctx) => {
      let st;
      try {
        st = await fs.stat(host);
      } catch {
        throw new SetupError(`image "${t.name}": ${g} is to be copied from ${host}, which does not exist on this machine.`);
      }
      if (!st.isFile()) {
        throw new UsageError(`image "${t.name}": ${g} is to be copied from ${host}, which is not a regular file.`);
      }
      await checkMachine(host, ctx.arch, `image "${t.name}": ${g}`);
      t.put(ctx, g, { type: 'file', source: { kind: 'host', hostPath: host }, mode: mode ?? st.mode & 0o7777, ...ROOT_OWNER });
    });
  }

  /** A host script copied in, executable by default. */
  script(guestPath: string, hostPath: string, mode = 0o755): this {
    return this.copy(guestPath, hostPath, mode);
  }

  symlink(p: string, target: string): this {
    const g = this.norm(p);
    if (!target || target.includes('\0')) throw new UsageError(`symlink ${g} in image "${this.name}" has an empty target.`);
    return this.push((t, ctx) => t.put(ctx, g, { type: 'symlink', target, ...ROOT_OWNER }));
  }

  /** A second name for the file at `target` (a guest path in this tree). */
  hardlink(p: string, target: string): this {
    const g = this.norm(p);
    const tg = this.norm(target, 'hard link target');
    return this.push((t, ctx) => t.put(ctx, g, { type: 'hardlink', target: tg }));
  }

  device(p: string, kind: 'char' | 'block', major: number, minor: number, mode = 0o600): this {
    const g = this.norm(p);
    checkMode(mode, `device ${g}`);
    if (kind !== 'char' && kind !== 'block') throw new UsageError(`device ${g}: kind must be 'char' or 'block', not ${kind}.`);
    for (const n of [major, minor]) {
      if (!Number.isInteger(n) || n < 0 || n > 0xfffff) throw new UsageError(`device ${g}: bad device number ${n}.`);
    }
    return this.push((t, ctx) => t.put(ctx, g, { type: kind, major, minor, mode, ...ROOT_OWNER }));
  }

  fifo(p: string, mode = 0o644): this {
    const g = this.norm(p);
    checkMode(mode, `fifo ${g}`);
    return this.push((t, ctx) => t.put(ctx, g, { type: 'fifo', mode, ...ROOT_OWNER }));
  }

  /** Sets the owner of an entry defined earlier (everything is root's by default). */
  chown(p: string, uid: number, gid: number): this {
    const g = this.norm(p);
    for (const n of [uid, gid]) {
      if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new UsageError(`chown ${g}: bad id ${n}.`);
    }
    return this.push((t, ctx) => {
      const s = ctx.map.get(g);
      if (!s) throw new UsageError(`chown ${g} in image "${t.name}": there is no such entry (yet).`);
      if (s.node.type === 'hardlink') throw new UsageError(`chown ${g}: it is a hard link; chown ${s.node.target}.`);
      s.node = { ...s.node, uid, gid };
    });
  }

  /**
   * The static busybox of the host at `<binDir>/busybox`, and a link for every applet from
   * `busybox --list-full` at its usual place, where nothing else is. `exclude` names applets
   * ("init") or paths ("/sbin/init") to leave out.
   */
  busybox(binDir = '/bin', opts: { exclude?: string[] } = {}): this {
    const dir = this.norm(binDir, 'busybox folder');
    const self = dir === '/' ? '/busybox' : `${dir}/busybox`;
    const exclude = new Set(opts.exclude ?? []);
    return this.push(async (t, ctx) => {
      const { path: bin, lister } = await guestBusybox(ctx.arch);
      const real = await fs.realpath(bin);
      const info = await readElf(real).catch((e: Error) => {
        throw new SetupError(`the busybox ${bin} is not usable: ${e.message}. Install busybox-static.`);
      });
      if (!isStatic(info)) {
        throw new SetupError(
          `the host busybox ${bin} is dynamically linked (it needs ${info.needed.join(', ') || info.interp}); ` +
            `guests need the static one. Install busybox-static (it replaces the busybox package).`,
        );
      }
      if (info.machine !== ctx.arch.elfMachine) {
        throw new SetupError(`the busybox ${bin} is not an ${ctx.arch.name} program (ELF machine ${info.machine})`);
      }
      t.put(ctx, self, { type: 'file', source: { kind: 'host', hostPath: real }, mode: 0o755, ...ROOT_OWNER });
      for (const rel of await busyboxApplets(lister)) {
        if (!rel.includes('/')) continue; // "linuxrc": not wanted
        const g = `/${rel}`;
        if (g === self || exclude.has(g) || exclude.has(path.basename(rel))) continue;
        t.put(ctx, g, { type: 'symlink', target: self, ...ROOT_OWNER }, true);
      }
    });
  }

  /**
   * A host executable and every shared library it needs (see libs.ts), libraries under the
   * name they were found by (libc.so.6), with the real file's bytes.
   */
  hostBinary(hostPath: string, guestPath = hostPath): this {
    const g = this.norm(guestPath);
    const host = path.resolve(hostPath);
    return this.push(async (t, ctx) => {
      const { files, links } = isNative(ctx.arch) ? await neededFiles(host, g) : await foreignNeededFiles(host, g, ctx.arch);
      for (const f of files) {
        const mode = (await fs.stat(f.hostPath)).mode & 0o7777;
        t.put(ctx, t.norm(f.guestPath), { type: 'file', source: { kind: 'host', hostPath: f.hostPath }, mode, ...ROOT_OWNER });
      }
      for (const l of links) t.put(ctx, l.guestPath, { type: 'symlink', target: l.target, ...ROOT_OWNER }, true);
    });
  }

  /**
   * Kernel modules and their dependencies, decompressed, at /lib/modules/<release>/<relPath>,
   * with a modules.dep in depmod's format (for busybox modprobe) and MODULES_LOAD_FILE listing
   * the module paths in load order (for a guest loop of insmod).
   */
  kernelModules(kernel: KernelLike, names: string[]): this {
    if (!kernel?.release) throw new UsageError(`kernelModules in image "${this.name}": the kernel has no release.`);
    const release = kernel.release;
    const wanted = [...names];
    let memo: Promise<Array<{ m: ModuleFile; rel: string; data: Buffer }>> | undefined;
    return this.push(async (t, ctx) => {
      if (wanted.length === 0) return;
      if (!kernel.modulesDir) {
        throw new SetupError(
          `image "${t.name}" needs kernel modules ${wanted.join(', ')}, but kernel ${kernel.id ?? release} ` +
            `has no modules folder. Use a kernel with modules, or one with these built in.`,
        );
      }
      const modulesDir = kernel.modulesDir;
      memo ??= (async () => {
        const closure = await moduleClosure(modulesDir, wanted);
        return Promise.all(closure.map(async (m) => ({ m, rel: m.relPath.replace(/\.(xz|zst|gz)$/, ''), data: await readModule(m) })));
      })();
      const mods = await memo;
      const list = ctx.modules.get(release) ?? [];
      for (const { m, rel, data } of mods) {
        t.put(ctx, `/lib/modules/${release}/${rel}`, { type: 'file', source: { kind: 'data', data }, mode: 0o644, ...ROOT_OWNER });
        if (!list.some((x) => x.name === m.name)) list.push({ ...m, relPath: rel });
      }
      ctx.modules.set(release, list);
      t.put(ctx, `/lib/modules/${release}/modules.dep`, {
        type: 'file',
        source: { kind: 'data', data: Buffer.from(modulesDep(list)) },
        mode: 0o644,
        ...ROOT_OWNER,
      });
      const load = [...ctx.modules.entries()].flatMap(([rel, ms]) => ms.map((m) => `/lib/modules/${rel}/${m.relPath}`));
      t.put(ctx, MODULES_LOAD_FILE, {
        type: 'file',
        source: { kind: 'data', data: Buffer.from(`${load.join('\n')}\n`) },
        mode: 0o644,
        ...ROOT_OWNER,
      });
    });
  }

  /**
   * A file whose host path depends on the guest's architecture, known when the tree is built
   * (the toolkit's probe and busybox): `source(arch)` gives the host file.
   */
  copyFor(guestPath: string, source: (arch: ArchSpec) => Promise<string>, mode: number): this {
    const g = this.norm(guestPath);
    checkMode(mode, `copy ${g}`);
    return this.push(async (t, ctx) => {
      const host = await source(ctx.arch);
      await checkMachine(host, ctx.arch, `image "${t.name}": ${g}`);
      t.put(ctx, g, { type: 'file', source: { kind: 'host', hostPath: host }, mode, ...ROOT_OWNER });
    });
  }

  /**
   * The device nodes of the guest architecture's console (`/dev/<console>`) and, where the
   * result port is a UART, of the port, for roots without devtmpfs. `portAt` puts the port's
   * node at that path instead (the toolkit's own), and no console node.
   */
  consoleNodes(opts: { portAt?: string } = {}): this {
    return this.push((t, ctx) => {
      const a = ctx.arch;
      const port = a.resultPort;
      if (opts.portAt) {
        if (port.attach === 'serial')
          t.put(ctx, t.norm(opts.portAt), { type: 'char', major: port.major, minor: port.minor, mode: 0o600, ...ROOT_OWNER });
        return;
      }
      t.put(ctx, `/dev/${a.console}`, { type: 'char', major: a.consoleNode.major, minor: a.consoleNode.minor, mode: 0o660, ...ROOT_OWNER });
      if (port.attach === 'serial')
        t.put(ctx, `/dev/${port.device}`, { type: 'char', major: port.major, minor: port.minor, mode: 0o660, ...ROOT_OWNER });
    });
  }

  /** Adds everything `other` describes, after what this tree has (later wins). */
  merge(other: ImageTree): this {
    for (const op of other.ops) this.push(op);
    return this;
  }

  private resolve(): Promise<Map<string, Slot>> {
    this.resolved ??= (async () => {
      const ctx: Ctx = { map: new Map(), modules: new Map(), arch: this.arch ?? defaultArch() };
      for (const op of this.ops) await op(this, ctx);
      // Hard links must name a file of the tree.
      for (const [p, s] of ctx.map) {
        if (s.node.type !== 'hardlink') continue;
        let target = s.node.target;
        for (let hops = 0; ; hops++) {
          const ts = ctx.map.get(target);
          if (!ts) throw new UsageError(`hard link ${p} in image "${this.name}" points to ${target}, which is not in the image.`);
          if (ts.node.type === 'file') break;
          if (ts.node.type !== 'hardlink' || hops > 64) {
            throw new UsageError(`hard link ${p} in image "${this.name}" points to ${target}, which is a ${ts.node.type}, not a file.`);
          }
          target = ts.node.target;
        }
        s.node = { type: 'hardlink', target };
      }
      return ctx.map;
    })();
    const r = this.resolved;
    r.catch(() => {
      if (this.resolved === r) this.resolved = undefined;
    });
    return r;
  }

  /** Checks everything the build will need from the host; the errors name the missing piece. */
  async validate(): Promise<void> {
    await this.resolve();
  }

  async has(p: string): Promise<boolean> {
    return (await this.resolve()).has(this.norm(p));
  }

  /** Every entry, parents before children, sorted; the root folder is not listed. */
  async list(): Promise<TreeEntry[]> {
    const map = await this.resolve();
    return [...map.keys()]
      .filter((p) => p !== '/')
      .sort(sortPaths)
      .map((p) => ({ ...map.get(p)!.node, path: p }));
  }

  /** The root folder's mode and owner (0755 root:root unless `dir('/', …)` said otherwise). */
  async root(): Promise<{ mode: number } & Owner> {
    const s = (await this.resolve()).get('/');
    return s && s.node.type === 'dir' ? { mode: s.node.mode, uid: s.node.uid, gid: s.node.gid } : { mode: 0o755, ...ROOT_OWNER };
  }

  /**
   * The tree as cpio entries. Host files are named (`hostPath`), not read: the cpio writer
   * streams them when it writes the archive, so memory does not grow with their size.
   */
  async entries(): Promise<CpioEntry[]> {
    const out: CpioEntry[] = [];
    for (const e of await this.list()) {
      const p = e.path.slice(1);
      switch (e.type) {
        case 'dir':
          out.push({ type: 'dir', path: p, mode: e.mode, uid: e.uid, gid: e.gid });
          break;
        case 'file':
          out.push(
            e.source.kind === 'data'
              ? { type: 'file', path: p, data: e.source.data, mode: e.mode, uid: e.uid, gid: e.gid }
              : { type: 'file', path: p, hostPath: e.source.hostPath, mode: e.mode, uid: e.uid, gid: e.gid },
          );
          break;
        case 'symlink':
          out.push({ type: 'symlink', path: p, target: e.target, uid: e.uid, gid: e.gid });
          break;
        case 'hardlink':
          out.push({ type: 'hardlink', path: p, target: e.target.slice(1) });
          break;
        case 'char':
        case 'block':
          out.push({ type: e.type, path: p, major: e.major, minor: e.minor, mode: e.mode, uid: e.uid, gid: e.gid });
          break;
        case 'fifo':
          out.push({ type: 'fifo', path: p, mode: e.mode, uid: e.uid, gid: e.gid });
          break;
      }
    }
    return out;
  }

  /** A content hash of the whole description, host file contents included. */
  async fingerprint(): Promise<string> {
    const h = createHash('sha256');
    h.update(`rootprobe-tree-1\0${JSON.stringify(await this.root())}\0`);
    for (const e of await this.list()) {
      let desc: unknown = e;
      if (e.type === 'file') {
        const content =
          e.source.kind === 'data' ? createHash('sha256').update(e.source.data).digest('hex') : await hashHostFile(e.source.hostPath);
        desc = { type: 'file', path: e.path, mode: e.mode, uid: e.uid, gid: e.gid, content };
      }
      h.update(JSON.stringify(desc));
      h.update('\0');
    }
    return h.digest('hex').slice(0, 32);
  }

  /** Total bytes of regular-file content (host files by their current size). */
  async contentBytes(): Promise<number> {
    let n = 0;
    for (const e of await this.list()) {
      if (e.type !== 'file') continue;
      n += e.source.kind === 'data' ? e.source.data.length : (await fs.stat(e.source.hostPath)).size;
    }
    return n;
  }
}

/** modules.dep in depmod's format: `rel: deps…`, every dependency listed, the one loaded last first. */
export function modulesDep(loadOrder: Array<Pick<ModuleFile, 'name' | 'relPath' | 'depends'>>): string {
  const byName = new Map(loadOrder.map((m) => [m.name, m]));
  const pos = new Map(loadOrder.map((m, i) => [m.name, i]));
  const lines: string[] = [];
  for (const m of loadOrder) {
    const all = new Set<string>();
    const stack = [...m.depends];
    while (stack.length) {
      const d = stack.pop()!;
      if (all.has(d) || !byName.has(d)) continue; // not in the list: built in
      all.add(d);
      stack.push(...byName.get(d)!.depends);
    }
    const deps = [...all].sort((a, b) => pos.get(b)! - pos.get(a)!).map((d) => byName.get(d)!.relPath);
    lines.push(`${m.relPath}:${deps.map((d) => ` ${d}`).join('')}`);
  }
  return lines.length ? `${lines.join('\n')}\n` : '';
}
