/**
 * Kernel modules without depmod: the module files under a modules folder, their `.modinfo`
 * section (hard `depends=` and `softdep=pre:`), the dependency closure in load order, and
 * their bytes decompressed. Debian ships no modules.dep, so we read the ELF ourselves.
 *
 * A modules folder may carry an index (MODULE_INDEX_FILE, written when a kernel's cache entry
 * is built) with every module's path and dependencies; without one, module paths come from a
 * walk of the folder and dependencies are read from the few modules a closure visits.
 */
import { promises as fs, readdirSync, readFileSync, existsSync } from 'node:fs';
import * as path from 'node:path';
import { runGuarded } from '../harness/lifecycle.ts';
import { gunzipSync } from 'node:zlib';
import { SetupError } from '../harness/errors.ts';
import { requireTool } from '../harness/host.ts';

export interface ModuleFile {
  /** Module name, `-` normalised to `_` (e.g. `virtio_blk`). */
  name: string;
  /** Host path of the file, maybe compressed (.ko.xz, .ko.zst, .ko.gz). */
  path: string;
  /** Path under the modules folder, e.g. kernel/drivers/block/virtio_blk.ko.xz. */
  relPath: string;
  /** Hard dependencies (from `depends=`), normalised names. */
  depends: string[];
}

interface IndexEntry {
  relPath: string;
  depends?: string[];
  /** `softdep=pre:` modules, loaded first when they exist as files. */
  softPre?: string[];
  /** Its plain `alias=` names (no wildcard): a soft dependency may name one (ext4's `crc32c`). */
  aliases?: string[];
}

export interface ModuleIndex {
  version: 1;
  modules: Record<string, IndexEntry>;
  /** Names of modules built into the kernel (modules.builtin). */
  builtin: string[];
}

/** Written inside a modules folder by writeModuleIndex(); not a kernel file. */
export const MODULE_INDEX_FILE = 'modules.rootprobe.json';

const MODULE_SUFFIX = /\.ko(\.xz|\.zst|\.gz)?$/;

export function normaliseModuleName(name: string): string {
  return name.replace(/-/g, '_');
}

/** `virtio-rng.ko.xz` -> `virtio_rng`; undefined for a file that is not a module. */
export function moduleNameOfFile(fileName: string): string | undefined {
  const base = path.basename(fileName);
  if (!MODULE_SUFFIX.test(base)) return undefined;
  return normaliseModuleName(base.replace(MODULE_SUFFIX, ''));
}

function walkModuleFiles(modulesDir: string): Record<string, IndexEntry> {
  const out: Record<string, IndexEntry> = {};
  const walk = (rel: string): void => {
    let ents;
    try {
      ents = readdirSync(path.join(modulesDir, rel), { withFileTypes: true });
    } catch {
      return;
    }
    ents.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of ents) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(r);
      else if (e.isFile()) {
        const name = moduleNameOfFile(e.name);
        if (!name) continue;
        // depmod's rule: updates/ and extra/ win over kernel/.
        if (!out[name] || out[name].relPath.startsWith('kernel/')) out[name] = { relPath: r };
      }
    }
  };
  walk('');
  return out;
}

function readBuiltinSync(modulesDir: string): string[] {
  let text: string;
  try {
    text = readFileSync(path.join(modulesDir, 'modules.builtin'), 'utf8');
  } catch {
    return [];
  }
  const names = new Set<string>();
  for (const line of text.split('\n')) {
    const n = line.trim() && moduleNameOfFile(line.trim());
    if (n) names.add(n);
  }
  return [...names].sort();
}

const memo = new Map<string, ModuleIndex>();

/**
 * The module index of a folder: from its MODULE_INDEX_FILE if present, else from a walk of
 * the folder (names and paths only; dependencies read on demand). Synchronous and cheap.
 */
