/**
 * The architectures rootprobe boots: one file each, one line here. An unknown name is an
 * error listing the known ones.
 */
import { UsageError } from '../errors.ts';
import type { ArchSpec } from './types.ts';
import { arm64 } from './arm64.ts';
import { riscv64 } from './riscv64.ts';
import { x86_64 } from './x86_64.ts';

export type { ArchSpec } from './types.ts';

export const ARCHES: Record<string, ArchSpec> = {
  x86_64,
  arm64,
  riscv64,
};

/** The architecture guests get when nothing names one. */
export const DEFAULT_ARCH = 'x86_64';

export function archByName(name: string = DEFAULT_ARCH): ArchSpec {
  const a = ARCHES[name];
  if (!a) throw new UsageError(`unknown architecture '${name}'; known: ${Object.keys(ARCHES).join(', ')}`);
  return a;
}

/** The architecture of kernels and images that do not say. */
export function defaultArch(): ArchSpec {
  return archByName(DEFAULT_ARCH);
}

/** The architecture a kernel boots (its `arch`, x86-64 when it does not say). */
export function archOf(kernel: { arch?: string }): ArchSpec {
  return archByName(kernel.arch ?? DEFAULT_ARCH);
}

/** The architecture of this host, if rootprobe has it (KVM is possible only for guests of it). */
export function hostArchSpec(): ArchSpec | undefined {
  return Object.values(ARCHES).find((a) => a.hostArch === process.arch);
}
