/**
 * switch_root_manual: the old way by hand, `mount --move . /; exec chroot . /sbin/init`, with
 * no cleanup of the initramfs. It meets the core assertions (seed 003's overmount, PID 1 the
 * disk's init); it differs in what it leaves: every file of the initramfs stays (in memory,
 * hidden under the real root), so the witness's exe does not read (deleted) but names
 * `/bin/sleeper`, a path the real root does not have (seed 000: still nothing in the real
 * root's view ties it to the initramfs).
 */
import { scenario, type CheckContext, type Scenario } from '../../harness/scenario.ts';
import { checkSwitchedRoot, realRootDisk, switchInitramfs } from '../lib/switched-root.ts';

export function checkManual(ctx: CheckContext): void {
  const { leftFiles, witness } = checkSwitchedRoot(ctx, {
    initramfs: 'kept',
    witnessCwd: '/witness',
    carried: ['/proc', '/sys', '/dev'],
  });
  ctx.expect(leftFiles, 'the initramfs keeps its witness binary').to.include(`/proc/${witness.pid}/root/bin/sleeper`);
  ctx.behaviour('MS_MOVE + chroot by hand: the initramfs is left intact (no cleanup)');
}

export function switchRootManualScenario(opts: { name: string; check?: (ctx: CheckContext) => void }): Scenario {
  return scenario(
    {
      name: opts.name,
      description:
        'The initramfs mounts an ext4 root disk, moves /proc /sys /dev and then the disk over / by hand and chroots ' +
        "into it, without cleanup; / is ext4 atop rootfs, PID 1 the disk's init, the initramfs stays intact.",
      seeds: ['003', '000'],
      features: ['initrd', 'proc', 'sysfs', 'devtmpfs', 'serial', 'virtio-blk', 'ext4'],
      async initramfs(t, ctx) {
        await switchInitramfs(t, ctx);
      },
      disks: [realRootDisk()],
      stages: ['initramfs', 'realroot'],
      check: opts.check ?? checkManual,
    },
    import.meta,
  );
}

export default switchRootManualScenario({ name: 'switch_root_manual' });
