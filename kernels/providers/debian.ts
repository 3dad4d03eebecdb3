/** `debian/<suite>[:<flavour>]`: Debian's kernel packages (kernels/debian.ts). */
import { UsageError } from '../../harness/errors.ts';
import { nearestKey } from '../../harness/nearest.ts';
import {
  archFlavour,
  DEBIAN_SUITES,
  DEFAULT_FLAVOUR,
  firstSuite,
  cachedDebianKernel,
  debianId,
  flavourArch,
  resolveDebianKernel,
} from '../debian.ts';
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
  summary:
    `Debian's kernel of a suite (${DEBIAN_SUITES.join(', ')}); flavour e.g. cloud (the default), rt, generic; ` +
    'another architecture by its package suffix: cloud-arm64, arm64, riscv64 (trixie and later)',
  claims: (s) => s.startsWith('debian/'),
  parse(s) {
    const m = /^debian\/([a-z]+)(?::([a-z0-9]+(?:-[a-z0-9]+)*))?$/.exec(s);
    if (!m) throw new UsageError(`kernel "${s}" is not a valid spec.`);
    const suite = m[1];
    if (!(DEBIAN_SUITES as readonly string[]).includes(suite)) {
      const near = nearestKey(suite, [...DEBIAN_SUITES]);
      throw new UsageError(`kernel "${s}": unknown Debian suite "${suite}"${near ? ` (did you mean ${near}?)` : ''}.`);
    }
    const flavour = m[2] ?? DEFAULT_FLAVOUR;
    const arch = flavourArch(flavour);
    const first = firstSuite(arch.name);
    if (first && DEBIAN_SUITES.indexOf(suite as never) < DEBIAN_SUITES.indexOf(first as never)) {
      throw new UsageError(`kernel "${s}": Debian ${suite} has no ${arch.debianArch} kernels (the architecture is in ${first} and later).`);
    }
    return { kind: 'debian', id: debianId(suite, flavour), suite, flavour, arch: arch.name };
  },
  resolve: (k, onProgress) => resolveDebianKernel(k.suite, k.flavour, onProgress),
  cached: (k) => cachedDebianKernel(k.suite, k.flavour),
  forArch(k, arch, opts) {
    if (k.arch === arch) return k.id;
    if (k.flavour !== DEFAULT_FLAVOUR)
      throw new UsageError(
        `kernel "${k.id}" is a kernel for ${k.arch}, not for ${arch} (--arch ${arch}); drop the flavour or name one for ${arch}.`,
      );
    const first = firstSuite(arch);
    const suite =
      opts?.asDefault && first && DEBIAN_SUITES.indexOf(k.suite as never) < DEBIAN_SUITES.indexOf(first as never) ? first : k.suite;
    return debianProvider.parse(debianId(suite, archFlavour(arch))).id;
  },
  known: () => [...DEBIAN_SUITES.map((s) => `debian/${s}`), 'debian/bookworm:cloud-arm64', 'debian/trixie:riscv64'],
};
