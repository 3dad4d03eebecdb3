/**
 * bind_root (seed 002): the `mount --bind / /` workaround, as a container runtime would use
 * it on a system that runs from its initramfs, and what the seed says it costs: "that defeats
 * one of the purposes of using pivot_root in the cloned containers: get rid of host root
 * filesystem".
 *
 * The initramfs never switches to a disk. In a mount namespace of its own, a runtime tries
 * pivot_root into a container's root (a tmpfs) straight from the host's root (`direct`); in a
 * second one it first does `mount --bind / /`, starts the container in that bind (`bound`),
 * which pivots and detaches its old root (`container`); the runtime itself, whose root is
 * still the host's, then reads the namespace's mount tree (`runtime`).
 *
 * What must hold, from the readback:
 *  - the container's `/` is its tmpfs and its old root is gone from its view;
 *  - the mount it hangs on is the host's root: the same file system type as the initramfs's
 *    `/`, holding every file of the initramfs (the runtime counts them through it);
 *  - pivot_root without the bind fails with EINVAL where the initramfs's `/` is rootfs at the
 *    top of the mount tree (stock 6.1, 6.12), and works where it has a parent mount; under
 *    `nonroot_initramfs` (build/nonroot-6.1) the container then hangs on rootfs, below the
 *    initramfs's tmpfs, which went away with the old root: rootfs below holds none of it.
 */
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { scenario, type CheckContext } from '../../harness/scenario.ts';
import { parseMountinfo, type MountinfoEntry } from '../../harness/readback/mountinfo.ts';
import type { ImageTree } from '../../harness/image/tree.ts';
import type { Stage } from '../../harness/readback/snapshot.ts';
import { NONROOT_DIR, rootShape, type RootShape } from '../nonroot_initramfs/scenario.ts';

/** This folder: twins in the tests reuse the guest scripts from here. */
export const BIND_ROOT_DIR = path.dirname(fileURLToPath(import.meta.url));

/** The guest scripts at their guest paths (a twin may replace one). */
export function bindRootInitramfs(t: ImageTree, replace: Record<string, string> = {}): void {
  const files: Record<string, string> = {
    '/init': path.join(BIND_ROOT_DIR, 'init.sh'),
    '/nonroot.sh': path.join(NONROOT_DIR, 'nonroot.sh'),
    '/bind-lib.sh': path.join(BIND_ROOT_DIR, 'container.sh'),
    '/bind-direct.sh': path.join(BIND_ROOT_DIR, 'direct.sh'),
    '/bind-runtime.sh': path.join(BIND_ROOT_DIR, 'runtime.sh'),
    '/bind-inside.sh': path.join(BIND_ROOT_DIR, 'inside.sh'),
  };
  for (const [guest, file] of Object.entries(files)) t.script(guest, replace[guest] ?? file);
}

function count(s: Stage, command: string): number {
  const c = s.command(command);
  const n = Number.parseInt((c?.output ?? '').trim(), 10);
  if (c?.status !== 0 || !Number.isFinite(n)) {
    throw new Error(`stage \`${s.name}\`: command ${command} did not give a count (status ${c?.status}: ${c?.output?.trim()})`);
  }
  return n;
}

function pivotText(s: Stage): string {
  return s.vars.rc === '0' ? 'succeeded' : `failed with ${s.vars.errno} (exit ${s.vars.rc}: ${s.vars.message})`;
}

/** The container's view: / is its own tmpfs, the old root is not in it. Returns its / mount. */
function expectContainer(ctx: CheckContext, s: Stage, what: string): MountinfoEntry {
  const { expect } = ctx;
  expect(s).to.have.mount('/').of.type('tmpfs');
  expect(s.file('/.container'), `${what}: / is the container's root`).to.equal("the container's root\n");
  expect(s.mountAt('/oldroot'), `${what}: the old root was detached (umount -l /oldroot)`).to.equal(undefined);
  const root = s.mountAt('/')!;
  expect(root.parentId, `${what}: the container's / (${root.raw}) hangs on a mount below it`).to.not.equal(root.mountId);
  return root;
}

export interface BindRootCheckOptions {
  /** Expect pivot_root without the bind as for this shape instead of the observed one (broken twins only). */
  assume?: RootShape;
}

