/**
 * nonroot_initramfs (seed 002): can a system that runs from its initramfs use pivot_root, the
 * call container runtimes make after creating their mount namespace?
 *
 * The initramfs never switches to a disk. It tries pivot_root straight from the initramfs into
 * a tmpfs copy of itself, then the two user-space workarounds of seed 002:
 *   (a) in a mount namespace of its own, bind-mount / onto a folder, move it over /, chroot
 *       into it, and pivot_root from there (what crun users and mkosi do);
 *   (b) the two-stage archive: switch_root into the tmpfs copy; pivot_root then works.
 *
 * Kernels differ, and the scenario follows what the guest shows, not the version string:
 *  - / is rootfs and the top of the mount tree (its own parent): pivot_root must fail with
 *    EINVAL (stock 6.1, 6.12);
 *  - / has a parent mount: pivot_root must work directly. Either / is rootfs atop a mount
 *    below it (newer kernels, observed on 7.x), or / is a tmpfs atop rootfs (a kernel with
 *    our nonroot_initramfs patch, booted with the parameter).
 * Both workarounds must work on every kernel. `nonroot_initramfs` is always on the command
 * line: kernels without the patch pass it to /init as an argument, which ignores it.
 */
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { scenario, type CheckContext } from '../../harness/scenario.ts';
import type { MountinfoEntry } from '../../harness/readback/mountinfo.ts';
import type { Stage } from '../../harness/readback/snapshot.ts';
import type { ImageTree } from '../../harness/image/tree.ts';

/** This folder: twins in the tests reuse the guest scripts from here. */
export const NONROOT_DIR = path.dirname(fileURLToPath(import.meta.url));

/** The guest scripts, at their guest paths (a twin may replace one). */
export function nonrootInitramfs(t: ImageTree, replace: Record<string, string> = {}): void {
  const files: Record<string, string> = {
    '/init': 'init.sh',
    '/nonroot.sh': 'nonroot.sh',
    '/nonroot-bind.sh': 'bind.sh',
    '/nonroot-bind2.sh': 'bind2.sh',
    '/nonroot-switched.sh': 'switched.sh',
  };
  for (const [guest, file] of Object.entries(files)) t.script(guest, replace[guest] ?? path.join(NONROOT_DIR, file));
}

/** What the initramfs's `/` looks like: decides what the scenario expects of pivot_root. */
export type RootShape = 'rootfs-top' | 'rootfs-with-parent' | 'tmpfs-over-rootfs';

export function rootShape(root: MountinfoEntry): RootShape | undefined {
  const hasParent = root.parentId !== root.mountId;
  if (root.fsType === 'rootfs') return hasParent ? 'rootfs-with-parent' : 'rootfs-top';
  if (root.fsType === 'tmpfs' && hasParent) return 'tmpfs-over-rootfs';
  return undefined;
}

export const BEHAVIOURS: Record<RootShape, string> = {
  'rootfs-top': 'pivot_root from the initramfs: EINVAL (/ is rootfs, the top of the mount tree)',
  'rootfs-with-parent': 'pivot_root from the initramfs: works (/ is rootfs atop a parent mount)',
  'tmpfs-over-rootfs': 'pivot_root from the initramfs: works (nonroot_initramfs: / is a tmpfs atop rootfs)',
};

function describePivot(s: Stage): string {
  const v = s.vars;
  return v.rc === '0' ? 'succeeded' : `failed with ${v.errno} (exit ${v.rc}: ${v.message})`;
}

/** pivot_root into a tmpfs copy worked: / is the copy, the old root sits at /oldroot on it. */
function expectPivoted(ctx: CheckContext, s: Stage, what: string, oldRoot: { fsType: string; mountId?: number; parentId?: number }): void {
  const { expect } = ctx;
  expect(s.vars.rc, `${what}: pivot_root ${describePivot(s)}`).to.equal('0');
  expect(s).to.have.mount('/').of.type('tmpfs');
  expect(s).to.have.mount('/oldroot').of.type(oldRoot.fsType);
  const root = s.mountAt('/')!;
  const old = s.mountAt('/oldroot')!;
  expect(old.parentId, `${what}: the old root (${old.raw}) hangs on the new / (mount ${root.mountId})`).to.equal(root.mountId);
  if (oldRoot.mountId !== undefined) expect(old.mountId, `${what}: /oldroot is the initramfs's root mount`).to.equal(oldRoot.mountId);
  if (oldRoot.parentId !== undefined) {
    expect(root.parentId, `${what}: the new / took the old root's place, atop mount ${oldRoot.parentId}`).to.equal(oldRoot.parentId);
  }
}

export interface NonrootCheckOptions {
  /** Expect pivot_root as for this shape instead of the observed one (broken twins only). */
  assume?: RootShape;
}

