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
import { requireTool, requireStaticLib } from '../host.ts';
import { cachedEntry, contentHash, fileMemo } from '../cache.ts';
import { DefinitionError, SetupError } from '../errors.ts';
import { defaultArch } from '../arch/index.ts';

export const TOOLKIT_DIR = '/.rootprobe';
const here = path.dirname(fileURLToPath(import.meta.url));

export const PROBE_SOURCE = path.join(here, 'probe.c');
export const GUEST_LIB = path.join(here, 'lib.sh');
const CFLAGS = ['-static', '-Os', '-s', '-Wall', '-Wextra', '-Werror', '-std=gnu11'];

const builds = new Map<string, Promise<string>>();

/**
 * A static binary built from one C file (gcc -static -Os, warnings as errors) and kept in the
 * cache by the hash of its source, flags, libraries and compiler: the probe, and the helpers a
 * scenario asks for with ctx.program(). Compiled once per process and source.
 */
export function staticProgram(source: string, opts: { libs?: string[]; purpose: string; cacheKind?: string }): Promise<string> {
  const key = path.resolve(source);
  let p = builds.get(key);
  if (p) return p;
  p = (async () => {
    const gcc = requireTool('gcc', `to build ${opts.purpose} (${source})`);
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
    const name = path.basename(source).replace(/\.c$/, '');
    const dir = await cachedEntry(opts.cacheKind ?? 'programs', contentHash(text, CFLAGS, libs, compiler, name), async (tmp) => {
      requireStaticLib('libc.a', `to link ${opts.purpose} statically`);
      for (const l of libs) requireStaticLib(`lib${l}.a`, `to link ${opts.purpose} statically`);
      // gcc and its cc1/as/ld: a process group ended with rootprobe (lifecycle.ts).
      const r = await runGuarded(gcc, [...CFLAGS, '-o', path.join(tmp, name), source, ...libs.map((l) => `-l${l}`)]);
      if (r.code !== 0) {
        throw new SetupError(`building ${opts.purpose} failed:\n${r.stderr.toString().trim() || `gcc ended with ${r.code ?? r.signal}`}`);
      }
    });
    return path.join(dir, name);
  })();
  builds.set(key, p);
  p.catch(() => builds.delete(key));
  return p;
}

/** The probe binary, compiled once per source and compiler and kept in the cache. */
export function probeBinary(): Promise<string> {
  return staticProgram(PROBE_SOURCE, { libs: ['z'], purpose: 'the guest probe', cacheKind: 'probe' });
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

export async function probeToolkit(opts: ToolkitOptions = {}): Promise<ImageTree> {
  const t = new ImageTree('probe toolkit');
  t.dir(TOOLKIT_DIR, 0o755);
  if (opts.busyboxAt) t.symlink(`${TOOLKIT_DIR}/busybox`, opts.busyboxAt);
  else t.copy(`${TOOLKIT_DIR}/busybox`, requireTool('busybox', "for the guest scripts' own shell"), 0o755);
  t.copy(`${TOOLKIT_DIR}/probe`, await probeBinary(), 0o755);
  t.copy(`${TOOLKIT_DIR}/lib.sh`, GUEST_LIB, 0o644);
  const port = defaultArch().resultPort;
  t.device(`${TOOLKIT_DIR}/port`, 'char', port.major, port.minor, 0o600);
  t.dir(`${TOOLKIT_DIR}/proc`, 0o555);
  return t;
}
