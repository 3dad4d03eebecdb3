/**
 * Provider `build/<recipe>`: a kernel built from source by a recipe in `kernels/recipes/<recipe>/`.
 *
 * A recipe (recipe.json) names the source, Debian's `linux-source-<ver>` package of a suite
 * (fetched with the same private apt tree as the Debian kernels; nothing is installed), config
 * fragments applied on top of `make tinyconfig` (the shared `base.config` holds what every
 * scenario needs, built in: no modules), and patches applied with `patch -p1`:
 *
 *   { "description": "...",
 *     "source": { "suite": "bookworm", "package": "linux-source-6.1" },
 *     "fragments": ["../base.config"],
 *     "patches": ["0001-init-nonroot_initramfs.patch"] }
 *
 * After `make olddefconfig` every option of every fragment must have survived (an option the
 * kernel dropped is an error naming it). The build runs in a temporary folder; the cache entry,
 * keyed by a hash of the source package version, the recipe, its fragments and its patches,
 * holds only bzImage, config, build.log and kernel.json. A failed build leaves no entry (its
 * log is kept beside the entries as `build-<recipe>.failed.log`).
 */
import { promises as fs, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { cacheRoot, cachedEntry, contentHash, isWholeEntry } from '../harness/cache.ts';
import { DefinitionError, SetupError, UsageError } from '../harness/errors.ts';
import { requireFor } from '../harness/host.ts';
import { makeTempDir, removeTempDir, spawnGuarded } from '../harness/lifecycle.ts';
import { PrivateApt, withAptTree, type PackageInfo } from './apt.ts';
import { debianArchive } from './apt-sources.ts';
import { readBzImageHeader } from './bzimage.ts';
import { parseKernelConfig, type KernelConfig } from './config.ts';
import { DEBIAN_SUITES } from './debian.ts';
import type { Kernel } from './index.ts';

/** Bumped when the way a recipe is built changes (it is part of every entry's key). */
const BUILDER_VERSION = 1;

export const RECIPES_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'recipes');

type Progress = (msg: string) => void;

export interface Recipe {
  name: string;
  dir: string;
  description: string;
  source: { suite: string; package: string };
  /** Absolute paths, in order. */
  fragments: string[];
  /** Absolute paths, in order. */
  patches: string[];
  /** The recipe.json text (part of the key). */
  text: string;
}

const RECIPE_NAME = /^[a-z0-9][a-z0-9._-]*$/;

/** The recipes in `dir` (folders with a recipe.json), sorted. */
export function listRecipes(dir = RECIPES_DIR): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names.filter((n) => RECIPE_NAME.test(n) && existsSync(path.join(dir, n, 'recipe.json'))).sort();
}

/**
 * Parses a recipe.json text. Paths (fragments, patches) are relative to the recipe's folder and
 * must stay inside `root` (the recipes folder). DefinitionError names the file and the field.
 */
export function parseRecipe(text: string, name: string, dir: string, root = path.dirname(dir)): Recipe {
  const where = `recipe ${name} (${path.join(dir, 'recipe.json')})`;
  const fail = (msg: string): never => {
    throw new DefinitionError(`${where}: ${msg}`);
  };
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(text) as Record<string, unknown>;
  } catch (e) {
    return fail(`not valid JSON: ${(e as Error).message}`);
  }
  if (!j || typeof j !== 'object' || Array.isArray(j)) fail('must be a JSON object');
  const known = ['description', 'source', 'fragments', 'patches'];
  for (const k of Object.keys(j)) if (!known.includes(k)) fail(`unknown field "${k}" (known: ${known.join(', ')})`);
  if (typeof j.description !== 'string' || !j.description) fail('"description" must be a non-empty string');
  const src = j.source as Record<string, unknown> | undefined;
  if (!src || typeof src !== 'object') fail('"source" must be {"suite": ..., "package": "linux-source-<version>"}');
  if (typeof src!.suite !== 'string' || !(DEBIAN_SUITES as readonly string[]).includes(src!.suite)) {
    fail(`"source.suite" must be one of ${DEBIAN_SUITES.join(', ')} (got ${JSON.stringify(src!.suite)})`);
  }
  if (typeof src!.package !== 'string' || !/^linux-source-[0-9][0-9.]*$/.test(src!.package)) {
    fail(`"source.package" must name a Debian linux-source-<version> package (got ${JSON.stringify(src!.package)})`);
  }
  const files = (field: 'fragments' | 'patches', required: boolean): string[] => {
    const v = j[field] ?? [];
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string' || !x)) fail(`"${field}" must be a list of file names`);
    if (required && (v as string[]).length === 0) fail(`"${field}" must name at least one file`);
    return (v as string[]).map((rel) => {
      const abs = path.resolve(dir, rel);
      const r = path.relative(path.resolve(root), abs);
      if (r.startsWith('..') || path.isAbsolute(r)) fail(`${field}: ${rel} is outside the recipes folder`);
      return abs;
    });
  };
  return {
    name,
    dir,
    description: j.description as string,
    source: { suite: src!.suite as string, package: src!.package as string },
    fragments: files('fragments', true),
    patches: files('patches', false),
    text,
  };
}

