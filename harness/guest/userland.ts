/**
 * The guest userland of an architecture. On the host's own architecture (x86-64) it is the
 * host's: its static busybox, its gcc, its binaries and libraries. For a foreign guest (arm64,
 * riscv64) every program comes from Debian's package of that architecture, never installed on
 * the host (harness/guest/packages.ts):
 *
 * - busybox: the architecture's `busybox-static`; its applet list from the same suite's amd64
 *   build (the same configuration; a foreign binary cannot run here);
 * - a host tool a scenario copies in (`hostBinary(ctx.tool('switch_root'))`): the host package
 *   that owns the file (`dpkg -S`), fetched for the guest's architecture, and the file at the
 *   same path in it; its libraries found the same way: each soname is looked up in the
 *   packages fetched so far, else the host's copy of the soname names the package to fetch;
 * - C helpers and the probe: the architecture's cross compiler (see toolkit.ts).
 */
import { promises as fs, existsSync } from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { SetupError, UsageError } from '../errors.ts';
import { requireHeader, requireTool } from '../host.ts';
import { fileMemo } from '../cache.ts';
import { runGuarded } from '../lifecycle.ts';
import { hostArchSpec, type ArchSpec } from '../arch/index.ts';
import { NotElfError, isStatic, readElf } from '../image/elf.ts';
import { debianPackage, packageFile, type UnpackedPackage } from './packages.ts';

/** True when the guest runs the host's own programs (the host's architecture). */
export function isNative(arch: ArchSpec): boolean {
  return hostArchSpec()?.name === arch.name;
}

function userlandSuite(arch: ArchSpec): string {
  if (!arch.userlandSuite) throw new Error(`internal: architecture ${arch.name} has no userland suite`);
  return arch.userlandSuite;
}

export interface GuestBusybox {
  /** The static busybox binary on the host. */
  path: string;
  /** The host binary whose `--list-full` gives the applets (the same for a native guest). */
  lister: string;
}

const BUSYBOX_PATHS = ['bin/busybox', 'usr/bin/busybox'];

/** The static busybox for guests of `arch`. */
export async function guestBusybox(arch: ArchSpec): Promise<GuestBusybox> {
  if (isNative(arch)) {
    const bin = requireTool('busybox', 'for the guest userland');
    return { path: bin, lister: bin };
  }
  const suite = userlandSuite(arch);
  const pkg = await debianPackage('busybox-static', { suite, debianArch: arch.debianArch });
  const bin = await packageFile(pkg, BUSYBOX_PATHS);
  if (!bin) throw new SetupError(`busybox-static ${pkg.version} (${suite}, ${arch.debianArch}) has no bin/busybox (in ${pkg.root})`);
  const host = await debianPackage('busybox-static', { suite, debianArch: 'amd64' });
  const lister = await packageFile(host, BUSYBOX_PATHS);
  if (!lister) throw new SetupError(`busybox-static ${host.version} (${suite}, amd64) has no bin/busybox (in ${host.root})`);
  return { path: bin, lister };
}

const ownerMemo = new Map<string, string | undefined>();

/** The host's Debian package that owns `file` (`dpkg -S`, trying the usr-merged and unmerged names). */
export function hostPackageOf(file: string): string | undefined {
  if (ownerMemo.has(file)) return ownerMemo.get(file);
  const names = new Set([file]);
  for (const n of [...names]) {
    if (n.startsWith('/usr/')) names.add(n.slice(4));
    else names.add(`/usr${n}`);
  }
  let owner: string | undefined;
  for (const n of names) {
    const r = spawnSync('dpkg-query', ['-S', n], { encoding: 'utf8' });
    if (r.status !== 0) continue;
    // "util-linux: /sbin/switch_root" (a diversion line starts with "diversion by")
    const line = r.stdout.split('\n').find((l) => !l.startsWith('diversion') && l.includes(': '));
    if (line) {
      owner = line
        .split(': ')[0]
        .split(',')[0]
        .trim()
        .replace(/:[a-z0-9]+$/, '');
      break;
    }
  }
  ownerMemo.set(file, owner);
  return owner;
}

export interface NeededFiles {
  files: Array<{ guestPath: string; hostPath: string }>;
  links: Array<{ guestPath: string; target: string }>;
}

