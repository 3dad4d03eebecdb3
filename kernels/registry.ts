/**
 * The kernel providers rootprobe knows, one line each. A new kernel source is a module in
 * kernels/providers/ and a line here (or, for a test or a plug-in, registerProvider()).
 */
import { UsageError } from '../harness/errors.ts';
import type { KernelProvider, ParsedKernelSpec } from './provider.ts';
import { debianProvider } from './providers/debian.ts';
import { buildProvider } from './providers/build.ts';
import { fileProvider } from './providers/file.ts';
import { gitProvider } from './providers/git.ts';

const PROVIDERS: KernelProvider[] = [
  debianProvider as unknown as KernelProvider,
  buildProvider as unknown as KernelProvider,
  fileProvider as unknown as KernelProvider,
  gitProvider as unknown as KernelProvider,
];

export function providers(): readonly KernelProvider[] {
  return PROVIDERS;
}

/** Adds a provider (its kind must be new); returns a function that takes it away again. */
export function registerProvider<S extends ParsedKernelSpec>(p: KernelProvider<S>): () => void {
  if (PROVIDERS.some((q) => q.kind === p.kind)) throw new Error(`a kernel provider of kind '${p.kind}' is registered already`);
  const q = p as unknown as KernelProvider;
  PROVIDERS.push(q);
  return () => {
    const i = PROVIDERS.indexOf(q);
    if (i >= 0) PROVIDERS.splice(i, 1);
  };
}

/** The accepted forms, for usage text and errors: one per provider. */
export function acceptedForms(): string {
  return `Accepted forms: ${PROVIDERS.map((p) => `${p.forms.join(' or ')} (${p.summary})`).join('; or ')}.`;
}

/** The provider of a spec and the spec parsed; a UsageError with the accepted forms for a bad one. */
export function providerOf(spec: string): { provider: KernelProvider; parsed: ParsedKernelSpec } {
  const s = spec.trim();
  const provider = PROVIDERS.find((p) => p.claims(s));
  if (!provider) throw new UsageError(`kernel "${spec}" is not a known kernel spec. ${acceptedForms()}`);
  try {
    return { provider, parsed: provider.parse(s) };
  } catch (e) {
    if (e instanceof UsageError && !e.message.includes('Accepted forms')) throw new UsageError(`${e.message} ${acceptedForms()}`);
    throw e;
  }
}

/** Every spec the providers list (for `rootprobe kernels` and the CLI's usage). */
export function knownKernels(): string[] {
  return PROVIDERS.flatMap((p) => p.known?.() ?? []);
}
