/**
 * The architectures rootprobe boots: one file each, one line here. An unknown name is an
 * error listing the known ones.
 */
import { UsageError } from '../errors.ts';
import type { ArchSpec } from './types.ts';
import { x86_64 } from './x86_64.ts';

export type { ArchSpec } from './types.ts';

export const ARCHES: Record<string, ArchSpec> = {
  x86_64,
};

/** The architecture guests get when nothing names one. */
export const DEFAULT_ARCH = 'x86_64';

export function archByName(name: string = DEFAULT_ARCH): ArchSpec {
  const a = ARCHES[name];
  if (!a) throw new UsageError(`unknown architecture '${name}'; known: ${Object.keys(ARCHES).join(', ')}`);
  return a;
}

/** The architecture of kernels and images that do not say (today every one). */
export function defaultArch(): ArchSpec {
  return archByName(DEFAULT_ARCH);
}