export function loadModuleIndexSync(modulesDir: string): ModuleIndex {
  const dir = path.resolve(modulesDir);
  const hit = memo.get(dir);
  if (hit) return hit;
  let index: ModuleIndex | undefined;
  const file = path.join(dir, MODULE_INDEX_FILE);
  if (existsSync(file)) {
    try {
      const parsed = JSON.parse(readFileSync(file, 'utf8')) as ModuleIndex;
      if (parsed.version === 1 && parsed.modules && Array.isArray(parsed.builtin)) index = parsed;
    } catch {
      index = undefined;
    }
  }
  index ??= { version: 1, modules: walkModuleFiles(dir), builtin: readBuiltinSync(dir) };
  memo.set(dir, index);
  return index;
}

/** The NUL-separated `key=value` strings of the ELF64 `.modinfo` section. */
export function parseModinfo(elf: Buffer): Array<[string, string]> {
  if (elf.length < 64 || elf.readUInt32BE(0) !== 0x7f454c46) throw new Error('not an ELF file');
  if (elf[4] !== 2) throw new Error('not an ELF64 file');
  const le = elf[5] === 1;
  const u16 = (o: number): number => (le ? elf.readUInt16LE(o) : elf.readUInt16BE(o));
  const u32 = (o: number): number => (le ? elf.readUInt32LE(o) : elf.readUInt32BE(o));
  const u64 = (o: number): number => Number(le ? elf.readBigUInt64LE(o) : elf.readBigUInt64BE(o));
  const shoff = u64(0x28);
  const shentsize = u16(0x3a);
  const shnum = u16(0x3c);
  const shstrndx = u16(0x3e);
  if (shoff === 0 || shnum === 0 || shoff + shnum * shentsize > elf.length) throw new Error('bad ELF section table');
  const sect = (i: number): { name: number; offset: number; size: number } => {
    const b = shoff + i * shentsize;
    return { name: u32(b), offset: u64(b + 0x18), size: u64(b + 0x20) };
  };
  const strtab = sect(shstrndx);
  for (let i = 0; i < shnum; i++) {
    const s = sect(i);
    const nameStart = strtab.offset + s.name;
    const nameEnd = elf.indexOf(0, nameStart);
    if (elf.toString('latin1', nameStart, nameEnd) !== '.modinfo') continue;
    if (s.offset + s.size > elf.length) throw new Error('.modinfo runs past the end of the file');
    const out: Array<[string, string]> = [];
    for (const str of elf.toString('utf8', s.offset, s.offset + s.size).split('\0')) {
      const eq = str.indexOf('=');
      if (eq > 0) out.push([str.slice(0, eq), str.slice(eq + 1)]);
    }
    return out;
  }
  return [];
}

function dependsOf(modinfo: Array<[string, string]>): { depends: string[]; softPre: string[]; aliases: string[] } {
  const depends: string[] = [];
  const softPre: string[] = [];
  const aliases: string[] = [];
  for (const [k, v] of modinfo) {
    if (k === 'depends')
      depends.push(
        ...v
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
          .map(normaliseModuleName),
      );
    if (k === 'alias' && /^[A-Za-z0-9_-]+$/.test(v)) aliases.push(normaliseModuleName(v));
    if (k === 'softdep') {
      // "pre: a b post: c"
      let mode = '';
      for (const tok of v.split(/\s+/).filter(Boolean)) {
        if (tok === 'pre:' || tok === 'post:') mode = tok;
        else if (mode === 'pre:') softPre.push(normaliseModuleName(tok));
      }
    }
  }
  return { depends: [...new Set(depends)], softPre: [...new Set(softPre)], aliases: [...new Set(aliases)] };
}

