/**
 * switch_root: the initramfs mounts an ext4 root disk and busybox `switch_root` moves it over
 * rootfs (MS_MOVE + chroot), deleting the initramfs's files first.
 *
 * Seed 003 (Al Viro, 2001): the final root is overmounted atop the absolute root (rootfs),
 * so in /proc/1/mountinfo the new `/` has the rootfs mount as its parent. Seed 000: after a
 * switch_root nothing ties a process started in the initramfs to it: its exe reads deleted.
 * The variants (util-linux's switch_root, MS_MOVE + chroot by hand) share these checks
 * (scenarios/lib/switched-root.ts) and differ where their tools differ.
 */
import { scenario } from '../../harness/scenario.ts';
import { checkSwitchedRoot, realRootDisk, switchInitramfs } from '../lib/switched-root.ts';

export default scenario(
  {
    name: 'switch_root',
    description:
      'The initramfs mounts an ext4 root disk and busybox switch_root moves it over rootfs; ' +
      "the real root is mounted atop rootfs, PID 1 is the disk's init and the initramfs's files are deleted.",
    seeds: ['003', '000'],
    features: ['initrd', 'proc', 'sysfs', 'devtmpfs', 'tmpfs', 'serial', 'virtio-blk', 'ext4'],

    async initramfs(t, ctx) {
      await switchInitramfs(t, ctx);
    },

    disks: [realRootDisk()],

    stages: ['initramfs', 'realroot'],

    check(ctx) {
      // busybox's switch_root unlinks every file of the initramfs but leaves its emptied
      // directories (observed with busybox 1.35; util-linux removes them too), so the
      // witness's cwd still names an existing, unreachable folder: reported, not deleted.
      const { leftDirs } = checkSwitchedRoot(ctx, { initramfs: 'deleted', witnessCwd: '/witness', carried: [] });
      if (leftDirs.length > 0) ctx.behaviour(`busybox switch_root: files deleted, ${leftDirs.length} empty directories left`);
      else ctx.behaviour('busybox switch_root: files and directories deleted');
    },
  },
  import.meta,
);
