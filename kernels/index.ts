/**
 * Kernels: where a scenario's kernel comes from. A kernel is an image, maybe its modules
 * folder, maybe its .config. Each kind of spec is a provider (kernels/providers/, listed in
 * kernels/registry.ts): debian/<suite>[:<flavour>], build/<recipe>, file:<path>[,...].
 */
import type { KernelConfig } from './config.ts';
import { knownKernels, providerOf, providers } from './registry.ts';
import type { ParsedKernelSpec } from './provider.ts';
import { archByName } from '../harness/arch/index.ts';

export { acceptedForms, providers, registerProvider } from './registry.ts';
export type { KernelProvider, ParsedKernelSpec } from './provider.ts';
export { checkFeatures, parseKernelConfig, FEATURES, type Feature, type KernelConfig } from './config.ts';
export { moduleClosure, readModule, type ModuleFile } from './modules.ts';

export interface Kernel {
  /** Canonical spec, e.g. 'debian/bookworm', 'debian/sid:rt', 'file:/abs/bzImage'. */
  id: string;
  /** What `uname -r` says, e.g. '6.1.0-50-cloud-amd64'. */
  release: string;
  /** Absolute path of the kernel image (a bzImage on x86-64, an Image on arm64 and riscv64). */
  vmlinuz: string;
  /** The architecture it boots (harness/arch/); absent: x86_64. */
  arch?: string;
  /** Absolute path of lib/modules/<release>, if any. */
  modulesDir?: string;
  /** Absolute path of the .config, if known. */
  configPath?: string;
  config?: KernelConfig;
  /** E.g. 'Debian bookworm linux-image-6.1.0-50-cloud-amd64 6.1.176-1'. */
  description: string;
  /** sha256 of the bzImage, for reports. */
  sha256: string;
  /** The kernel with its symbols, for a debugger (git: builds have it). */
  vmlinux?: string;
  /** Where a kernel built from a git tree came from (git: builds). */
  git?: { tree: string; commit: string; subject?: string; rev: string; remoteUrl?: string };
}

export type KernelSpec = ParsedKernelSpec;

/** The kernels the providers list (Debian suites, recipes). */
export const KNOWN_KERNELS: string[] = knownKernels();

/** Parses a kernel spec; UsageError listing the accepted forms for a bad one. */
export function parseKernelSpec(spec: string): KernelSpec {
  return providerOf(spec).parsed;
}

/**
 * The kernel specs of a command line: those given (or the default kernel, that of `arch` when
 * it names one), each made for `arch` by its provider (`--arch`): debian/<suite> takes the
 * architecture's flavour, build/ and git: kernels are cross-built. UsageError for a spec of
 * another architecture than the one asked for.
 */
export function kernelsForArch(given: string[] | undefined, arch: string | undefined, fallback: string): string[] {
  if (arch === undefined) return given?.length ? given : [fallback];
  archByName(arch); // an unknown name lists the known ones
  const asDefault = !given?.length;
  return (asDefault ? [fallback] : given).map((s) => {
    const { provider, parsed } = providerOf(s);
    return provider.forArch ? providerOf(provider.forArch(parsed, arch, { asDefault })).parsed.id : s;
  });
}

/** The kernel a spec means, fetched into the cache if needed. */
export async function resolveKernel(spec: string, opts: { onProgress?: (msg: string) => void } = {}): Promise<Kernel> {
  const { provider, parsed } = providerOf(spec);
  return provider.resolve(parsed, opts.onProgress);
}

/** The known kernels and whether each is in the cache (no network). */
export async function listKernels(): Promise<Array<{ id: string; cached: boolean; release?: string; description?: string }>> {
  const out: Array<{ id: string; cached: boolean; release?: string; description?: string }> = [];
  for (const p of providers()) {
    for (const id of p.known?.() ?? []) {
      const cached = p.cached ? await p.cached(p.parse(id)).catch(() => undefined) : undefined;
      out.push(cached ? { id, cached: true, release: cached.release, description: cached.description } : { id, cached: false });
    }
  }
  return out;
}
