/**
 * What every switch to a real root must show, shared by the switch_root variants (busybox's,
 * util-linux's, MS_MOVE + chroot by hand), with what legitimately differs between them as
 * options: whether the initramfs's files are gone, which mounts the switch carried over.
 *
 * The guest side: `realRootDisk()` is the ext4 root disk whose busybox init runs
 * scenarios/lib/realroot.sh, which probes stage `realroot` with the witness (a `/bin/sleeper`
 * started from the initramfs with its cwd in /witness) and what is left of the initramfs as seen
 * through the witness's root (commands `rootfs-files`, `rootfs-dirs`).
 */
import { guestBusybox } from '../../harness/guest/userland.ts';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BuildContext, CheckContext, DiskSpec } from '../../harness/scenario.ts';
import type { ImageTree } from '../../harness/image/tree.ts';
import type { MountinfoEntry } from '../../harness/readback/mountinfo.ts';
import type { ProcessInfo, Stage } from '../../harness/readback/snapshot.ts';
import { baseRootDisk } from '../../images/base.ts';

export const LIB_DIR = path.dirname(fileURLToPath(import.meta.url));

/**
 * The initramfs side of every variant: its /init (beside the scenario), the guest functions
 * of lib/switch.sh, and the witness binary (lib/sleeper.c, a binary only the initramfs has).
 */
export async function switchInitramfs(t: ImageTree, ctx: BuildContext): Promise<void> {
  t.script('/init', ctx.here('init.sh'));
  t.copy('/lib/rootprobe/switch.sh', path.join(LIB_DIR, 'switch.sh'), 0o644);
  t.copy('/bin/sleeper', await ctx.program(path.join(LIB_DIR, 'sleeper.c')), 0o755);
}

/** The real root disk: busybox userland, busybox init as /sbin/init running lib/realroot.sh. */
export function realRootDisk(opts: { waitForCleanup?: boolean } = {}): DiskSpec {
  return {
    name: 'root',
    fs: 'ext4',
    sizeMiB: 24,
    label: 'realroot',
    content(t) {
      t.merge(baseRootDisk());
      // The guest architecture's busybox as init (the base's /bin/busybox is the same file).
      t.copyFor('/sbin/init', async (arch) => (await guestBusybox(arch)).path, 0o755);
      t.file('/etc/inittab', '::sysinit:/etc/rootprobe/realroot.sh\n');
      t.script('/etc/rootprobe/realroot.sh', path.join(LIB_DIR, 'realroot.sh'));
      t.file('/etc/rootprobe-disk', 'the real root disk\n');
      if (opts.waitForCleanup) t.file('/etc/rootprobe/wait-cleanup', '');
    },
  };
}

export interface SwitchedRootOptions {
  /** What the switch did with the initramfs's files: 'deleted' (none left) or 'kept' (/init still there). */
  initramfs: 'deleted' | 'kept';
  /** The witness's exe link text after the switch (default: from `initramfs`). */
  witnessExe?: string | RegExp;
  /** The witness's cwd link text after the switch. */
  witnessCwd: string | RegExp;
  /** Mounts of the initramfs the switch carried over to the real root (the same mount id after it). */
  carried: string[];
}

export interface SwitchedRoot {
  initramfs: Stage;
  realroot: Stage;
  rootfs: MountinfoEntry;
  root: MountinfoEntry;
  witness: ProcessInfo;
  /** What is left of the initramfs, seen through the witness's root. */
  leftFiles: string[];
  leftDirs: string[];
}

function fail(message: string): never {
  throw Object.assign(new Error(message), { name: 'AssertionError' });
}

/**
 * Seed 003's overmount and seed 000's "nothing ties the witness to the initramfs" where the
 * files are deleted: stage `initramfs` has / = rootfs; stage `realroot` has / = ext4 from
 * /dev/vda whose parent is that rootfs mount, PID 1 = the disk's /sbin/init at /, no /newroot.
 */