export function checkNonroot(ctx: CheckContext, opts: NonrootCheckOptions = {}): void {
  const { stage, expect, evidence, behaviour } = ctx;
  const initramfs = stage('initramfs');
  const direct = stage('direct');

  // What the kernel shows: the shape of / in the initramfs.
  expect(initramfs).to.have.mount('/');
  const root = initramfs.mountAt('/')!;
  const shape = opts.assume ?? rootShape(root);
  expect(
    shape,
    `initramfs: / is ${root.fsType} (mount ${root.mountId}, parent ${root.parentId}): a shape this scenario does not know`,
  ).to.not.equal(undefined);
  const parent = root.parentId === root.mountId ? 'its own parent' : `parent mount ${root.parentId}`;
  evidence(`initramfs: / is ${root.fsType} (mount ${root.mountId}, ${parent})`);
  // What the kernel said about the parameter: the patch's line, or "Unknown ... passed to user space".
  for (const line of (initramfs.command('kernel-nonroot')?.output ?? '').split('\n')) {
    if (line.trim()) evidence(`kernel: ${line.replace(/^\[[^\]]*\]\s*/, '').trim()}`);
  }

  // pivot_root straight from the initramfs: what the shape predicts.
  if (shape === 'rootfs-top') {
    expect(
      direct.vars.rc,
      `pivot_root from the initramfs (/ is rootfs, its own parent) must fail; it ${describePivot(direct)}`,
    ).to.not.equal('0');
    expect(direct.vars.errno, `pivot_root from the initramfs must fail with EINVAL; it ${describePivot(direct)}`).to.equal('EINVAL');
    expect(direct.mountAt('/')?.mountId, 'after the failed pivot_root, / is unchanged').to.equal(root.mountId);
  } else {
    expectPivoted(ctx, direct, 'pivot_root from the initramfs', { fsType: root.fsType, mountId: root.mountId, parentId: root.parentId });
    expect(direct.process(1)).to.have.root('/');
  }
  evidence(`direct: pivot_root /newroot /newroot/oldroot ${describePivot(direct)}`);
  behaviour(BEHAVIOURS[shape!]);

  // Workaround (a): / is now a bind mount of the initramfs, with a parent; pivot_root works.
  const bound = stage('bind-chroot');
  const bp = stage('bind-pivot');
  expect(bp.vars.rc, `workaround (a), bind mount + chroot: pivot_root ${describePivot(bp)}`).to.equal('0');
  expect(bound).to.have.mount('/').of.type(root.fsType);
  const b = bound.mountAt('/')!;
  expect(b.parentId, `workaround (a): / in the chroot (${b.raw}) has a parent mount`).to.not.equal(b.mountId);
  expectPivoted(ctx, bp, 'workaround (a), bind mount + chroot', { fsType: root.fsType, mountId: b.mountId, parentId: b.parentId });
  evidence(`workaround (a): / a bind of the initramfs (mount ${b.mountId} atop ${b.parentId}); pivot_root ${describePivot(bp)}`);

  // Workaround (b): after switch_root into the tmpfs copy, / is that tmpfs atop the initramfs's
  // root, and a container runtime's pivot_root works.
  const sw = stage('copy-switch');
  expect(sw).to.have.mount('/').of.type('tmpfs');
  const swRoot = sw.pid1Mountinfo.at('/')!;
  expect(swRoot.parentId, `workaround (b): / (${swRoot.raw}) is mounted atop the initramfs's root mount ${root.mountId}`).to.equal(
    root.mountId,
  );
  expect(sw.file('/.nonroot-copy')).to.equal('a copy of the initramfs\n');
  expect(sw.process(1)).to.have.exe('/bin/busybox');
  expect(sw)
    .to.have.command('pivot-after')
    .that.succeeded.with.output(/pivoted/);
  evidence(
    `workaround (b): switch_root into a tmpfs copy (mount ${swRoot.mountId} atop ${swRoot.parentId}); pivot_root in a new mount namespace works`,
  );
}

export default scenario(
  {
    name: 'nonroot_initramfs',
    description:
      'pivot_root straight from the initramfs fails with EINVAL while / is rootfs, the top of the mount tree, and ' +
      'works where / has a parent (a tmpfs under nonroot_initramfs, or newer kernels); the bind-mount+chroot and ' +
      'copy+switch_root workarounds work everywhere.',
    seeds: ['002'],
    features: ['initrd', 'proc', 'devtmpfs', 'tmpfs', 'serial'],
    cmdline: 'nonroot_initramfs',
    initramfs(t) {
      nonrootInitramfs(t);
    },
    stages: ['initramfs', 'direct', 'bind-chroot', 'bind-pivot', 'copy-switch'],
    check: (ctx) => checkNonroot(ctx),
  },
  import.meta,
);