async function runToBuffer(cmd: string, args: string[]): Promise<Buffer> {
  const r = await runGuarded(cmd, args, { maxBuffer: 1 << 30 });
  if (r.code !== 0)
    throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr.toString().trim() || `exit status ${r.code ?? r.signal}`}`);
  return r.stdout;
}

/** The module's bytes, decompressed (.ko as is; .ko.xz via `xz -dc`; .ko.zst via `zstd -dc`; .ko.gz via zlib). */
export async function readModule(m: Pick<ModuleFile, 'path'>): Promise<Buffer> {
  if (m.path.endsWith('.ko')) return fs.readFile(m.path);
  if (m.path.endsWith('.ko.gz')) return gunzipSync(await fs.readFile(m.path));
  if (m.path.endsWith('.ko.xz')) return runToBuffer(requireTool('xz', 'to decompress kernel modules'), ['-dc', '--', m.path]);
  if (m.path.endsWith('.ko.zst')) {
    return runToBuffer(requireTool('zstd', 'to decompress kernel modules'), ['-dc', '-q', '--', m.path]);
  }
  throw new Error(`internal: ${m.path} is not a kernel module file`);
}

/** For an uncompressed .ko: only the ELF header, section table, names and .modinfo are read. */
async function readModinfoOfPlainFile(file: string): Promise<Array<[string, string]>> {
  const fh = await fs.open(file, 'r');
  try {
    const size = (await fh.stat()).size;
    const elf = Buffer.alloc(size);
    const readAt = async (off: number, len: number): Promise<void> => {
      if (off < 0 || len < 0 || off + len > size) throw new Error('ELF offsets run past the end of the file');
      await fh.read(elf, off, len, off);
    };
    await readAt(0, Math.min(64, size));
    if (size < 64 || elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 2 || elf[5] !== 1) {
      // Not little-endian ELF64: let parseModinfo say what is wrong, from the whole file.
      await readAt(0, size);
      return parseModinfo(elf);
    }
    const shoff = Number(elf.readBigUInt64LE(0x28));
    const shentsize = elf.readUInt16LE(0x3a);
    const shnum = elf.readUInt16LE(0x3c);
    await readAt(shoff, shentsize * shnum);
    const sect = (i: number): { name: number; off: number; len: number } => {
      const b = shoff + i * shentsize;
      return { name: elf.readUInt32LE(b), off: Number(elf.readBigUInt64LE(b + 0x18)), len: Number(elf.readBigUInt64LE(b + 0x20)) };
    };
    const names = sect(elf.readUInt16LE(0x3e));
    await readAt(names.off, names.len);
    for (let i = 0; i < shnum; i++) {
      const sh = sect(i);
      const start = names.off + sh.name;
      if (elf.toString('latin1', start, elf.indexOf(0, start)) === '.modinfo') await readAt(sh.off, sh.len);
    }
    return parseModinfo(elf);
  } finally {
    await fh.close();
  }
}

async function readDepends(modulesDir: string, entry: IndexEntry): Promise<{ depends: string[]; softPre: string[]; aliases: string[] }> {
  const p = path.join(modulesDir, entry.relPath);
  try {
    if (p.endsWith('.ko')) return dependsOf(await readModinfoOfPlainFile(p));
    return dependsOf(parseModinfo(await readModule({ path: p })));
  } catch (e) {
    if (e instanceof SetupError) throw e;
    throw new SetupError(`cannot read the .modinfo of kernel module ${p}: ${(e as Error).message}. Is the file damaged?`);
  }
}

async function mapLimit<T>(items: T[], limit: number, fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/**
 * Writes MODULE_INDEX_FILE into the folder: every module's path, and the dependencies of the
 * uncompressed ones (a few hundred ms for ~1000 modules). Compressed modules cost a
 * decompressor run each (~10 s for ~1000 .ko.xz on two cores), so their dependencies are read
 * when a closure needs them unless `compressed: true`. Meant for a folder being built (a cache
 * entry before its rename).
 */
export async function writeModuleIndex(
  modulesDir: string,
  opts: { concurrency?: number; compressed?: boolean } = {},
): Promise<ModuleIndex> {
  const dir = path.resolve(modulesDir);
  memo.delete(dir);
  const modules = walkModuleFiles(dir);
  const toRead = Object.values(modules).filter((e) => opts.compressed || e.relPath.endsWith('.ko'));
  await mapLimit(toRead, opts.concurrency ?? 4, async (entry) => {
    const { depends, softPre, aliases } = await readDepends(dir, entry);
    entry.depends = depends;
    if (softPre.length) entry.softPre = softPre;
    if (aliases.length) entry.aliases = aliases;
  });
  const index: ModuleIndex = { version: 1, modules, builtin: readBuiltinSync(dir) };
  const tmp = path.join(dir, `.${MODULE_INDEX_FILE}.tmp`);
  await fs.writeFile(tmp, JSON.stringify(index));
  await fs.rename(tmp, path.join(dir, MODULE_INDEX_FILE));
  memo.set(dir, index);
  return index;
}

/**
 * The dependency closure of `names` in load order (deps first), from the `.modinfo` of each
 * module; modules built into the kernel are skipped. `softdep=pre:` modules are loaded before
 * a module when they exist as files. Unknown module: SetupError naming it and the kernel.
 */
export async function moduleClosure(modulesDir: string, names: string[]): Promise<ModuleFile[]> {
  const dir = path.resolve(modulesDir);
  const index = loadModuleIndexSync(dir);
  const builtin = new Set(index.builtin);
  const order: ModuleFile[] = [];
  const done = new Set<string>();
  const visiting = new Set<string>();

  // A soft dependency may name an alias (ext4's `softdep pre: crc32c`, which crc32c_generic
  // provides on kernels where the algorithm is a module): the module `<name>_*` that carries it,
  // the generic implementation first (it loads on every CPU).
  const byAlias = async (alias: string): Promise<string | undefined> => {
    // `crypto-crc32c` (normalised crypto_crc32c): the algorithm's modules are crc32c_<impl>.
    const base = alias.replace(/^crypto_/, '');
    const candidates = Object.keys(index.modules)
      .filter((m) => m.startsWith(`${base}_`))
      .sort((a, b) => Number(b.endsWith('_generic')) - Number(a.endsWith('_generic')) || a.localeCompare(b));
    for (const m of candidates) {
      const e = index.modules[m];
      if (!e.aliases) Object.assign(e, await readDepends(dir, e));
      if (e.aliases?.includes(alias) || e.aliases?.includes(base) || e.aliases?.includes(`crypto_${base}`)) return m;
    }
    return undefined;
  };
  const visit = async (raw: string, requiredBy: string | undefined, soft: boolean): Promise<void> => {
    let name = normaliseModuleName(raw);
    if (done.has(name) || visiting.has(name) || builtin.has(name)) return;
    if (soft && !index.modules[name]) {
      const provider = await byAlias(name);
      if (!provider) return;
      name = provider;
      if (done.has(name) || visiting.has(name) || builtin.has(name)) return;
    }
    const entry = index.modules[name];
    if (!entry) {
      if (soft) return;
      throw new SetupError(
        `kernel module ${name}${requiredBy ? ` (needed by ${requiredBy})` : ''} is not in kernel ` +
          `${path.basename(dir)}: no ${name}.ko* under ${dir} and not listed in its modules.builtin. ` +
          `Use a kernel that has it, built in or as a module.`,
      );
    }
    visiting.add(name);
    if (!entry.depends) Object.assign(entry, await readDepends(dir, entry));
    for (const s of entry.softPre ?? []) await visit(s, name, true);
    for (const d of entry.depends ?? []) await visit(d, name, false);
    visiting.delete(name);
    done.add(name);
    order.push({ name, path: path.join(dir, entry.relPath), relPath: entry.relPath, depends: [...(entry.depends ?? [])] });
  };

  for (const n of names) await visit(n, undefined, false);
  return order;
}
