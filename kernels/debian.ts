/**
 * Provider `debian/<suite>[:<flavour>]`: the kernel of Debian's `linux-image-<flavour>-amd64`
 * metapackage (a flavour that ends in another architecture's Debian name is the package's
 * whole suffix: `cloud-arm64` is `linux-image-cloud-arm64`, `riscv64` `linux-image-riscv64`), downloaded with a private apt tree and unpacked (never installed) into a
 * cache entry keyed by suite, flavour and exact package version. A small pointer file per
 * suite and flavour lets a later run use the entry without touching the network while the
 * package lists are fresh.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { cacheRoot, cachedEntry, isWholeEntry, sha256File } from '../harness/cache.ts';
import { SetupError } from '../harness/errors.ts';
import { requireTool } from '../harness/host.ts';
import { ownerTag, runGuarded, trackTempDir } from '../harness/lifecycle.ts';
import { AptError, PrivateApt, withAptTree, type PackageInfo } from './apt.ts';
import { debianArchive } from './apt-sources.ts';
import { kernelImageInfo } from './image-format.ts';
import { ARCHES, defaultArch, type ArchSpec } from '../harness/arch/index.ts';
import { writeModuleIndex } from './modules.ts';
import type { Kernel } from './index.ts';
import { loadKernelEntry, readPointer as readEntryPointer, writePointer as writeEntryPointer, type KernelEntryRecord } from './entry.ts';

export const DEBIAN_SUITES = ['bookworm', 'trixie', 'sid'] as const;
export type DebianSuite = (typeof DEBIAN_SUITES)[number];
/** The flavour of `debian/<suite>`: the default architecture's (its cloud kernel). */
export const DEFAULT_FLAVOUR = defaultArch().debianKernel.flavour;

/** What a kernel entry records about itself; paths relative to the entry. */
interface KernelRecord extends KernelEntryRecord {
  suite: string;
  flavour: string;
  packages: Array<{ package: string; version: string }>;
}

interface Pointer {
  key: string;
  /** The lists update time the pointer was resolved from. */
  listsUpdatedAt: number;
}

type Progress = (msg: string) => void;

export function debianId(suite: string, flavour: string): string {
  return flavour === DEFAULT_FLAVOUR ? `debian/${suite}` : `debian/${suite}:${flavour}`;
}

/**
 * The architecture a flavour names: `cloud-arm64`, `arm64`, `rt-arm64` (and `amd64`,
 * `cloud-amd64`) end in a Debian architecture's name; any other flavour is the default architecture's.
 */
export function flavourArch(flavour: string): ArchSpec {
  for (const a of Object.values(ARCHES)) {
    if (flavour === a.debianArch || flavour.endsWith(`-${a.debianArch}`)) return a;
  }
  return defaultArch();
}

/** `linux-image-cloud-amd64`; the generic flavour is `linux-image-amd64`; `cloud-arm64` is `linux-image-cloud-arm64`. */
export function metapackageName(flavour: string): string {
  const arch = flavourArch(flavour);
  if (flavour === arch.debianArch || flavour.endsWith(`-${arch.debianArch}`)) return `linux-image-${flavour}`;
  return flavour === 'generic' ? `linux-image-${arch.debianArch}` : `linux-image-${flavour}-${arch.debianArch}`;
}

/** The first suite whose archive has kernels of the architecture (riscv64: trixie), from the architecture table. */
export function firstSuite(arch: string): string | undefined {
  return ARCHES[arch]?.debianKernel.firstSuite;
}

/** The flavour `debian/<suite>` means for guests of an architecture (`--arch`), from the architecture table. */
export function archFlavour(arch: string): string {
  return ARCHES[arch]?.debianKernel.flavour ?? DEFAULT_FLAVOUR;
}

const pointerName = (suite: string, flavour: string): string => `${suite}-${flavour}`;

function readPointer(suite: string, flavour: string): Promise<Pointer | undefined> {
  return readEntryPointer<Pointer>(pointerName(suite, flavour), (p) => typeof p.listsUpdatedAt === 'number');
}

function writePointer(suite: string, flavour: string, p: Pointer): Promise<void> {
  return writeEntryPointer(pointerName(suite, flavour), p);
}

function entryDir(key: string): string {
  return path.join(cacheRoot(), 'kernels', key);
}

const loadEntry = loadKernelEntry;

/** The cached kernel of a suite and flavour, if there is a whole entry (no network). */
export async function cachedDebianKernel(suite: string, flavour: string): Promise<Kernel | undefined> {
  const p = await readPointer(suite, flavour);
  if (!p || !(await isWholeEntry(entryDir(p.key)))) return undefined;
  return loadEntry(entryDir(p.key));
}