export function checkBindRoot(ctx: CheckContext, opts: BindRootCheckOptions = {}): void {
  const { stage, expect, evidence, behaviour } = ctx;
  const initramfs = stage('initramfs');
  expect(initramfs).to.have.mount('/');
  const host = initramfs.mountAt('/')!;
  const hostFiles = count(initramfs, 'host-files');
  const shape = opts.assume ?? rootShape(host);
  expect(shape, `initramfs: / is ${host.fsType} (${host.raw}): a shape this scenario does not know`).to.not.equal(undefined);
  evidence(
    `initramfs: / is ${host.fsType} (mount ${host.mountId}, ${host.parentId === host.mountId ? 'its own parent' : `parent mount ${host.parentId}`}) holding ${hostFiles} files`,
  );

  // 1. Without the workaround.
  const direct = stage('direct');
  if (shape === 'rootfs-top') {
    expect(direct.vars.rc, `pivot_root from the host's root (rootfs, its own parent) must fail; it ${pivotText(direct)}`).to.not.equal('0');
    expect(direct.vars.errno, `pivot_root from the host's root must fail with EINVAL; it ${pivotText(direct)}`).to.equal('EINVAL');
    behaviour(
      'pivot_root into a container from the host root: EINVAL (rootfs is the top of the mount tree): the runtime needs mount --bind / /',
    );
  } else {
    expect(direct.vars.rc, `pivot_root from the host's root (it has a parent mount) must work; it ${pivotText(direct)}`).to.equal('0');
    const c = expectContainer(ctx, direct, 'direct');
    const [before] = parseMountinfo(`${direct.vars.before ?? ''}\n`);
    expect(before, `direct: the namespace's / before the pivot (${direct.vars.before})`).to.not.equal(undefined);
    expect(before!.fsType, "direct: before the pivot, / was the initramfs's file system").to.equal(host.fsType);
    expect(c.parentId, `direct: the container's / hangs on the mount below the initramfs's / (${before!.raw}), not on it`).to.equal(
      before!.parentId,
    );
    evidence(
      `direct: pivot_root succeeded; the container's / (mount ${c.mountId}) hangs on mount ${c.parentId}, the one below the ` +
        `initramfs's ${before!.fsType} (mount ${before!.mountId}), which went away with the old root`,
    );
    behaviour(
      shape === 'tmpfs-over-rootfs'
        ? 'pivot_root into a container from the host root: works (nonroot_initramfs); below the container only rootfs, which holds none of the initramfs'
        : 'pivot_root into a container from the host root: works (/ has a parent mount); the initramfs went away with the old root',
    );
  }

  // 2. mount --bind / /: the container starts in a bind of the host's root, which has a parent.
  const bound = stage('bound');
  expect(bound).to.have.mount('/').of.type(host.fsType);
  const b = bound.mountAt('/')!;
  expect(b.parentId, `bound: / in the container (${b.raw}) is the bind mount, with the host's root as its parent`).to.not.equal(b.mountId);
  const container = stage('container');
  expect(container.vars.rc, `pivot_root from the bind mount of / ${pivotText(container)}`).to.equal('0');
  const c = expectContainer(ctx, container, 'container');
  expect(c.parentId, `container: the container's / (${c.raw}) took the bind's place, atop mount ${b.parentId}`).to.equal(b.parentId);
  const entries = (container.command('root-entries')?.output ?? '').split('\n').filter(Boolean);
  evidence(`container: / is tmpfs (mount ${c.mountId}) atop mount ${c.parentId}; it sees ${entries.length} entries: ${entries.join(' ')}`);

  // What the seed warns of: the runtime, still rooted in the host's root, sees that mount and
  // everything in it below the container.
  const runtime = stage('runtime');
  const below = runtime.mountinfo.byId(c.parentId);
  expect(
    below,
    `runtime: the mount below the container's root (mount ${c.parentId}) is in the namespace's tree:\n${runtime.mountinfo.tree()}`,
  ).to.not.equal(undefined);
  expect(below!.mountPoint, `runtime: mount ${below!.mountId} is the runtime's own / (the host's root)`).to.equal('/');
  expect(below!.fsType, `runtime: the mount below the container is the host's root (${host.fsType})`).to.equal(host.fsType);
  const onTop = runtime.mountinfo.byId(c.mountId);
  expect(onTop?.parentId, `runtime: the container's root (mount ${c.mountId}) is mounted on the host's root`).to.equal(below!.mountId);
  const runtimeFiles = count(runtime, 'host-files');
  expect(runtimeFiles, `runtime: the host's root below the container holds the whole initramfs (${hostFiles} files)`).to.equal(hostFiles);
  evidence(
    `runtime: below the container's / is mount ${below!.mountId}, ${below!.fsType} at /, holding all ${runtimeFiles} files of the initramfs ` +
      `(the whole host root stays in the container's mount namespace)`,
  );
  behaviour(
    shape === 'tmpfs-over-rootfs'
      ? "mount --bind / / + pivot_root: the container hangs on the initramfs's tmpfs (the whole host root); rootfs is below that"
      : `mount --bind / / + pivot_root: the container hangs on the host's ${host.fsType} with the whole initramfs`,
  );
}

export default scenario(
  {
    name: 'bind_root',
    description:
      'A container runtime on a system running from its initramfs: pivot_root straight from the host root (EINVAL on ' +
      "rootfs at the top of the tree), then the seed's mount --bind / / workaround; after the container pivots and detaches " +
      "its old root, the host root with the whole initramfs is still the mount below the container's root.",
    seeds: ['002'],
    features: ['initrd', 'proc', 'devtmpfs', 'tmpfs', 'serial'],
    cmdline: 'nonroot_initramfs',
    initramfs(t) {
      bindRootInitramfs(t);
    },
    stages: ['initramfs', 'direct', 'bound', 'container', 'runtime'],
    check: (ctx) => checkBindRoot(ctx),
  },
  import.meta,
);
