/**
 * A kernel provider: where kernels of one kind come from (Debian's archive, a recipe built
 * from source, a file of the user's). One module each under kernels/providers/, one line in
 * kernels/registry.ts. The CLI's usage text, `rootprobe kernels` and the unknown-kernel error
 * are made from the registry.
 */
import type { Kernel } from './index.ts';

/** A parsed spec: which provider, the canonical id, and the provider's own fields. */
export interface ParsedKernelSpec {
  kind: string;
  id: string;
  [field: string]: unknown;
}

export type Progress = (msg: string) => void;

export interface KernelProvider<S extends ParsedKernelSpec = ParsedKernelSpec> {
  /** The `kind` of its specs: 'debian'. */
  kind: string;
  /** The spec forms it takes, for usage text: 'debian/<suite>[:<flavour>]'. */
  forms: string[];
  /** What it is, in a few words, for usage text and `rootprobe kernels`. */
  summary: string;
  /** The spec is of this provider (by its prefix); parse() then accepts it or says why not. */
  claims(spec: string): boolean;
  /** Parses a claimed spec; a UsageError naming what is wrong (the caller adds the forms). */
  parse(spec: string): S;
  /** The kernel, fetched or built into the cache if needed. */
  resolve(spec: S, onProgress?: Progress): Promise<Kernel>;
  /** The kernel if it is cached now, without the network (for `rootprobe kernels`). */
  cached?(spec: S): Promise<Kernel | undefined>;
  /** The specs `rootprobe kernels` lists for it. */
  known?(): string[];
  /**
   * The spec for guests of the architecture `arch` (`--arch`): the spec itself when it already
   * is, another spec of the same kernel for that architecture, or a UsageError when it names
   * another architecture. `asDefault`: the spec is the default kernel, not one the user named,
   * so it may become another kernel that has the architecture. Absent: the kernel itself says
   * (a file's image).
   */
  forArch?(spec: S, arch: string, opts?: { asDefault?: boolean }): string;
}
