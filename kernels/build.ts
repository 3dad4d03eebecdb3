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
 * kernel dropped is an error naming it). `,arch=arm64` builds it for another architecture
 * (cross-compiled, with kernels/recipes/arch/<arch>.config after the recipe's fragments). The
 * build runs in a temporary folder; the cache entry, keyed by a hash of the source package
 * version, the recipe, its fragments, the architecture and its patches, holds only the image
 * (bzImage, or Image on arm64 and riscv64), vmlinux (for `shell --gdb`), config, build.log and
 * kernel.json. A failed build leaves no entry (its
 * log is kept beside the entries as `build-<recipe>.failed.log`).
 */
import { nearestKey } from '../harness/nearest.ts';
import { promises as fs, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { cacheRoot, cachedEntry, contentHash, isWholeEntry } from '../harness/cache.ts';
import { DefinitionError, SetupError, UsageError } from '../harness/errors.ts';
import { makeTempDir, removeTempDir } from '../harness/lifecycle.ts';
import { archFragment, BuildStepError, buildEnv, buildTools, kbuild, logged } from './kbuild.ts';
import { archByName, DEFAULT_ARCH } from '../harness/arch/index.ts';
import { extraFragments, extrasSuffix, type BuildExtras } from './spec-options.ts';
import { PrivateApt, withAptTree, type PackageInfo } from './apt.ts';
import { debianArchive } from './apt-sources.ts';
import { DEBIAN_SUITES } from './debian.ts';
import type { Kernel } from './index.ts';
import { loadKernelEntry, readPointer as readEntryPointer, writePointer as writeEntryPointer } from './entry.ts';

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
    const near = nearestKey(name, known);
    throw new UsageError(
      `kernel build/${name}: no recipe ${name} in ${root}${near ? ` (did you mean build/${near}?)` : ''}. Known recipes: ${known.length ? known.join(', ') : '(none)'}.`,
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

export { droppedOptions, parseFragment } from './kbuild.ts';

const NO_EXTRAS: BuildExtras = { configAdd: [], fragments: [] };

/** The cache key of a recipe built from a given source package version. */
export function recipeKey(
  recipe: Recipe,
  sourceVersion: string,
  read: (f: string) => Buffer = (f) => readFileSync(f),
  extras: BuildExtras = NO_EXTRAS,
): string {
  const more = extras.configAdd.length || extras.fragments.length ? [{ extras: extraFragments(extras) }] : [];
  const arch = extras.arch ?? DEFAULT_ARCH;
  const archFile = path.join(RECIPES_DIR, 'arch', `${arch}.config`);
  const hash = contentHash(
    { builder: BUILDER_VERSION, recipe: recipe.text, source: recipe.source, version: sourceVersion },
    ...more,
    { arch, sha: existsSync(archFile) ? sha256(read(archFile)) : 'none' },
    ...recipe.fragments.map((f) => ({ file: path.relative(recipe.dir, f), sha: sha256(read(f)) })),
    ...recipe.patches.map((f) => ({ file: path.relative(recipe.dir, f), sha: sha256(read(f)) })),
  ).slice(0, 16);
  return `build-${recipe.name}${extras.arch ? `-${extras.arch}` : ''}-${sourceVersion}-${hash}`.replace(/[^A-Za-z0-9._-]/g, '_');
}

function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

interface BuildRecord {
  id: string;
  recipe: string;
  release: string;
  vmlinuz: string;
  vmlinux?: string;
  arch?: string;
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

function readPointer(recipe: string): Promise<Pointer | undefined> {
  return readEntryPointer<Pointer>(`build-${recipe}`, (p) => typeof p.version === 'string');
}

function writePointer(recipe: string, p: Pointer): Promise<void> {
  return writeEntryPointer(`build-${recipe}`, p);
}

const loadEntry = loadKernelEntry;

/** The cached build of a recipe as it is now, if there is a whole entry (no network). */
export async function cachedBuildKernel(name: string, extras: BuildExtras = NO_EXTRAS): Promise<Kernel | undefined> {
  const p = await readPointer(name);
  if (!p) return undefined;
  const key = recipeKey(loadRecipe(name), p.version, undefined, extras);
  const dir = path.join(cacheRoot(), 'kernels', key);
  return (await isWholeEntry(dir)) ? loadEntry(dir) : undefined;
}

/** The source package's version: from fresh lists, else after an update, else the last one used. */
async function sourceVersion(
  apt: PrivateApt,
  recipe: Recipe,
  progress: Progress,
): Promise<PackageInfo | { version: string; package: string; size: 0 }> {
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
            progress(
              `could not update the package lists (${(e as Error).message.split('\n')[0]}); using ${recipe.source.package} ${p.version} as last time`,
            );
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
/**
 * Debian's linux-source package unpacked into `work`: the tree's path. The package is
 * downloaded with the private apt tree and unpacked with dpkg-deb (nothing installed).
 */
export async function fetchLinuxSource(
  apt: PrivateApt,
  src: { package: string; version: string },
  suite: string,
  work: string,
  log: fs.FileHandle,
  env: NodeJS.ProcessEnv,
  progress: Progress,
): Promise<string> {
  const tools = buildTools('to unpack a kernel source package');
  progress(`downloading ${src.package} ${src.version} (Debian ${suite})`);
  const dl = path.join(work, 'download');
  await fs.mkdir(dl, { recursive: true });
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
  return tree;
}

async function buildEntry(
  dir: string,
  recipe: Recipe,
  apt: PrivateApt,
  src: { package: string; version: string },
  progress: Progress,
  extras: BuildExtras,
): Promise<void> {
  const tools = buildTools('to build kernels from source (build/<recipe>)');
  const started = Date.now();
  const work = await makeTempDir('rootprobe-kbuild-');
  const logFile = path.join(dir, 'build.log');
  const log = await fs.open(logFile, 'w');
  const env = buildEnv(`rootprobe ${recipe.name} ${src.version}`);
  try {
    const tree = await fetchLinuxSource(apt, src, recipe.source.suite, work, log, env, progress);
    for (const p of recipe.patches) {
      progress(`patching: ${path.basename(p)}`);
      await logged(log, tools.patch, ['-p1', '--forward', '--batch', '-i', p], tree, env);
    }
    const frags = await Promise.all(
      recipe.fragments.map(async (f) => ({ name: path.relative(recipe.dir, f), text: await fs.readFile(f, 'utf8') })),
    );
    const arch = archByName(extras.arch);
    const built = await kbuild({
      tree,
      base: { target: 'tinyconfig' },
      fragments: [...frags, await archFragment(arch), ...extraFragments(extras)],
      what: `recipe ${recipe.name}`,
      log,
      env,
      progress,
      arch,
    });
    const image = arch.kernelImage;
    await fs.copyFile(built.image, path.join(dir, image));
    // vmlinux with its symbols, for `shell --gdb` (the build folder is temporary).
    if (built.vmlinux) await fs.copyFile(built.vmlinux, path.join(dir, 'vmlinux'));
    await fs.writeFile(path.join(dir, 'config'), built.configText);
    const seconds = Math.round((Date.now() - started) / 1000);
    const record: BuildRecord = {
      id: `build/${recipe.name}${extrasSuffix(extras)}`,
      recipe: recipe.name,
      release: built.release === '?' ? src.version : built.release,
      vmlinuz: image,
      ...(built.vmlinux ? { vmlinux: 'vmlinux' } : {}),
      ...(arch.name !== DEFAULT_ARCH ? { arch: arch.name } : {}),
      configPath: 'config',
      description:
        `rootprobe build ${recipe.name}${arch.name !== DEFAULT_ARCH ? ` for ${arch.name}` : ''}: Debian ${recipe.source.suite} ${src.package} ${src.version}` +
        (recipe.patches.length ? ` + ${recipe.patches.map((p) => path.basename(p)).join(', ')}` : ' (no patches)'),
      sha256: sha256(await fs.readFile(path.join(dir, image))),
      source: { ...recipe.source, version: src.version },
      patches: recipe.patches.map((p) => path.basename(p)),
      buildSeconds: seconds,
    };
    await fs.writeFile(path.join(dir, 'kernel.json'), JSON.stringify(record, null, 1));
    await log.write(`rootprobe: built in ${seconds} s\n`);
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

async function tail(file: string, n: number): Promise<string> {
  const text = await fs.readFile(file, 'utf8').catch(() => '');
  return text.split('\n').filter(Boolean).slice(-n).join('\n');
}

/** The kernel of `build/<recipe>`, built into the cache if needed. */
export async function resolveBuildKernel(name: string, onProgress?: Progress, extras: BuildExtras = NO_EXTRAS): Promise<Kernel> {
  const progress: Progress = onProgress ?? (() => {});
  const recipe = loadRecipe(name);
  const apt = new PrivateApt(recipe.source.suite, await debianArchive());
  const src = await sourceVersion(apt, recipe, progress);
  const key = recipeKey(recipe, src.version, undefined, extras);
  const dir = await cachedEntry('kernels', key, (d) => buildEntry(d, recipe, apt, src, progress, extras), {
    onWait: () => progress(`waiting for another rootprobe that is building ${key}`),
  });
  if (extras === NO_EXTRAS || (extras.configAdd.length === 0 && extras.fragments.length === 0 && !extras.arch))
    await writePointer(name, { key, version: src.version });
  return loadEntry(dir);
}
