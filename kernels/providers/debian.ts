/** `debian/<suite>[:<flavour>]`: Debian's kernel packages (kernels/debian.ts). */
import { UsageError } from '../../harness/errors.ts';
import { DEBIAN_SUITES, DEFAULT_FLAVOUR, cachedDebianKernel, debianId, resolveDebianKernel } from '../debian.ts';
import type { KernelProvider } from '../provider.ts';

export interface DebianSpec {
  kind: 'debian';
  id: string;
  suite: string;
  flavour: string;
  [field: string]: unknown;
}

export const debianProvider: KernelProvider<DebianSpec> = {
  kind: 'debian',
  forms: ['debian/<suite>[:<flavour>]'],
  summary: `Debian's kernel of a suite (${DEBIAN_SUITES.join(', ')}); flavour e.g. cloud (the default), rt, generic`,
  claims: (s) => s.startsWith('debian/'),
  parse(s) {
    const m = /^debian\/([a-z]+)(?::([a-z0-9]+))?$/.exec(s);
    if (!m) throw new UsageError(`kernel "${s}" is not a valid spec.`);
    const suite = m[1];
    if (!(DEBIAN_SUITES as readonly string[]).includes(suite)) throw new UsageError(`kernel "${s}": unknown Debian suite "${suite}".`);
    const flavour = m[2] ?? DEFAULT_FLAVOUR;
    return { kind: 'debian', id: debianId(suite, flavour), suite, flavour };
  },
  resolve: (k, onProgress) => resolveDebianKernel(k.suite, k.flavour, onProgress),
  cached: (k) => cachedDebianKernel(k.suite, k.flavour),
  known: () => DEBIAN_SUITES.map((s) => `debian/${s}`),
};