/** Loads recipe `name` from the recipes folder; UsageError listing the known ones if missing. */
export function loadRecipe(name: string, root = RECIPES_DIR): Recipe {
  const dir = path.join(root, name);
  const file = path.join(dir, 'recipe.json');
  if (!RECIPE_NAME.test(name) || !existsSync(file)) {
    const known = listRecipes(root);
    throw new UsageError(
      `kernel build/${name}: no recipe ${name} in ${root}. Known recipes: ${known.length ? known.join(', ') : '(none)'}.`,
    );
  }
  const recipe = parseRecipe(readFileSync(file, 'utf8'), name, dir, root);
  for (const f of [...recipe.fragments, ...recipe.patches]) {
    if (!statSync(f, { throwIfNoEntry: false })?.isFile()) {
      throw new DefinitionError(`recipe ${name} (${file}): ${path.relative(dir, f)} does not exist`);
    }
  }
  return recipe;
}

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

/** The cache key of a recipe built from a given source package version. */
export function recipeKey(recipe: Recipe, sourceVersion: string, read: (f: string) => Buffer = (f) => readFileSync(f)): string {
  const hash = contentHash(
    { builder: BUILDER_VERSION, recipe: recipe.text, source: recipe.source, version: sourceVersion },
    ...recipe.fragments.map((f) => ({ file: path.relative(recipe.dir, f), sha: sha256(read(f)) })),
    ...recipe.patches.map((f) => ({ file: path.relative(recipe.dir, f), sha: sha256(read(f)) })),
  ).slice(0, 16);
  return `build-${recipe.name}-${sourceVersion}-${hash}`.replace(/[^A-Za-z0-9._-]/g, '_');
}

function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

interface BuildRecord {
  id: string;
  recipe: string;
  release: string;
  vmlinuz: string;
  configPath: string;
  description: string;
  sha256: string;
  source: { suite: string; package: string; version: string };
  patches: string[];
  buildSeconds: number;
}

interface Pointer {
  key: string;
  version: string;
}

function pointerFile(recipe: string): string {
  return path.join(cacheRoot(), 'kernels', `build-${recipe}.current`);
}

async function readPointer(recipe: string): Promise<Pointer | undefined> {
  try {
    const p = JSON.parse(await fs.readFile(pointerFile(recipe), 'utf8')) as Pointer;
    return typeof p.key === 'string' && typeof p.version === 'string' ? p : undefined;
  } catch {
    return undefined;
  }
}

async function writePointer(recipe: string, p: Pointer): Promise<void> {
  const file = pointerFile(recipe);
  await fs.mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  await fs.writeFile(tmp, JSON.stringify(p));
  await fs.rename(tmp, file);
}

async function loadEntry(dir: string): Promise<Kernel> {
  const rec = JSON.parse(await fs.readFile(path.join(dir, 'kernel.json'), 'utf8')) as BuildRecord;
  const configPath = path.join(dir, rec.configPath);
  return {
    id: rec.id,
    release: rec.release,
    vmlinuz: path.join(dir, rec.vmlinuz),
    configPath,
    config: parseKernelConfig(await fs.readFile(configPath, 'utf8')),
    description: rec.description,
    sha256: rec.sha256,
  };
}

/** The cached build of a recipe as it is now, if there is a whole entry (no network). */
export async function cachedBuildKernel(name: string): Promise<Kernel | undefined> {
  const p = await readPointer(name);
  if (!p) return undefined;
  const key = recipeKey(loadRecipe(name), p.version);
  const dir = path.join(cacheRoot(), 'kernels', key);
  return (await isWholeEntry(dir)) ? loadEntry(dir) : undefined;
}

