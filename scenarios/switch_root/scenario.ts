/**
 * switch_root: the initramfs mounts an ext4 root disk and busybox `switch_root` moves it over
 * rootfs (MS_MOVE + chroot), deleting the initramfs's files first.
 *
 * Seed 003 (Al Viro, 2001): the final root is overmounted atop the absolute root (rootfs),
 * so in /proc/1/mountinfo the new `/` has the rootfs mount as its parent. Seed 000: after a
 * switch_root nothing ties a process started in the initramfs to it: its exe reads deleted.
 */
import { scenario } from '../../harness/scenario.ts';
import { baseRootDisk } from '../../images/base.ts';

export default scenario({
  name: 'switch_root',
  description:
    'The initramfs mounts an ext4 root disk and busybox switch_root moves it over rootfs; ' +
    'the real root is mounted atop rootfs, PID 1 is the disk\'s init and the initramfs is emptied.',
  seeds: ['003', '000'],
  features: ['initrd', 'proc', 'sysfs', 'devtmpfs', 'tmpfs', 'serial', 'virtio-blk', 'ext4'],

  initramfs(t, ctx) {
    t.script('/init', ctx.here('init.sh'));
  },

  disks: [
    {
      name: 'root',
      fs: 'ext4',
      sizeMiB: 24,
      label: 'realroot',
      content(t, ctx) {
        t.merge(baseRootDisk());
        // busybox init as the real root's init binary: PID 1's exe then names a file that
        // exists only on the disk.
        t.copy('/sbin/init', ctx.tool('busybox'), 0o755);
        t.file('/etc/inittab', '::sysinit:/etc/rootprobe/realroot.sh\n');
        t.script('/etc/rootprobe/realroot.sh', ctx.here('realroot.sh'));
        t.file('/etc/rootprobe-disk', 'the real root disk\n');
      },
    },
  ],

  stages: ['initramfs', 'realroot'],

  check({ stage, expect, evidence }) {
    const initramfs = stage('initramfs');
    const realroot = stage('realroot');

    // In the initramfs, / is the kernel's rootfs, the top of the mount tree.
    expect(initramfs).to.have.mount('/').of.type('rootfs');
    const rootfs = initramfs.mountAt('/')!;
    evidence(`initramfs: / is ${rootfs.fsType} (mount ${rootfs.mountId}, parent ${rootfs.parentId})`);

    // After switch_root: / is the ext4 disk, mounted atop rootfs (seed 003's overmount).
    // rootfs itself is no longer listed (mountinfo shows only what is reachable from the
    // reader's root), but the new root's parent id is the rootfs mount seen before.
    expect(realroot).to.have.mount('/').of.type('ext4').from('/dev/vda');
    const root = realroot.pid1Mountinfo.at('/')!;
    expect(root.parentId, `parent of / in realroot (${root.raw}) is the rootfs mount ${rootfs.mountId}`).to.equal(
      rootfs.mountId,
    );
    expect(realroot).to.not.have.mount('/newroot');
    evidence(`realroot: / is ${root.fsType} from ${root.source} (mount ${root.mountId}), atop rootfs (mount ${root.parentId})`);

    // PID 1 is the disk's init binary, at the new root.
    expect(realroot.process(1)).to.have.exe('/sbin/init');
    expect(realroot.process(1)).to.have.root('/');
    expect(realroot.process(1)).to.have.cwd('/');
    evidence(`realroot: PID 1 exe ${realroot.process(1)?.exe}`);

    // The initramfs's files are gone: the witness started from it runs a deleted binary,
    // its cwd names a folder the real root does not have, and through the witness's own
    // root (still rootfs) no file is left. busybox's switch_root leaves the emptied
    // directories behind (observed with busybox 1.35): reported, not asserted.
    expect(realroot).to.have.processNamed('sleep').with.exe('/bin/busybox (deleted)');
    expect(realroot).to.have.processNamed('sleep').with.cwd('/witness');
    expect(realroot).to.have.processNamed('sleep').with.root('/');
    expect(realroot).to.have.command('rootfs-files').that.succeeded.with.output(/^$/);
    expect(realroot.file('/etc/rootprobe-disk')).to.equal('the real root disk\n');
    const witness = realroot.processesNamed('sleep')[0];
    evidence(`realroot: witness pid ${witness?.pid} exe "${witness?.exe}" cwd "${witness?.cwd}"`);
    const dirs = (realroot.command('rootfs-dirs')?.output ?? '').split('\n').filter((l) => l && l !== '.');
    evidence(`realroot: rootfs holds no files after switch_root; ${dirs.length} empty directories remain`);
  },
});
