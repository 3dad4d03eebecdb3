/**
 * Which files a host executable needs in a guest, found the way dracut-install finds them:
 * PT_INTERP, then DT_NEEDED recursively, each looked up in DT_RPATH (inherited from the
 * loading objects while none has DT_RUNPATH), DT_RUNPATH (the object's own needs only), the
 * directories of /etc/ld.so.conf and the standard directories. `$ORIGIN` is expanded.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { SetupError, UsageError } from '../errors.ts';
import { EM_X86_64, NotElfError, readElf, type ElfInfo } from './elf.ts';
import { defaultArch } from '../arch/index.ts';

const TRIPLET = defaultArch().gnuTriplet;

/** The directories the guest's ld.so searches without an ld.so.cache (the architecture's multiarch folders first). */
export const STANDARD_LIB_DIRS = [`/lib/${TRIPLET}`, `/usr/lib/${TRIPLET}`, '/lib64', '/usr/lib64', '/lib', '/usr/lib'];

export interface NeededFile {
  /** Where the file goes in the guest: the name it was found under (libc.so.6, not libc-2.36.so). */
  guestPath: string;
  /** The real file on the host (symlinks resolved) whose bytes are copied. */
  hostPath: string;
}

async function exists(p: string): Promise<boolean> {
  try {
    return (await fs.stat(p)).isFile();
  } catch {
    return false;
  }
}

function globToRegExp(glob: string): RegExp {
  const esc = glob
    .replace(/[.+^${}()|\\]/g, '\\$&')
    .replace(/\*/g, '[^/]*')
    .replace(/\?/g, '[^/]');
  return new RegExp(`^${esc}$`);
}

async function expandInclude(pattern: string, base: string): Promise<string[]> {
  const abs = path.isAbsolute(pattern) ? pattern : path.join(base, pattern);
  if (!/[*?]/.test(abs)) return [abs];
  const dir = path.dirname(abs);
  const re = globToRegExp(path.basename(abs));
  const names = await fs.readdir(dir).catch(() => [] as string[]);
  return names
    .filter((n) => re.test(n))
    .sort()
    .map((n) => path.join(dir, n));
}

/** The library directories named by an ld.so.conf file and its includes, in order. */
export async function ldSoConfDirs(conf = '/etc/ld.so.conf', seen = new Set<string>()): Promise<string[]> {
  if (seen.has(conf)) return [];
  seen.add(conf);
  const text = await fs.readFile(conf, 'utf8').catch(() => '');
  const out: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    if (!line) continue;
    const inc = /^include\s+(.+)$/.exec(line);
    if (inc) {
      for (const pat of inc[1].split(/\s+/)) {
        for (const f of await expandInclude(pat, path.dirname(conf))) out.push(...(await ldSoConfDirs(f, seen)));
      }
    } else if (!line.startsWith('hwcap')) {
      out.push(...line.split(/[:\s,]+/).filter((d) => d.startsWith('/')));
    }
  }
  return out;
}

function expandOrigin(dir: string, origin: string): string {
  return dir
    .replace(/\$\{ORIGIN\}|\$ORIGIN/g, origin)
    .replace(/\$\{LIB\}|\$LIB/g, `lib/${TRIPLET}`)
    .replace(/\$\{PLATFORM\}|\$PLATFORM/g, TRIPLET.split('-')[0]);
}

interface Resolver {
  binary: string;
  confDirs: string[];
  found: Map<string, NeededFile>; // by guest path
  visitedReal: Set<string>;
}

async function lookup(name: string, dirs: string[]): Promise<string | undefined> {
  for (const d of dirs) {
    const p = path.join(d, name);
    if (await exists(p)) return p;
  }
  return undefined;
}

