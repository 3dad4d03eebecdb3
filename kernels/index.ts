/**
 * Kernels: where a scenario's kernel comes from. A kernel is a bzImage, maybe its modules
 * folder, maybe its .config. Specs:
 *   debian/<suite>[:<flavour>]            Debian's linux-image-<flavour>-amd64 (flavour default cloud)
 *   file:<path>[,modules=<dir>,config=<file>]   a bzImage on disk
 *   build/<recipe>                        built from source by kernels/recipes/<recipe>/ (kernels/build.ts)
 */
import * as path from 'node:path';
import { UsageError } from '../harness/errors.ts';
import type { KernelConfig } from './config.ts';
import { DEBIAN_SUITES, DEFAULT_FLAVOUR, cachedDebianKernel, debianId, resolveDebianKernel } from './debian.ts';
import { resolveFileKernel } from './file.ts';
import { cachedBuildKernel, listRecipes, loadRecipe, resolveBuildKernel } from './build.ts';

export { checkFeatures, parseKernelConfig, FEATURES, type Feature, type KernelConfig } from './config.ts';
export { moduleClosure, readModule, type ModuleFile } from './modules.ts';

export interface Kernel {
  /** Canonical spec, e.g. 'debian/bookworm', 'debian/sid:rt', 'file:/abs/bzImage'. */
  id: string;
  /** What `uname -r` says, e.g. '6.1.0-50-cloud-amd64'. */
  release: string;
  /** Absolute path of the bzImage. */
  vmlinuz: string;
  /** Absolute path of lib/modules/<release>, if any. */
  modulesDir?: string;
  /** Absolute path of the .config, if known. */
  configPath?: string;
  config?: KernelConfig;
  /** E.g. 'Debian bookworm linux-image-6.1.0-50-cloud-amd64 6.1.176-1'. */
  description: string;
  /** sha256 of the bzImage, for reports. */
  sha256: string;
}

export type KernelSpec =
  | { kind: 'debian'; id: string; suite: string; flavour: string }
  | { kind: 'file'; id: string; path: string; modules?: string; config?: string }
  | { kind: 'build'; id: string; recipe: string };

export const KNOWN_KERNELS: string[] = [...DEBIAN_SUITES.map((s) => `debian/${s}`), ...listRecipes().map((r) => `build/${r}`)];

const FORMS =
  'Accepted forms: debian/<suite>[:<flavour>] with suite ' +
  `${DEBIAN_SUITES.join(', ')} and flavour e.g. cloud (the default), rt, generic; ` +
  'or file:<path-to-bzImage>[,modules=<lib/modules/release dir>][,config=<.config file>]; ' +
  `or build/<recipe> with recipe ${listRecipes().join(', ') || '(none)'} (kernels/recipes/).`;

/** Parses a kernel spec; UsageError listing the accepted forms for a bad one. */
export function parseKernelSpec(spec: string): KernelSpec {
  const s = spec.trim();
  if (s.startsWith('debian/')) {
    const m = /^debian\/([a-z]+)(?::([a-z0-9]+))?$/.exec(s);
    if (!m) throw new UsageError(`kernel "${spec}" is not a valid spec. ${FORMS}`);
    const suite = m[1];
    if (!(DEBIAN_SUITES as readonly string[]).includes(suite)) {
      throw new UsageError(`kernel "${spec}": unknown Debian suite "${suite}". ${FORMS}`);
    }
    const flavour = m[2] ?? DEFAULT_FLAVOUR;
    return { kind: 'debian', id: debianId(suite, flavour), suite, flavour };
  }
  if (s.startsWith('file:')) {
    const parts = s.slice('file:'.length).split(/,(?=(?:modules|config)=)/);
    const file = parts.shift() ?? '';
    if (!file) throw new UsageError(`kernel "${spec}" names no file. ${FORMS}`);
    const out: { kind: 'file'; id: string; path: string; modules?: string; config?: string } = {
      kind: 'file',
      id: '',
      path: path.resolve(file),
    };
    for (const p of parts) {
      const eq = p.indexOf('=');
      const k = p.slice(0, eq) as 'modules' | 'config';
      const v = p.slice(eq + 1);
      if (!v) throw new UsageError(`kernel "${spec}": ${k}= needs a path. ${FORMS}`);
      if (out[k] !== undefined) throw new UsageError(`kernel "${spec}": ${k}= given twice. ${FORMS}`);
      out[k] = path.resolve(v);
    }
    out.id = `file:${out.path}${out.modules ? `,modules=${out.modules}` : ''}${out.config ? `,config=${out.config}` : ''}`;
    return out;
  }
  if (s.startsWith('build/')) {
    const recipe = s.slice('build/'.length);
    loadRecipe(recipe); // UsageError listing the known recipes
    return { kind: 'build', id: `build/${recipe}`, recipe };
  }
  throw new UsageError(`kernel "${spec}" is not a known kernel spec. ${FORMS}`);
}

/** The kernel a spec means, fetched into the cache if needed. */
export async function resolveKernel(spec: string, opts: { onProgress?: (msg: string) => void } = {}): Promise<Kernel> {
  const k = parseKernelSpec(spec);
  if (k.kind === 'debian') return resolveDebianKernel(k.suite, k.flavour, opts.onProgress);
  if (k.kind === 'build') return resolveBuildKernel(k.recipe, opts.onProgress);
  return resolveFileKernel(k, k.id);
}

/** The known kernels and whether each is in the cache (no network). */
export async function listKernels(): Promise<Array<{ id: string; cached: boolean; release?: string; description?: string }>> {
  const out: Array<{ id: string; cached: boolean; release?: string; description?: string }> = [];
  for (const id of KNOWN_KERNELS) {
    const k = parseKernelSpec(id);
    if (k.kind === 'file') continue;
    const cached = await (k.kind === 'build' ? cachedBuildKernel(k.recipe) : cachedDebianKernel(k.suite, k.flavour)).catch(() => undefined);
    out.push(cached ? { id, cached: true, release: cached.release, description: cached.description } : { id, cached: false });
  }
  return out;
}