/** The source package's version: from fresh lists, else after an update, else the last one used. */
async function sourceVersion(apt: PrivateApt, recipe: Recipe, progress: Progress): Promise<PackageInfo | { version: string; package: string; size: 0 }> {
  return withAptTree(
    apt,
    async () => {
      if (!(await apt.listsFresh())) {
        progress(`updating package lists for ${recipe.source.suite}`);
        try {
          await apt.update();
        } catch (e) {
          const p = await readPointer(recipe.name);
          if (p) {
            progress(`could not update the package lists (${(e as Error).message.split('\n')[0]}); using ${recipe.source.package} ${p.version} as last time`);
            return { package: recipe.source.package, version: p.version, size: 0 };
          }
          throw e;
        }
      }
      const info = await apt.show(recipe.source.package);
      if (!info) throw new SetupError(`recipe ${recipe.name}: Debian ${recipe.source.suite} has no package ${recipe.source.package}`);
      return info;
    },
    () => progress(`waiting for another rootprobe that is using the package lists for ${recipe.source.suite}`),
  );
}

/** Runs a command in `cwd`, its output appended to `log`; `onLine` sees each line. */
async function logged(
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

class BuildStepError extends Error {}

async function tail(file: string, n: number): Promise<string> {
  const text = await fs.readFile(file, 'utf8').catch(() => '');
  return text.split('\n').filter(Boolean).slice(-n).join('\n');
}

function preflight(): Record<string, string> {
  const why = 'to build kernels from source (build/<recipe>)';
  // What a source build needs is declared in harness/host.ts (neededBy 'build'), which the doctor reads too.
  return requireFor('build', why);
}

async function buildEntry(
  dir: string,
  recipe: Recipe,
  apt: PrivateApt,
  src: { package: string; version: string },
  progress: Progress,
): Promise<void> {
  const tools = preflight();
  const started = Date.now();
  const work = await makeTempDir('rootprobe-kbuild-');
  const logFile = path.join(dir, 'build.log');
  const log = await fs.open(logFile, 'w');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    LC_ALL: 'C',
    LANG: 'C',
    KBUILD_BUILD_USER: 'rootprobe',
    KBUILD_BUILD_HOST: 'rootprobe',
    KBUILD_BUILD_TIMESTAMP: `rootprobe ${recipe.name} ${src.version}`,
  };
  try {
    progress(`downloading ${src.package} ${src.version} (Debian ${recipe.source.suite})`);
    const dl = path.join(work, 'download');
    await fs.mkdir(dl);
    const debs = await withAptTree(apt, () => apt.download([src], dl));
    if (debs.length !== 1) throw new SetupError(`apt-get download ${src.package}=${src.version} gave ${debs.length} files`);

    progress(`unpacking ${src.package}`);
    const pkg = path.join(work, 'pkg');
    await logged(log, tools['dpkg-deb'], ['-x', debs[0], pkg], work, env);
    await fs.rm(dl, { recursive: true, force: true });
    const srcDir = path.join(pkg, 'usr/src');
    const tarball = (await fs.readdir(srcDir).catch(() => [] as string[])).find((n) => /^linux-source-.*\.tar\.(xz|gz|bz2|zst)$/.test(n));
    if (!tarball) throw new SetupError(`${src.package} ${src.version} holds no usr/src/linux-source-*.tar.xz`);
    await logged(log, tools.tar, ['-xf', path.join(srcDir, tarball), '-C', work], work, env);
    await fs.rm(pkg, { recursive: true, force: true });
    const tree = path.join(work, tarball.replace(/\.tar\.[a-z0-9]+$/, ''));
    if (!existsSync(path.join(tree, 'Makefile'))) throw new SetupError(`${tarball} did not unpack into ${path.basename(tree)}/`);

    for (const p of recipe.patches) {
      progress(`patching: ${path.basename(p)}`);
      await logged(log, tools.patch, ['-p1', '--forward', '--batch', '-i', p], tree, env);
    }

    progress(`configuring: tinyconfig + ${recipe.fragments.map((f) => path.relative(recipe.dir, f)).join(' + ')}`);
    await logged(log, tools.make, ['tinyconfig'], tree, env);
    const base = await fs.readFile(path.join(tree, '.config'), 'utf8');
    const frags = await Promise.all(recipe.fragments.map(async (f) => ({ name: path.relative(recipe.dir, f), text: await fs.readFile(f, 'utf8') })));
    for (const f of frags) parseFragment(f.text, `recipe ${recipe.name}: ${f.name}`);
    // Later lines win in kconfig: the fragments go after tinyconfig's choices.
    await fs.writeFile(path.join(tree, '.config'), [base, ...frags.map((f) => `# --- ${f.name}\n${f.text}`)].join('\n'));
    await logged(log, tools.make, ['olddefconfig'], tree, env);
    const configText = await fs.readFile(path.join(tree, '.config'), 'utf8');
    const dropped = droppedOptions(frags, parseKernelConfig(configText));
    if (dropped.length) {
      throw new SetupError(
        `recipe ${recipe.name}: make olddefconfig dropped what the fragments ask for (a dependency is missing ` +
          `or ${src.package} ${src.version} has no such option):\n  ${dropped.join('\n  ')}`,
      );
    }

    const jobs = Math.max(1, os.availableParallelism?.() ?? os.cpus().length);
    progress(`compiling bzImage with make -j${jobs}`);
    let objects = 0;
    let last = '';
    const compileStart = Date.now();
    const timer = setInterval(() => {
      progress(`compiling: ${objects} steps in ${Math.round((Date.now() - compileStart) / 1000)} s, now ${last || '...'}`);
    }, 15_000);
    try {
      await logged(log, tools.make, [`-j${jobs}`, 'bzImage'], tree, env, (line) => {
        const m = /^\s+([A-Z][A-Z0-9_]*)\s+(\S.*)$/.exec(line);
        if (m) {
          objects++;
          last = `${m[1]} ${m[2]}`;
        }
      });
    } finally {
      clearInterval(timer);
    }
    const bz = path.join(tree, 'arch/x86/boot/bzImage');
    const header = await readBzImageHeader(bz);
    if (!header) throw new SetupError(`recipe ${recipe.name}: make bzImage succeeded but ${bz} is not a bzImage`);
    await fs.copyFile(bz, path.join(dir, 'bzImage'));
    await fs.writeFile(path.join(dir, 'config'), configText);
    const seconds = Math.round((Date.now() - started) / 1000);
    const record: BuildRecord = {
      id: `build/${recipe.name}`,
      recipe: recipe.name,
      release: header.release?.split(' ')[0] ?? src.version,
      vmlinuz: 'bzImage',
      configPath: 'config',
      description:
        `rootprobe build ${recipe.name}: Debian ${recipe.source.suite} ${src.package} ${src.version}` +
        (recipe.patches.length ? ` + ${recipe.patches.map((p) => path.basename(p)).join(', ')}` : ' (no patches)'),
      sha256: sha256(await fs.readFile(path.join(dir, 'bzImage'))),
      source: { ...recipe.source, version: src.version },
      patches: recipe.patches.map((p) => path.basename(p)),
      buildSeconds: seconds,
    };
    await fs.writeFile(path.join(dir, 'kernel.json'), JSON.stringify(record, null, 1));
    await log.write(`rootprobe: built in ${seconds} s (compile ${Math.round((Date.now() - compileStart) / 1000)} s)\n`);
    progress(`built ${record.id} (${record.release}) in ${seconds} s`);
  } catch (e) {
    await log.close().catch(() => undefined);
    const kept = path.join(cacheRoot(), 'kernels', `build-${recipe.name}.failed.log`);
    await fs.copyFile(logFile, kept).catch(() => undefined);
    if (e instanceof BuildStepError) {
      throw new SetupError(`recipe ${recipe.name}: ${e.message}; the last lines of the log (all of it: ${kept}):\n${await tail(kept, 25)}`);
    }
    throw e;
  } finally {
    await log.close().catch(() => undefined);
    await removeTempDir(work);
  }
}

/** The kernel of `build/<recipe>`, built into the cache if needed. */
export async function resolveBuildKernel(name: string, onProgress?: Progress): Promise<Kernel> {
  const progress: Progress = onProgress ?? (() => {});
  const recipe = loadRecipe(name);
  const apt = new PrivateApt(recipe.source.suite, await debianArchive());
  const src = await sourceVersion(apt, recipe, progress);
  const key = recipeKey(recipe, src.version);
  const dir = await cachedEntry('kernels', key, (d) => buildEntry(d, recipe, apt, src, progress), {
    onWait: () => progress(`waiting for another rootprobe that is building ${key}`),
  });
  await writePointer(name, { key, version: src.version });
  return loadEntry(dir);
}
