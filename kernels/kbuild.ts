/**
 * Configuring and building a kernel source tree, whatever it came from (Debian's
 * linux-source for a recipe, a user's git tree): a base (`tinyconfig`, `defconfig`, or a
 * .config file of the user's), config fragments on top, `make olddefconfig`, a check that
 * every option asked for survived, then `make <image>` with the log in a file and progress
 * (the current make target) on the terminal. Out of tree (`make O=DIR`) when given a build
 * folder, so that a second build of the same tree is incremental. A kernel for another
 * architecture than the host's is cross-built (`ARCH=`, `CROSS_COMPILE=` from the architecture
 * table) with that architecture's fragment (kernels/recipes/arch/<name>.config) after the base.
 */
import { promises as fs, existsSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SetupError } from '../harness/errors.ts';
import { requireFor, requireTool } from '../harness/host.ts';
import { spawnGuarded } from '../harness/lifecycle.ts';
import { kernelImageInfo } from './image-format.ts';
import { parseKernelConfig } from './config.ts';
import { DefinitionError } from '../harness/errors.ts';
import type { KernelConfig } from './config.ts';
import { defaultArch, type ArchSpec } from '../harness/arch/index.ts';
import { fileURLToPath } from 'node:url';

export type Progress = (msg: string) => void;

/**
 * A config fragment: option -> value as in .config ('y', 'm', '"text"', '64'), and 'n' for
 * `# CONFIG_X is not set` or `CONFIG_X=n`. Comments and blank lines are skipped.
 */
export function parseFragment(text: string, where = 'fragment'): Map<string, string> {
  const out = new Map<string, string>();
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!line) return;
    const off = /^# (CONFIG_[A-Za-z0-9_]+) is not set$/.exec(line);
    if (off) {
      out.set(off[1], 'n');
      return;
    }
    if (line.startsWith('#')) return;
    const m = /^(CONFIG_[A-Za-z0-9_]+)=(.*)$/.exec(line);
    if (!m) throw new DefinitionError(`${where} line ${i + 1}: "${line}" is not CONFIG_X=value nor "# CONFIG_X is not set"`);
    out.set(m[1], m[2]);
  });
  return out;
}

/**
 * What of the fragments the final .config does not have: one line per option, naming the
 * fragment it came from, what it asked and what the kernel made of it. Later fragments win.
 */
export function droppedOptions(fragments: Array<{ name: string; text: string }>, config: KernelConfig): string[] {
  const wanted = new Map<string, { value: string; from: string }>();
  for (const f of fragments) for (const [k, v] of parseFragment(f.text, f.name)) wanted.set(k, { value: v, from: f.name });
  const out: string[] = [];
  for (const [opt, { value, from }] of wanted) {
    const got = config.get(opt);
    if (value === 'n' ? got === undefined : got === value) continue;
    out.push(`${opt}=${value} (from ${from}) became ${got === undefined ? 'not set' : `${opt}=${got}`}`);
  }
  return out;
}

export class BuildStepError extends Error {}

/** Runs a build step with its output appended to `log` (and lines to onLine); BuildStepError on failure. */
export async function logged(
  log: fs.FileHandle,
  cmd: string,
  args: string[],
  cwd: string,
  env: NodeJS.ProcessEnv,
  onLine?: (line: string) => void,
): Promise<void> {
  await log.write(`$ ${[path.basename(cmd), ...args].join(' ')}\n`);
  const { child } = spawnGuarded(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let pending = '';
  const feed = (d: Buffer): void => {
    void log.write(d);
    if (!onLine) return;
    pending += d.toString('utf8');
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const l of lines) onLine(l);
  };
  child.stdout!.on('data', feed);
  child.stderr!.on('data', feed);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (c, sig) => resolve(c ?? (sig ? -1 : null)));
  });
  if (code !== 0) throw new BuildStepError(`${path.basename(cmd)} ${args.join(' ')} exited with ${code}`);
}

/** The tools a kernel build needs (harness/host.ts, neededBy 'build'), or a SetupError naming the package of the first missing one. */
export function buildTools(why: string): Record<string, string> {
  return requireFor('build', why);
}