function libDirs(arch: ArchSpec): string[] {
  return [`lib/${arch.gnuTriplet}`, `usr/lib/${arch.gnuTriplet}`, 'lib', 'usr/lib'];
}

async function isFile(p: string): Promise<boolean> {
  return (await fs.stat(p).catch(() => undefined))?.isFile() ?? false;
}

/** The packages a foreign binary's libraries were found in, per architecture (in this process). */
const fetched = new Map<string, UnpackedPackage[]>();

async function fetchFor(arch: ArchSpec, name: string): Promise<UnpackedPackage | undefined> {
  const list = fetched.get(arch.name) ?? [];
  fetched.set(arch.name, list);
  const have = list.find((p) => p.package === name);
  if (have) return have;
  const suite = userlandSuite(arch);
  // Later suites renamed some libraries for the 64-bit time_t transition (libfoo1 -> libfoo1t64).
  const pkg =
    (await debianPackage(name, { suite, debianArch: arch.debianArch, optional: true })) ??
    (await debianPackage(`${name}t64`, { suite, debianArch: arch.debianArch, optional: true }));
  if (pkg) list.push(pkg);
  return pkg;
}

/** Where the host keeps `soname` (its own copy), to learn which package has it. */
function hostLibrary(soname: string): string | undefined {
  const host = hostArchSpec();
  if (!host) return undefined;
  const dirs = [`/lib/${host.gnuTriplet}`, `/usr/lib/${host.gnuTriplet}`, '/lib64', '/usr/lib64', '/lib', '/usr/lib'];
  return dirs.map((d) => path.join(d, soname)).find((p) => existsSync(p));
}

async function findInPackages(arch: ArchSpec, name: string): Promise<{ hostPath: string; guestPath: string } | undefined> {
  for (const pkg of fetched.get(arch.name) ?? []) {
    for (const d of libDirs(arch)) {
      const p = path.join(pkg.root, d, name);
      // In the guest at /lib/<triplet> whichever folder the package keeps it in (the guest's
      // ld.so looks there first; a root that copies /lib gets every library).
      if (await isFile(p)) return { hostPath: await fs.realpath(p), guestPath: `/lib/${arch.gnuTriplet}/${name}` };
    }
  }
  return undefined;
}

async function describe(file: string, arch: ArchSpec, binary: string) {
  try {
    const info = await readElf(file);
    if (info.machine !== arch.elfMachine) {
      throw new SetupError(`${file} (for ${binary}) is not an ${arch.name} program (ELF machine ${info.machine}, not ${arch.elfMachine}).`);
    }
    return info;
  } catch (e) {
    if (e instanceof NotElfError) {
      throw new UsageError(`hostBinary(${binary}): ${e.message}. Use tree.script() for scripts and tree.copy() for other files.`);
    }
    throw e;
  }
}

/**
 * The files a host binary needs in a guest of the foreign architecture `arch`: the program of
 * that architecture (the same path in the owning package, or the file itself when it already
 * is one, as an unpacked package's is) and its libraries and program interpreter.
 */
