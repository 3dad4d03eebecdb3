/**
 * The probe toolkit: what the guest probe needs, in one folder (/.rootprobe) so that it can
 * be appended to any initramfs as a cpio segment of its own, and added to every disk image
 * rootprobe builds: the probe (a static binary built here from probe.c, cached by the hash of
 * its source and the compiler), its shell library, a static busybox for the guest scripts, a
 * device node for the result channel (`port`, for roots without /dev) and an empty mount point
 * for a proc of the probe's own.
 */
import { runGuarded } from '../lifecycle.ts';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ImageTree } from '../image/tree.ts';
import { requireStaticLib } from '../host.ts';
import { cachedEntry, contentHash, fileMemo } from '../cache.ts';
import { DefinitionError, SetupError } from '../errors.ts';
import { defaultArch, type ArchSpec } from '../arch/index.ts';
import { guestBusybox, guestCompiler, guestStaticLibDirs, isNative } from './userland.ts';

export const TOOLKIT_DIR = '/.rootprobe';
const here = path.dirname(fileURLToPath(import.meta.url));

export const PROBE_SOURCE = path.join(here, 'probe.c');
export const GUEST_LIB = path.join(here, 'lib.sh');
const CFLAGS = ['-static', '-Os', '-s', '-Wall', '-Wextra', '-Werror', '-std=gnu11'];

const builds = new Map<string, Promise<string>>();

/**
 * A static binary built from one C file (gcc -static -Os, warnings as errors) and kept in the
 * cache by the hash of its source, flags, libraries and compiler: the probe, and the helpers a
 * scenario asks for with ctx.program(). For a guest of another architecture (`arch`), built
 * with that architecture's cross gcc against its static libraries (harness/guest/userland.ts).
 * Compiled once per process, source and architecture.
 */
export function staticProgram(
  source: string,
  opts: { libs?: string[]; purpose: string; cacheKind?: string; arch?: ArchSpec },
): Promise<string> {
  const arch = opts.arch ?? defaultArch();
  const key = `${arch.name}:${path.resolve(source)}`;
  let p = builds.get(key);
  if (p) return p;
  p = (async () => {
    const gcc = guestCompiler(arch, `to build ${opts.purpose} (${source}) for ${arch.name} guests`);
    let text: Buffer;
    try {
      text = readFileSync(source);
    } catch (e) {
      throw new DefinitionError(`${opts.purpose}: cannot read ${source}: ${(e as Error).message}`);
    }
    const libs = opts.libs ?? [];
    const compiler = await fileMemo('gcc-version', gcc, async () =>
      runGuarded(gcc, ['-dumpfullversion', '-dumpmachine']).then((r) => r.stdout.toString('utf8')),
    );
    const libDirs = await guestStaticLibDirs(arch, libs);
    const name = path.basename(source).replace(/\.c$/, '');
    // The key of a native build stays what it was (its entries survive); a foreign one adds its libraries' folders.
    const parts = isNative(arch) ? [text, CFLAGS, libs, compiler, name] : [text, CFLAGS, libs, compiler, name, arch.name, libDirs];
    const dir = await cachedEntry(opts.cacheKind ?? 'programs', contentHash(...parts), async (tmp) => {
      if (isNative(arch)) {
        requireStaticLib('libc.a', `to link ${opts.purpose} statically`);
        for (const l of libs) requireStaticLib(`lib${l}.a`, `to link ${opts.purpose} statically`);
      }
      // gcc and its cc1/as/ld: a process group ended with rootprobe (lifecycle.ts).
      const args = [...CFLAGS, '-o', path.join(tmp, name), source, ...libDirs.map((d) => `-L${d}`), ...libs.map((l) => `-l${l}`)];
      const r = await runGuarded(gcc, args);
      if (r.code !== 0) {
        throw new SetupError(
          `building ${opts.purpose} failed:\n${r.stderr.toString().trim() || `${path.basename(gcc)} ended with ${r.code ?? r.signal}`}`,
        );
      }
    });
    return path.join(dir, name);
  })();
  builds.set(key, p);
  p.catch(() => builds.delete(key));
  return p;
}

/** The probe binary for guests of `arch`, compiled once per source and compiler and kept in the cache. */
export function probeBinary(arch?: ArchSpec): Promise<string> {
  return staticProgram(PROBE_SOURCE, { libs: ['z'], purpose: 'the guest probe', cacheKind: 'probe', arch });
}

export interface ToolkitOptions {
  /**
   * Where the same static busybox already is in the image the toolkit goes into: the toolkit's
   * busybox is then a symbolic link to it instead of a second copy (2 MB less to unpack at
   * every boot of an initramfs, ~0.2 s under TCG). Only for images whose own busybox is
   * rootprobe's: disks and foreign initramfs images get a copy.
   */
  busyboxAt?: string;
}

/**
 * The toolkit's tree. Its programs are those of the architecture of the tree it is merged into
 * (or of `forArch()` on it): they are picked when the tree is built.
 */
export async function probeToolkit(opts: ToolkitOptions = {}): Promise<ImageTree> {
  const t = new ImageTree('probe toolkit');
  t.dir(TOOLKIT_DIR, 0o755);
  if (opts.busyboxAt) t.symlink(`${TOOLKIT_DIR}/busybox`, opts.busyboxAt);
  else t.copyFor(`${TOOLKIT_DIR}/busybox`, async (arch) => (await guestBusybox(arch)).path, 0o755);
  t.copyFor(`${TOOLKIT_DIR}/probe`, (arch) => probeBinary(arch), 0o755);
  t.copy(`${TOOLKIT_DIR}/lib.sh`, GUEST_LIB, 0o644);
  // The result port's node where it is a UART; a virtio port's node is made by the probe (its major is the kernel's pick).
  t.consoleNodes({ portAt: `${TOOLKIT_DIR}/port` });
  t.dir(`${TOOLKIT_DIR}/proc`, 0o555);
  t.dir(`${TOOLKIT_DIR}/sys`, 0o555);
  t.dir(`${TOOLKIT_DIR}/dev`, 0o555);
  return t;
}
