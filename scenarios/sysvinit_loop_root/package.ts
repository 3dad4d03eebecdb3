/**
 * Debian's real sysvinit `init` (package `sysvinit-core` of bookworm) for the guest: looked up
 * and downloaded with the private apt tree the kernel provider uses (kernels/apt.ts), unpacked
 * with `dpkg-deb -x` into a cache entry keyed by the package's exact version. Nothing is
 * installed on the host. The image builder's ELF resolver (ImageTree.hostBinary) adds the
 * libraries the binary needs.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { cachedEntry, cacheRoot, isWholeEntry, listEntries } from '../../harness/cache.ts';
import { SetupError } from '../../harness/errors.ts';
import { requireTool } from '../../harness/host.ts';
import { ownerTag, runGuarded, trackTempDir } from '../../harness/lifecycle.ts';
import { PrivateApt, withAptTree } from '../../kernels/apt.ts';
import { debianArchive } from '../../kernels/apt-sources.ts';

export const SYSVINIT_SUITE = 'bookworm';
export const SYSVINIT_PACKAGE = 'sysvinit-core';

export interface SysvinitPackage {
  version: string;
  /** The unpacked package's /sbin/init on the host. */
  init: string;
}

const memo = new Map<string, Promise<SysvinitPackage>>();

/** The unpacked sysvinit-core of bookworm (cached; the lists are refreshed as the kernel provider does). */
export function sysvinitPackage(): Promise<SysvinitPackage> {
  let p = memo.get(SYSVINIT_SUITE);
  if (!p) {
    p = fetchSysvinit();
    memo.set(SYSVINIT_SUITE, p);
    p.catch(() => memo.delete(SYSVINIT_SUITE));
  }
  return p;
}

async function fetchSysvinit(): Promise<SysvinitPackage> {
  const apt = new PrivateApt(SYSVINIT_SUITE, await debianArchive());
  return withAptTree(apt, async () => {
    if (!(await apt.listsFresh())) {
      try {
        await apt.update();
      } catch (e) {
        // Offline: the newest version already unpacked will do, as the kernel provider does.
        const prefix = `${SYSVINIT_PACKAGE}-${SYSVINIT_SUITE}-`;
        const key = (await listEntries('packages')).filter((k) => k.startsWith(prefix)).pop();
        if (!key) throw e;
        return { version: key.slice(prefix.length), init: path.join(cacheRoot(), 'packages', key, 'root/sbin/init') };
      }
    }
    const info = await apt.show(SYSVINIT_PACKAGE);
    if (!info) throw new SetupError(`Debian ${SYSVINIT_SUITE}'s package lists have no ${SYSVINIT_PACKAGE}.`);
    const key = `${SYSVINIT_PACKAGE}-${SYSVINIT_SUITE}-${info.version}`.replace(/[^A-Za-z0-9._-]/g, '_');
    const dir = await cachedEntry('packages', key, async (d) => {
      const dpkgDeb = requireTool('dpkg-deb', `to unpack ${SYSVINIT_PACKAGE}`);
      const dl = await fs.mkdtemp(path.join(apt.dir, `download-${ownerTag()}-`));
      const untrack = trackTempDir(dl);
      try {
        const debs = await apt.download([info], dl);
        if (debs.length !== 1) throw new SetupError(`apt-get download ${SYSVINIT_PACKAGE} gave ${debs.length} files in ${dl}`);
        const r = await runGuarded(dpkgDeb, ['-x', debs[0], path.join(d, 'root')], { maxBuffer: 16 << 20 });
        if (r.code !== 0) throw new SetupError(`dpkg-deb -x ${debs[0]} failed: ${r.stderr.toString('utf8').trim()}`);
      } finally {
        await fs.rm(dl, { recursive: true, force: true });
        untrack();
      }
    });
    const init = path.join(dir, 'root/sbin/init');
    if (!(await isWholeEntry(dir)) || !(await fs.stat(init).catch(() => undefined))?.isFile()) {
      throw new SetupError(`${SYSVINIT_PACKAGE} ${info.version} has no /sbin/init (in ${dir})`);
    }
    return { version: info.version, init };
  });
}
