/**
 * Debian's real sysvinit `init` (package `sysvinit-core`) for the guest: the package of the
 * guest's architecture (bookworm's, or the architecture's userland suite where bookworm does
 * not have it), downloaded and unpacked into the cache by harness/guest/packages.ts. Nothing is
 * installed on the host. The image builder's ELF resolver (ImageTree.hostBinary) adds the
 * libraries the binary needs.
 */
import { debianPackage, packageFile } from '../../harness/guest/packages.ts';
import { SetupError } from '../../harness/errors.ts';
import { defaultArch, type ArchSpec } from '../../harness/arch/index.ts';

export const SYSVINIT_SUITE = 'bookworm';
export const SYSVINIT_PACKAGE = 'sysvinit-core';

export interface SysvinitPackage {
  version: string;
  suite: string;
  /** The unpacked package's /sbin/init on the host. */
  init: string;
}

/** The unpacked sysvinit-core of the architecture (cached; the lists are refreshed as the kernel provider does). */
export async function sysvinitPackage(arch: ArchSpec = defaultArch()): Promise<SysvinitPackage> {
  const suite = arch.userlandSuite ?? SYSVINIT_SUITE;
  const pkg = await debianPackage(SYSVINIT_PACKAGE, { suite, debianArch: arch.debianArch });
  const init = await packageFile(pkg, ['sbin/init', 'usr/sbin/init']);
  if (!init) throw new SetupError(`${SYSVINIT_PACKAGE} ${pkg.version} has no /sbin/init (in ${pkg.root})`);
  return { version: pkg.version, suite, init };
}