export async function foreignNeededFiles(hostPath: string, guestPath: string, arch: ArchSpec): Promise<NeededFiles> {
  let real: string;
  try {
    real = await fs.realpath(hostPath);
  } catch {
    throw new SetupError(`hostBinary: ${hostPath} does not exist on this machine (or is not a file).`);
  }
  let binary: string;
  const first = await readElf(real).catch((e: Error) => {
    throw new UsageError(`hostBinary(${hostPath}): ${e.message}. Use tree.script() for scripts and tree.copy() for other files.`);
  });
  if (first.machine === arch.elfMachine) {
    binary = real;
  } else {
    const owner = hostPackageOf(hostPath) ?? hostPackageOf(real);
    if (!owner) {
      throw new SetupError(
        `hostBinary(${hostPath}) for an ${arch.name} guest: no Debian package of this host owns it, so rootprobe cannot ` +
          `take the ${arch.name} build of it from Debian's archive. Give an ${arch.name} program instead.`,
      );
    }
    const pkg = await fetchFor(arch, owner);
    if (!pkg) throw new SetupError(`Debian ${userlandSuite(arch)} has no ${owner} for ${arch.debianArch} (the package of ${hostPath})`);
    const rels = [...new Set([hostPath, real].flatMap((p) => [p, p.startsWith('/usr/') ? p.slice(4) : `/usr${p}`]))].map((p) => p.slice(1));
    const found = await packageFile(pkg, rels);
    if (!found) throw new SetupError(`${owner} ${pkg.version} for ${arch.debianArch} has no ${hostPath} (in ${pkg.root})`);
    binary = await fs.realpath(found);
  }
  const files: NeededFiles['files'] = [{ guestPath, hostPath: binary }];
  const seen = new Set<string>();
  const queue: Array<{ file: string; why: string }> = [{ file: binary, why: hostPath }];
  while (queue.length) {
    const { file, why } = queue.shift()!;
    const info = await describe(file, arch, why);
    if (isStatic(info)) continue;
    const wanted = [...(info.interp ? [info.interp] : []), ...info.needed];
    for (const name of wanted) {
      const base = path.basename(name);
      if (seen.has(base)) continue;
      seen.add(base);
      let hit = await findInPackages(arch, base);
      if (!hit) {
        // The interpreter is libc6's; a library's package is the one owning the host's copy of it.
        const owner =
          name === info.interp
            ? 'libc6'
            : (() => {
                const h = hostLibrary(base);
                return h ? hostPackageOf(h) : undefined;
              })();
        if (owner) await fetchFor(arch, owner);
        hit = await findInPackages(arch, base);
      }
      if (!hit) {
        throw new SetupError(
          `${hostPath} for an ${arch.name} guest needs ${name}, which rootprobe could not find in Debian's ${arch.debianArch} packages ` +
            `(the host has no copy of it to tell which package it is in).`,
        );
      }
      // The interpreter must be where PT_INTERP says; libraries where the guest's ld.so looks.
      const g = name === info.interp ? info.interp : hit.guestPath;
      files.push({ guestPath: g, hostPath: hit.hostPath });
      queue.push({ file: hit.hostPath, why: `${name} of ${hostPath}` });
    }
  }
  return { files, links: [] };
}

/** `--list-full` of a host busybox, one applet path a line, cached per binary. */
export function busyboxAppletList(lister: string): Promise<string[]> {
  return fileMemo('busybox-applets', lister, async () => {
    const r = await runGuarded(lister, ['--list-full']);
    if (r.code !== 0) throw new SetupError(`${lister} --list-full failed (exit status ${r.code ?? r.signal}); is it a working busybox?`);
    return r.stdout.toString('utf8').split('\n').filter(Boolean);
  });
}

/** The static C compiler for guests of `arch`: the host's gcc, or the architecture's cross gcc. */
export function guestCompiler(arch: ArchSpec, why: string): string {
  if (isNative(arch)) return requireTool('gcc', why);
  if (!arch.crossCompiler) throw new SetupError(`no cross compiler is known for ${arch.name} guests`);
  const cc = requireTool(arch.crossCompiler.command, why);
  requireHeader(arch.crossCompiler.libc.header, why);
  return cc;
}

/** `-L` folders with the static libraries `libs` (`z`) for a foreign guest: from the architecture's -dev packages. */
export async function guestStaticLibDirs(arch: ArchSpec, libs: string[]): Promise<string[]> {
  if (isNative(arch) || libs.length === 0) return [];
  const DEV: Record<string, string> = { z: 'zlib1g-dev' };
  const dirs: string[] = [];
  for (const l of libs) {
    const dev = DEV[l];
    if (!dev)
      throw new SetupError(
        `rootprobe does not know which Debian package has lib${l}.a for ${arch.name} guests (known: ${Object.keys(DEV).join(', ')})`,
      );
    const pkg = await debianPackage(dev, { suite: userlandSuite(arch), debianArch: arch.debianArch });
    const a = await packageFile(pkg, [`usr/lib/${arch.gnuTriplet}/lib${l}.a`]);
    if (!a) throw new SetupError(`${dev} ${pkg.version} for ${arch.debianArch} has no lib${l}.a (in ${pkg.root})`);
    dirs.push(path.dirname(a));
  }
  return dirs;
}