interface Resolved {
  image: PackageInfo;
  release: string;
  packages: PackageInfo[];
}

/** From the metapackage to the versioned image package and everything of the same release it needs. */
async function resolvePackages(apt: PrivateApt, suite: string, flavour: string): Promise<Resolved> {
  const meta = metapackageName(flavour);
  const metaInfo = await apt.show(meta);
  if (!metaInfo) {
    throw new SetupError(
      `Debian ${suite} has no package ${meta} (flavour "${flavour}"). ` +
        `Flavours are e.g. cloud, rt, generic (amd64), cloud-arm64, arm64 (arm64), riscv64 (riscv64, trixie and later); check the name.`,
    );
  }
  const imageName = metaInfo.depends.flat().find((n) => /^linux-image-\d/.test(n) && !n.endsWith('-dbg'));
  if (!imageName) {
    throw new SetupError(
      `${meta} ${metaInfo.version} in Debian ${suite} depends on no linux-image-<version> package; cannot tell which kernel it means.`,
    );
  }
  let image = await apt.show(imageName);
  if (!image && !imageName.endsWith('-unsigned')) image = await apt.show(`${imageName}-unsigned`);
  if (!image) throw new SetupError(`Debian ${suite}: ${meta} depends on ${imageName}, which the package lists do not have.`);
  const release = imageName.replace(/^linux-image-/, '').replace(/-unsigned$/, '');
  // Newer kernels split the image into linux-binary-/linux-modules-/linux-base-<release>: follow
  // every dependency that carries the release in its name.
  const packages: PackageInfo[] = [];
  const seen = new Set<string>();
  const queue = [image];
  while (queue.length) {
    const p = queue.shift()!;
    if (seen.has(p.package)) continue;
    seen.add(p.package);
    packages.push(p);
    for (const alt of p.depends) {
      for (const name of alt) {
        if (seen.has(name) || name.endsWith('-dbg')) continue;
        if (!(name.endsWith(`-${release}`) || name.endsWith(`-${release}-unsigned`))) continue;
        const info = await apt.show(name);
        if (info) queue.push(info);
      }
    }
  }
  return { image, release, packages };
}

function entryKey(suite: string, flavour: string, r: Resolved): string {
  return `debian-${suite}-${flavour}-${r.release}-${r.image.version}`.replace(/[^A-Za-z0-9._-]/g, '_');
}

async function run(cmd: string, args: string[]): Promise<void> {
  // dpkg-deb forks its own tar: the group is ended with rootprobe (lifecycle.ts).
  const r = await runGuarded(cmd, args, { maxBuffer: 16 << 20 });
  if (r.code !== 0) {
    const why = r.stderr.toString('utf8').trim() || (r.signal ? `ended by ${r.signal}` : `exit status ${r.code}`);
    throw new SetupError(`${path.basename(cmd)} ${args.join(' ')} failed: ${why}`);
  }
}

async function firstExisting(paths: string[]): Promise<string | undefined> {
  for (const p of paths) {
    if (
      await fs.stat(p).then(
        () => true,
        () => false,
      )
    )
      return p;
  }
  return undefined;
}

function mb(bytes: number): string {
  return `${Math.max(1, Math.round(bytes / 1e6))} MB`;
}

