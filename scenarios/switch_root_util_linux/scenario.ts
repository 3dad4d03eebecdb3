/**
 * switch_root_util_linux: the core switch_root flow with util-linux's switch_root instead of
 * busybox's. It must meet the same assertions (seed 003's overmount, PID 1 the disk's init);
 * where it legitimately differs it is asserted as such: it moves /dev, /proc, /sys and /run
 * itself, and it deletes the initramfs's directories too (busybox leaves them), in a child it
 * forks before exec'ing init. The witness is the contrast to pivot_root (seed 000): its exe
 * reads `/bin/sleeper (deleted)`; nothing ties it to the initramfs any more.
 */
import { scenario, type CheckContext, type Scenario } from '../../harness/scenario.ts';
import { checkSwitchedRoot, realRootDisk, switchInitramfs } from '../lib/switched-root.ts';

/** util-linux's outcome: everything deleted, /dev /proc /sys /run carried over. */
export function checkUtilLinux(ctx: CheckContext): void {
  const { realroot, leftDirs } = checkSwitchedRoot(ctx, {
    initramfs: 'deleted',
    witnessCwd: '/witness (deleted)',
    carried: ['/proc', '/sys', '/dev', '/run'],
  });
  ctx
    .expect(realroot.file('/run/rootprobe-run-marker'), "the initramfs's /run, moved, still holds its file")
    .to.equal('written in the initramfs\n');
  ctx.expect(leftDirs, "util-linux removes the initramfs's directories too").to.deep.equal([]);
  const first = realroot.vars.files_at_first_look;
  const polls = realroot.vars.cleanup_polls;
  ctx.evidence(`realroot: when init's sysinit first looked, ${first} initramfs files were still there; gone after ${polls} polls of 0.1 s`);
  if (Number(first) > 0) ctx.behaviour('util-linux switch_root: the initramfs was still being deleted when init started');
  else ctx.behaviour('util-linux switch_root: the initramfs was already deleted when init started');
}

export function switchRootUtilLinuxScenario(opts: { name: string; check?: (ctx: CheckContext) => void }): Scenario {
  return scenario(
    {
      name: opts.name,
      description:
        "The initramfs mounts an ext4 root disk and util-linux's switch_root moves /dev /proc /sys /run and the root " +
        'over rootfs and deletes the initramfs; / is ext4 atop rootfs, the witness reads (deleted), no directory is left.',
      seeds: ['003', '000'],
      features: ['initrd', 'proc', 'sysfs', 'devtmpfs', 'tmpfs', 'serial', 'virtio-blk', 'ext4'],
      async initramfs(t, ctx) {
        await switchInitramfs(t, ctx);
        t.hostBinary(ctx.tool('switch_root'), '/sbin/switch_root.util-linux');
      },
      disks: [realRootDisk({ waitForCleanup: true })],
      stages: ['initramfs', 'realroot'],
      check: opts.check ?? checkUtilLinux,
    },
    import.meta,
  );
}

export default switchRootUtilLinuxScenario({ name: 'switch_root_util_linux' });