/** The environment of a reproducible build: fixed locale, user, host and timestamp. */
export function buildEnv(stamp: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    LC_ALL: 'C',
    LANG: 'C',
    KBUILD_BUILD_USER: 'rootprobe',
    KBUILD_BUILD_HOST: 'rootprobe',
    KBUILD_BUILD_TIMESTAMP: stamp,
  };
}

export interface KbuildOptions {
  /** The kernel source tree. */
  tree: string;
  /** `make O=`: the build folder (reused: a second build is incremental); undefined: in the tree. */
  outDir?: string;
  /** The configuration's base: a make target (tinyconfig, defconfig) or a .config file. */
  base: { target: string } | { file: string };
  /** Fragments applied on top, in order (later lines win); each option must survive olddefconfig. */
  fragments: Array<{ name: string; text: string }>;
  /** For messages: `recipe nonroot-6.1`, `kernel git:/src/linux`. */
  what: string;
  log: fs.FileHandle;
  env: NodeJS.ProcessEnv;
  progress: Progress;
  /** make -j (default: the number of cores). */
  jobs?: number;
  /** The architecture to build for (default: x86-64); another than the host's is cross-built. */
  arch?: ArchSpec;
}

const ARCH_FRAGMENTS = path.join(path.dirname(fileURLToPath(import.meta.url)), 'recipes', 'arch');

/**
 * What a kernel of `arch` needs on its QEMU machine besides the base fragment (its console
 * UART, the PCI host bridge, how poweroff reaches QEMU): kernels/recipes/arch/<name>.config.
 */
export async function archFragment(arch: ArchSpec): Promise<{ name: string; text: string }> {
  const file = path.join(ARCH_FRAGMENTS, `${arch.name}.config`);
  const text = await fs.readFile(file, 'utf8').catch(() => {
    throw new SetupError(`rootprobe has no kernel configuration fragment for ${arch.name} (${file})`);
  });
  return { name: `arch/${arch.name}.config`, text };
}

/**
 * make's words for a build for `arch` on a host of `hostArch`: none for the host's own
 * architecture (kbuild's defaults), else ARCH= and the cross compiler's CROSS_COMPILE= prefix.
 */
export function kbuildArchArgs(arch: ArchSpec, hostArch: string = process.arch): string[] {
  if (arch.hostArch === hostArch) return [];
  if (!arch.crossCompiler) throw new SetupError(`rootprobe knows no cross compiler for ${arch.name} kernels on a ${hostArch} host`);
  return [`ARCH=${arch.kbuild.arch}`, `CROSS_COMPILE=${arch.crossCompiler.command.replace(/gcc$/, '')}`];
}

export interface KbuildResult {
  /** The kernel image in the build folder. */
  image: string;
  configText: string;
  /** What `uname -r` will say (from the image's header). */
  release: string;
  /** vmlinux with symbols, for a debugger. */
  vmlinux?: string;
  /** How many make steps ran (0: nothing had to be rebuilt). */
  steps: number;
  seconds: number;
}

async function readConfigFile(file: string, what: string): Promise<string> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch {
    throw new SetupError(`${what}: the config file ${file} cannot be read`);
  }
}

/** The kernel's compiler and linker errors among make's lines: what a failed build shows. */
export function compilerErrors(lines: string[], n = 12): string[] {
  const out = lines.filter((l) => /(\berror\b|Error \d+|undefined reference|\*\*\*)/.test(l) && !/^\s*(CC|LD|AR)\s/.test(l));
  return out.slice(0, n);
}