/** Downloads and unpacks the packages into `dir` (a cache entry being built). */
async function buildEntry(dir: string, apt: PrivateApt, suite: string, flavour: string, r: Resolved, progress: Progress): Promise<void> {
  const dpkgDeb = requireTool('dpkg-deb', 'to unpack Debian kernel packages');
  // Named with its owner (lifecycle.ownerTag) and removed on a signal; one left by a killed
  // rootprobe is swept at the next start (harness/sweep.ts).
  const dl = await fs.mkdtemp(path.join(apt.dir, `download-${ownerTag()}-`));
  const untrack = trackTempDir(dl);
  try {
    const total = r.packages.reduce((s, p) => s + p.size, 0);
    progress(`downloading ${r.packages.map((p) => p.package).join(', ')} ${r.image.version} (${mb(total)})`);
    const debs = await apt.download(r.packages, dl);
    if (debs.length !== r.packages.length) {
      throw new SetupError(`apt-get download gave ${debs.length} files for ${r.packages.length} packages in ${dl}`);
    }
    progress(`unpacking ${r.image.package}`);
    const root = path.join(dir, 'root');
    await fs.mkdir(root);
    for (const deb of debs) await run(dpkgDeb, ['-x', deb, root]);
  } finally {
    await fs.rm(dl, { recursive: true, force: true });
    untrack();
  }

  const root = path.join(dir, 'root');
  const rel = r.release;
  const modulesDir = await firstExisting([path.join(root, 'usr/lib/modules', rel), path.join(root, 'lib/modules', rel)]);
  // riscv64's package has its (uncompressed) Image as /boot/vmlinux-<release>.
  const vmlinuz = await firstExisting([
    path.join(root, 'boot', `vmlinuz-${rel}`),
    path.join(root, 'boot', `vmlinux-${rel}`),
    ...(modulesDir ? [path.join(modulesDir, 'vmlinuz')] : []),
  ]);
  if (!vmlinuz) {
    throw new SetupError(
      `the packages ${r.packages.map((p) => `${p.package} ${p.version}`).join(', ')} hold no boot/vmlinuz-${rel} ` +
        `nor usr/lib/modules/${rel}/vmlinuz; rootprobe does not know this layout.`,
    );
  }
  const config = await firstExisting([path.join(root, 'boot', `config-${rel}`), ...(modulesDir ? [path.join(modulesDir, 'config')] : [])]);
  const arch = flavourArch(flavour);
  const info = await kernelImageInfo(vmlinuz, arch);
  if ('problem' in info) throw new SetupError(`${vmlinuz} from ${r.image.package} ${r.image.version}: ${info.problem}`);
  if (modulesDir) {
    progress('indexing modules');
    await writeModuleIndex(modulesDir);
  }
  const record: KernelRecord = {
    id: debianId(suite, flavour),
    suite,
    flavour,
    arch: arch.name,
    release: info.release ?? rel,
    vmlinuz: path.relative(dir, vmlinuz),
    modulesDir: modulesDir && path.relative(dir, modulesDir),
    configPath: config && path.relative(dir, config),
    description: `Debian ${suite} ${r.image.package} ${r.image.version}`,
    sha256: await sha256File(vmlinuz),
    packages: r.packages.map((p) => ({ package: p.package, version: p.version })),
  };
  await fs.writeFile(path.join(dir, 'kernel.json'), JSON.stringify(record, null, 1));
}

/**
 * The kernel of `debian/<suite>[:<flavour>]`. No network when a whole entry exists and the
 * package lists are fresh; lists are refreshed after LISTS_MAX_AGE_MS, and when the recorded
 * version has gone from the archive.
 */
export async function resolveDebianKernel(suite: string, flavour: string, onProgress?: Progress): Promise<Kernel> {
  const progress: Progress = onProgress ?? (() => {});
  const archive = await debianArchive();
  const apt = new PrivateApt(suite, archive, flavourArch(flavour).debianArch);
  const pointer = await readPointer(suite, flavour);
  const listsAt = await apt.listsUpdatedAt();
  const fresh = await apt.listsFresh();
  if (pointer && fresh && listsAt === pointer.listsUpdatedAt && (await isWholeEntry(entryDir(pointer.key)))) {
    return loadEntry(entryDir(pointer.key));
  }
  return withAptTree(
    apt,
    () => fetchDebianKernel(apt, suite, flavour, progress),
    () => progress(`waiting for another rootprobe that is using the package lists for ${suite}`),
  );
}

async function fetchDebianKernel(apt: PrivateApt, suite: string, flavour: string, progress: Progress): Promise<Kernel> {
  // Another process may have done the work while this one waited for the tree.
  const pointer = await readPointer(suite, flavour);
  const fresh = await apt.listsFresh();
  if (pointer && fresh && (await apt.listsUpdatedAt()) === pointer.listsUpdatedAt && (await isWholeEntry(entryDir(pointer.key)))) {
    return loadEntry(entryDir(pointer.key));
  }

  if (!fresh) {
    progress(`updating package lists for ${suite}`);
    try {
      await apt.update();
    } catch (e) {
      const cached = await cachedDebianKernel(suite, flavour);
      if (cached) {
        progress(
          `could not update the package lists for ${suite} (${(e as Error).message.split('\n')[0]}); using the cached ${cached.description}`,
        );
        return cached;
      }
      throw e;
    }
  }

  const attempt = async (): Promise<Kernel> => {
    const r = await resolvePackages(apt, suite, flavour);
    const key = entryKey(suite, flavour, r);
    const dir = await cachedEntry('kernels', key, (d) => buildEntry(d, apt, suite, flavour, r, progress), {
      onWait: () => progress(`waiting for another rootprobe that is fetching ${r.image.package}`),
    });
    await writePointer(suite, flavour, { key, listsUpdatedAt: (await apt.listsUpdatedAt()) ?? Date.now() });
    return loadEntry(dir);
  };
  try {
    return await attempt();
  } catch (e) {
    // Lists a few hours old may name a version the archive has since dropped (404).
    if (fresh && e instanceof AptError && /404|Not Found|Failed to fetch/i.test(e.stderr)) {
      progress(`updating package lists for ${suite} (the listed version is gone)`);
      await apt.update();
      return attempt();
    }
    throw e;
  }
}