async function describe(file: string, binary: string): Promise<ElfInfo> {
  try {
    const info = await readElf(file);
    if (info.machine !== EM_X86_64) {
      throw new SetupError(`${file} (needed by ${binary}) is not an x86-64 program (ELF machine ${info.machine}).`);
    }
    return info;
  } catch (e) {
    if (e instanceof NotElfError) {
      throw new UsageError(`hostBinary(${binary}): ${e.message}. Use tree.script() for scripts and tree.copy() for other files.`);
    }
    throw e;
  }
}

async function walk(r: Resolver, file: string, info: ElfInfo, inheritedRpath: string[]): Promise<void> {
  const real = await fs.realpath(file);
  if (r.visitedReal.has(`${real}\0${file}`)) return;
  r.visitedReal.add(`${real}\0${file}`);
  const origin = path.dirname(file === r.binary ? real : file);
  const own = (info.runpath.length ? info.runpath : info.rpath).map((d) => expandOrigin(d, origin));
  // DT_RPATH is searched for this object and the objects it loads, unless DT_RUNPATH is present.
  const rpathForChildren = info.runpath.length ? [] : [...info.rpath.map((d) => expandOrigin(d, origin)), ...inheritedRpath];
  const searchDirs = info.runpath.length
    ? [...own, ...r.confDirs, ...STANDARD_LIB_DIRS]
    : [...rpathForChildren, ...r.confDirs, ...STANDARD_LIB_DIRS];
  if (info.interp && !r.found.has(info.interp)) {
    if (!(await exists(info.interp))) {
      throw new SetupError(`${r.binary} needs the program interpreter ${info.interp}, which is not on this machine.`);
    }
    r.found.set(info.interp, { guestPath: info.interp, hostPath: await fs.realpath(info.interp) });
  }
  for (const name of info.needed) {
    const where = name.includes('/') ? ((await exists(name)) ? name : undefined) : await lookup(name, searchDirs);
    if (!where) {
      throw new SetupError(
        `${r.binary} needs the shared library ${name}` +
          (file !== r.binary ? ` (through ${file})` : '') +
          `, which was not found in ${[...new Set(searchDirs)].join(', ')}. Install the package that provides it.`,
      );
    }
    if (!r.found.has(where)) r.found.set(where, { guestPath: where, hostPath: await fs.realpath(where) });
    await walk(r, where, await describe(where, r.binary), rpathForChildren);
  }
}

/**
 * The executable itself (at `guestPath`) plus every file it needs at run time, in a stable
 * order. A library found outside the standard directories (only through ld.so.conf) is also
 * linked from /usr/lib/x86_64-linux-gnu, because the guest has no ld.so.cache.
 */
export async function neededFiles(
  hostPath: string,
  guestPath = hostPath,
): Promise<{
  files: NeededFile[];
  links: Array<{ guestPath: string; target: string }>;
}> {
  let real: string;
  try {
    real = await fs.realpath(hostPath);
    if (!(await fs.stat(real)).isFile()) throw new Error('not a file');
  } catch {
    throw new SetupError(`hostBinary: ${hostPath} does not exist on this machine (or is not a file).`);
  }
  const info = await describe(hostPath, hostPath);
  const r: Resolver = { binary: hostPath, confDirs: await ldSoConfDirs(), found: new Map(), visitedReal: new Set() };
  await walk(r, hostPath, info, []);
  const libs = [...r.found.values()].sort((a, b) => (a.guestPath < b.guestPath ? -1 : 1));
  const links: Array<{ guestPath: string; target: string }> = [];
  const lookupDirs = new Set([...STANDARD_LIB_DIRS]);
  for (const l of libs) {
    const dir = path.dirname(l.guestPath);
    if (l.guestPath === info.interp || lookupDirs.has(dir)) continue;
    const link = path.join(`/usr/lib/${TRIPLET}`, path.basename(l.guestPath));
    if (!r.found.has(link)) links.push({ guestPath: link, target: l.guestPath });
  }
  return { files: [{ guestPath, hostPath: real }, ...libs], links };
}