export async function kbuild(o: KbuildOptions): Promise<KbuildResult> {
  const started = Date.now();
  const make = requireTool('make', `to build ${o.what}`);
  const arch = o.arch ?? defaultArch();
  const archArgs = kbuildArchArgs(arch);
  if (archArgs.length) requireTool(arch.crossCompiler!.command, `to build ${o.what} for ${arch.name}`);
  const out = o.outDir ?? o.tree;
  const dirArgs = [...(o.outDir ? [`O=${o.outDir}`] : []), ...archArgs];
  if (o.outDir) await fs.mkdir(o.outDir, { recursive: true });
  const configFile = path.join(out, '.config');
  for (const f of o.fragments) parseFragment(f.text, `${o.what}: ${f.name}`);

  // The configuration: only rewritten when what goes into it changed, so that an unchanged
  // tree rebuilds nothing. A make-target base is made in a scratch folder, never in `out`
  // (a tinyconfig written there and undone would touch kbuild's per-option files).
  const baseName = 'target' in o.base ? `make ${o.base.target}` : o.base.file;
  const baseFileText = 'file' in o.base ? await readConfigFile(o.base.file, o.what) : '';
  const inputs = JSON.stringify({ base: baseName, baseFileText, fragments: o.fragments, makeArgs: archArgs });
  const stamp = path.join(out, '.rootprobe-config-input');
  const previous = await fs.readFile(stamp, 'utf8').catch(() => undefined);
  if (previous !== inputs || !existsSync(configFile)) {
    o.progress(
      `configuring: ${'target' in o.base ? baseName : `the .config ${baseName}`} + ${o.fragments.map((f) => f.name).join(' + ') || 'nothing'}`,
    );
    let baseText = baseFileText;
    if ('target' in o.base) {
      const scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'rootprobe-kconfig-'));
      try {
        await logged(o.log, make, [`O=${scratch}`, ...archArgs, o.base.target], o.tree, o.env);
        baseText = await fs.readFile(path.join(scratch, '.config'), 'utf8');
      } finally {
        await fs.rm(scratch, { recursive: true, force: true });
      }
    }
    await fs.rm(stamp, { force: true });
    await fs.writeFile(configFile, [baseText, ...o.fragments.map((f) => `# --- ${f.name}\n${f.text}`)].join('\n'));
    await logged(o.log, make, [...dirArgs, 'olddefconfig'], o.tree, o.env);
    await fs.writeFile(stamp, inputs);
  }
  const configText = await fs.readFile(configFile, 'utf8');
  const dropped = droppedOptions(o.fragments, parseKernelConfig(configText));
  if (dropped.length) {
    await fs.rm(stamp, { force: true });
    throw new SetupError(
      `${o.what}: make olddefconfig dropped what the configuration asks for (a dependency is missing ` +
        `or this source has no such option):\n  ${dropped.join('\n  ')}`,
    );
  }

  const jobs = o.jobs ?? Math.max(1, os.availableParallelism?.() ?? os.cpus().length);
  o.progress(`compiling ${arch.kernelImage}${archArgs.length ? ` for ${arch.name}` : ''} with make -j${jobs}`);
  let steps = 0;
  let last = '';
  const recent: string[] = [];
  const compileStart = Date.now();
  const timer = setInterval(() => {
    o.progress(`compiling: ${steps} steps in ${Math.round((Date.now() - compileStart) / 1000)} s, now ${last || '...'}`);
  }, 15_000);
  try {
    await logged(o.log, make, [...dirArgs, `-j${jobs}`, arch.kbuild.target], o.tree, o.env, (line) => {
      recent.push(line);
      if (recent.length > 400) recent.shift();
      const m = /^\s+([A-Z][A-Z0-9_]*)\s+(\S.*)$/.exec(line);
      if (m) {
        steps++;
        last = `${m[1]} ${m[2]}`;
      }
    });
  } catch (e) {
    if (e instanceof BuildStepError) {
      const errs = compilerErrors(recent);
      throw new BuildStepError(`${e.message}${errs.length ? `; the compiler said:\n    ${errs.join('\n    ')}` : ''}`);
    }
    throw e;
  } finally {
    clearInterval(timer);
  }
  const image = path.join(out, arch.kbuild.image);
  const info = await kernelImageInfo(image, arch).catch((e: Error) => ({ problem: e.message }));
  if ('problem' in info) throw new SetupError(`${o.what}: make ${arch.kbuild.target} succeeded but ${image}: ${info.problem}`);
  // What `uname -r` will say: kbuild writes it down (an Image has no header field for it).
  const written = await fs.readFile(path.join(out, 'include/config/kernel.release'), 'utf8').catch(() => '');
  const vmlinux = path.join(out, 'vmlinux');
  return {
    image,
    configText,
    release: written.trim() || info.release?.split(' ')[0] || '?',
    ...(existsSync(vmlinux) ? { vmlinux } : {}),
    steps,
    seconds: Math.round((Date.now() - started) / 1000),
  };
}
