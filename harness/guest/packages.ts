/**
 * One Debian package of any suite and architecture, downloaded with the private apt tree the
 * kernel provider uses (kernels/apt.ts) and unpacked with `dpkg-deb -x` into a cache entry
 * keyed by name, suite, architecture and exact version (`packages/<key>/root`). Nothing is
 * installed on the host. Offline, the newest version already unpacked will do, as the kernel
 * provider does. The guest userland of a foreign architecture (busybox-static, the libraries
 * of the host tools a scenario copies in, sysvinit's init) comes from here.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { cachedEntry, cacheRoot, isWholeEntry, listEntries } from '../cache.ts';
import { SetupError } from '../errors.ts';
import { requireTool } from '../host.ts';
import { ownerTag, runGuarded, trackTempDir } from '../lifecycle.ts';
import { PrivateApt, withAptTree } from '../../kernels/apt.ts';
import { debianArchive } from '../../kernels/apt-sources.ts';

export interface UnpackedPackage {
  package: string;
  version: string;
  suite: string;
  /** Debian's architecture name (amd64, arm64, riscv64). */
  debianArch: string;
  /** The unpacked package's files (its `/`). */
  root: string;
}

const memo = new Map<string, Promise<UnpackedPackage | undefined>>();

const keyPrefix = (name: string, suite: string, debianArch: string): string =>
  `${name}-${suite}${debianArch === 'amd64' ? '' : `-${debianArch}`}-`.replace(/[^A-Za-z0-9._-]/g, '_');

/**
 * The unpacked package `name` of `suite` for `debianArch` (cached; the lists are refreshed when
 * older than a day), or undefined when the suite has no such package (`optional`), else a SetupError.
 */
export function debianPackage(name: string, opts: { suite: string; debianArch?: string }): Promise<UnpackedPackage>;
export function debianPackage(
  name: string,
  opts: { suite: string; debianArch?: string; optional: true },
): Promise<UnpackedPackage | undefined>;
export function debianPackage(
  name: string,
  opts: { suite: string; debianArch?: string; optional?: boolean },
): Promise<UnpackedPackage | undefined> {
  const debianArch = opts.debianArch ?? 'amd64';
  const k = `${name}\0${opts.suite}\0${debianArch}`;
  let p = memo.get(k);
  if (!p) {
    p = fetchPackage(name, opts.suite, debianArch);
    memo.set(k, p);
    p.catch(() => memo.delete(k));
  }
  return p.then((r) => {
    if (!r && !opts.optional) throw new SetupError(`Debian ${opts.suite}'s package lists for ${debianArch} have no ${name}.`);
    return r;
  });
}

async function fetchPackage(name: string, suite: string, debianArch: string): Promise<UnpackedPackage | undefined> {
  const apt = new PrivateApt(suite, await debianArchive(), debianArch);
  const prefix = keyPrefix(name, suite, debianArch);
  const unpacked = (key: string): UnpackedPackage => ({
    package: name,
    version: key.slice(prefix.length),
    suite,
    debianArch,
    root: path.join(cacheRoot(), 'packages', key, 'root'),
  });
  return withAptTree(apt, async () => {
    if (!(await apt.listsFresh())) {
      try {
        await apt.update();
      } catch (e) {
        const key = (await listEntries('packages')).filter((k) => k.startsWith(prefix)).pop();
        if (!key) throw e;
        return unpacked(key);
      }
    }
    // Which version the lists name, remembered per state of the lists: `apt-cache show` costs
    // about a second per package, and a run of a foreign guest asks for several (measured by
    // `npm run bench -- --only arch`: arm64 switch_root took 1.8x its qemu.sh with it).
    const listsAt = await apt.listsUpdatedAt();
    const memoFile = path.join(apt.dir, 'resolved', `${prefix.replace(/-$/, '')}.json`);
    const known = await fs
      .readFile(memoFile, 'utf8')
      .then((t) => JSON.parse(t) as { listsAt?: number; key?: string; version?: string })
      .catch(() => undefined);
    if (known?.key && known.version && known.listsAt === listsAt && known.key.startsWith(prefix)) {
      const hit = path.join(cacheRoot(), 'packages', known.key);
      if (await isWholeEntry(hit)) return { ...unpacked(known.key), version: known.version };
    }
    const info = await apt.show(name);
    if (!info || info.package !== name) return undefined;
    const key = `${prefix}${info.version.replace(/[^A-Za-z0-9._-]/g, '_')}`;
    const dir = await cachedEntry('packages', key, async (d) => {
      const dpkgDeb = requireTool('dpkg-deb', `to unpack ${name}`);
      const dl = await fs.mkdtemp(path.join(apt.dir, `download-${ownerTag()}-`));
      const untrack = trackTempDir(dl);
      try {
        const debs = await apt.download([info], dl);
        if (debs.length !== 1) throw new SetupError(`apt-get download ${name} gave ${debs.length} files in ${dl}`);
        const r = await runGuarded(dpkgDeb, ['-x', debs[0], path.join(d, 'root')], { maxBuffer: 16 << 20 });
        if (r.code !== 0) throw new SetupError(`dpkg-deb -x ${debs[0]} failed: ${r.stderr.toString('utf8').trim()}`);
      } finally {
        await fs.rm(dl, { recursive: true, force: true });
        untrack();
      }
    });
    if (!(await isWholeEntry(dir))) throw new SetupError(`the cache entry of ${name} ${info.version} (${dir}) is not whole`);
    if (listsAt !== undefined) {
      await fs.mkdir(path.dirname(memoFile), { recursive: true });
      const tmp = `${memoFile}.${ownerTag()}.tmp`;
      await fs.writeFile(tmp, JSON.stringify({ listsAt, key, version: info.version }));
      await fs.rename(tmp, memoFile);
    }
    return { ...unpacked(key), version: info.version };
  });
}

/** The first of `rels` (paths inside the package, e.g. usr-merged or not) that the package has. */
export async function packageFile(pkg: UnpackedPackage, rels: string[]): Promise<string | undefined> {
  for (const rel of rels) {
    const p = path.join(pkg.root, rel);
    if ((await fs.lstat(p).catch(() => undefined))?.isFile()) return p;
  }
  return undefined;
}
