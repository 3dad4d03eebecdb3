/**
 * kernel_root (seed 003): no initramfs at all. With `root=/dev/vda rootfstype=ext4` the kernel
 * mounts the disk itself (init/do_mounts.c: mount_root on /root, then MS_MOVE over / and
 * chroot), and runs the disk's /sbin/init as PID 1.
 *
 * Al Viro's point, seen from user space: the kernel's own late boot overmounts the final root
 * atop the absolute root, just as switch_root does from an initramfs. In /proc/1/mountinfo the
 * disk's `/` has a parent mount, which PID 1 cannot see: the rootfs below it. PID 1's exe,
 * cwd and root are on the disk, with nothing of an initramfs anywhere.
 *
 * The kernel must have virtio-blk and ext4 built in: nothing could load a module before the
 * root is mounted. Where they are modules (Debian's cloud kernels) the cell is skipped.
 */
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { scenario, type CheckContext } from '../../harness/scenario.ts';
import { baseRootDisk } from '../../images/base.ts';

/** This folder (twins in the tests reuse its guest scripts). */
const HERE = path.dirname(fileURLToPath(import.meta.url));
import type { Kernel } from '../../kernels/index.ts';

/** The options the kernel needs built in to mount /dev/vda as ext4 by itself. */
export const BUILT_IN = ['CONFIG_VIRTIO_BLK', 'CONFIG_VIRTIO_PCI', 'CONFIG_EXT4_FS'];

/** Why `kernel` cannot mount its root without an initramfs, or undefined. */
export function cannotMountRoot(kernel: Pick<Kernel, 'config'>): string | undefined {
  for (const opt of BUILT_IN) {
    const v = kernel.config?.get(opt);
    if (v === 'm') return `${opt}=m: the kernel cannot mount its root without an initramfs`;
  }
  return undefined;
}

export function checkKernelRoot(ctx: CheckContext): void {
  const { stage, expect, evidence, behaviour } = ctx;
  const s = stage('realroot');
  expect(s.vars.pid, "the disk's init runs as PID 1").to.equal('1');
  expect(s.file('/etc/rootprobe-disk')).to.equal('the root disk, mounted by the kernel\n');

  // The kernel's overmount: / is the disk, with a parent mount that PID 1 cannot see.
  expect(s.pid1Mountinfo).to.have.mount('/').of.type('ext4');
  const root = s.pid1Mountinfo.at('/')!;
  expect(root.source, `the kernel mounted the root itself, as /dev/root (${root.raw})`).to.equal('/dev/root');
  expect(root.parentId, `/ (${root.raw}) is mounted atop another mount`).to.not.equal(root.mountId);
  const parent = s.pid1Mountinfo.byId(root.parentId);
  expect(
    parent,
    `the mount below / (mount ${root.parentId}) is outside PID 1's root: rootfs, overmounted\n${s.pid1Mountinfo.tree()}`,
  ).to.equal(undefined);
  expect(
    s.pid1Mountinfo.entries.some((e) => e.fsType === 'rootfs'),
    'no rootfs mount is visible from PID 1',
  ).to.equal(false);

  // PID 1 is the disk's init, rooted on the disk.
  const init = s.process(1)!;
  expect(init, 'PID 1 is in the snapshot').to.not.equal(undefined);
  expect(init).to.have.exe('/bin/busybox');
  expect(init).to.have.root('/');
  expect(init).to.have.cwd('/');
  evidence(
    `realroot: / is ext4 from ${root.source} (mount ${root.mountId}) atop mount ${root.parentId}, which PID 1 cannot see (rootfs, overmounted by the kernel)`,
  );
  evidence(`realroot: PID 1 (${init.comm}) exe "${init.exe}" cwd "${init.cwd}" root "${init.root}"`);
  for (const line of (s.command('kernel-said')?.output ?? '').split('\n')) {
    if (line.trim()) evidence(`kernel: ${line.replace(/^\[[^\]]*\]\s*/, '').trim()}`);
  }
  expect(s.command('kernel-said')?.output ?? '', 'the kernel says it mounted the root').to.match(/VFS: Mounted root \(ext4 filesystem\)/);
  behaviour('no initramfs: the kernel mounted /dev/vda over rootfs and chrooted into it (seed 003)');
}

export default scenario(
  {
    name: 'kernel_root',
    description:
      'No initramfs: the kernel mounts root=/dev/vda (ext4) itself, over rootfs, and runs its /sbin/init as PID 1; ' +
      '/ is the disk (source /dev/root) atop a parent mount PID 1 cannot see. Skipped where virtio-blk or ext4 are modules.',
    seeds: ['003'],
    features: ['proc', 'devtmpfs', 'serial', 'virtio-blk', 'ext4'],
    skipIf: cannotMountRoot,
    initramfs: false,
    cmdline: 'root=/dev/vda rootfstype=ext4',
    disks: [
      {
        name: 'root',
        fs: 'ext4',
        sizeMiB: 16,
        label: 'kernelroot',
        content(t) {
          t.merge(baseRootDisk());
          t.script('/sbin/init', path.join(HERE, 'init.sh'));
          t.file('/etc/rootprobe-disk', 'the root disk, mounted by the kernel\n');
        },
      },
    ],
    stages: ['realroot'],
    check: (ctx) => checkKernelRoot(ctx),
  },
  import.meta,
);