export function checkSwitchedRoot(ctx: CheckContext, opts: SwitchedRootOptions): SwitchedRoot {
  const { stage, expect, evidence } = ctx;
  const initramfs = stage('initramfs');
  const realroot = stage('realroot');

  expect(initramfs).to.have.mount('/').of.type('rootfs');
  const rootfs = initramfs.mountAt('/')!;
  evidence(`initramfs: / is ${rootfs.fsType} (mount ${rootfs.mountId}, parent ${rootfs.parentId})`);
  expect(initramfs).to.have.processNamed('sleeper').with.exe('/bin/sleeper');
  expect(initramfs).to.have.processNamed('sleeper').with.cwd('/witness');

  expect(realroot).to.have.mount('/').of.type('ext4').from('/dev/vda');
  const root = realroot.pid1Mountinfo.at('/')!;
  expect(root.parentId, `parent of / in realroot (${root.raw}) is the rootfs mount ${rootfs.mountId}`).to.equal(rootfs.mountId);
  expect(realroot).to.not.have.mount('/newroot');
  evidence(`realroot: / is ${root.fsType} from ${root.source} (mount ${root.mountId}), atop rootfs (mount ${root.parentId})`);

  expect(realroot.process(1)).to.have.exe('/sbin/init');
  expect(realroot.process(1)).to.have.root('/');
  expect(realroot.process(1)).to.have.cwd('/');

  for (const point of opts.carried) {
    const before = initramfs.mountAt(point);
    if (!before) fail(`the initramfs had no mount at ${point} to carry over\n${initramfs.mountinfo.tree()}`);
    expect(realroot).to.have.mount(point).of.type(before.fsType);
    expect(realroot.mountAt(point)!.mountId, `${point} in realroot is the initramfs's mount ${before.mountId}, moved`).to.equal(
      before.mountId,
    );
  }
  if (opts.carried.length > 0) evidence(`realroot: carried over from the initramfs (same mount ids): ${opts.carried.join(' ')}`);

  const witnesses = realroot.processesNamed('sleeper');
  if (witnesses.length !== 1) fail(`realroot: expected one witness (comm sleeper), found ${witnesses.length}\n${realroot.processTable()}`);
  const witness = witnesses[0]!;
  const exe = opts.witnessExe ?? (opts.initramfs === 'deleted' ? '/bin/sleeper (deleted)' : '/bin/sleeper');
  expect(realroot).to.have.processNamed('sleeper').with.exe(exe);
  expect(realroot).to.have.processNamed('sleeper').with.cwd(opts.witnessCwd);
  expect(realroot).to.have.processNamed('sleeper').with.root('/');
  // The path the witness's exe names does not lead to its binary from the real root.
  expect(realroot).to.have.command('witness-exe-path').that.failed;
  evidence(
    `realroot: witness pid ${witness.pid} exe "${witness.exe}" cwd "${witness.cwd}" root "${witness.root}"; that path is absent on the real root`,
  );

  // Listed through the witness's root: both listings must have worked for their output to mean anything.
  expect(realroot).to.have.command('rootfs-files').that.succeeded;
  expect(realroot).to.have.command('rootfs-dirs').that.succeeded;
  const leftFiles = (realroot.command('rootfs-files')!.output ?? '').split('\n').filter(Boolean);
  const leftDirs = (realroot.command('rootfs-dirs')?.output ?? '').split('\n').filter((l) => l && l !== '.');
  if (opts.initramfs === 'deleted') {
    expect(
      leftFiles,
      `no file of the initramfs is left (seen through the witness's root): ${leftFiles.slice(0, 10).join(' ')}`,
    ).to.deep.equal([]);
  } else {
    const init = `/proc/${witness.pid}/root/init`;
    expect(leftFiles, `the initramfs is left intact: ${init} is still there`).to.include(init);
  }
  evidence(`realroot: the initramfs holds ${leftFiles.length} files and ${leftDirs.length} directories after the switch`);
  expect(realroot.file('/etc/rootprobe-disk')).to.equal('the real root disk\n');
  return { initramfs, realroot, rootfs, root, witness, leftFiles, leftDirs };
}
