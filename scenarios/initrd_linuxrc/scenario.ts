/**
 * initrd_linuxrc (seed 003): the old-style initrd. The kernel gets an ext2 image (made with
 * mke2fs -d, not a cpio archive); unpacking it as an initramfs fails, so it keeps it as
 * /initrd.image, loads it into /dev/ram0, mounts it and runs its /linuxrc as a user-mode
 * helper (init/do_mounts_initrd.c). When /linuxrc exits, the kernel mounts `root=` itself
 * and runs the real init as PID 1, moving the old initrd to /initrd if the root has that
 * folder (else it unmounts it and frees the RAM disk).
 *
 * What must hold: /linuxrc runs with a PID > 1 ("initrd with /linuxrc exec'ing init leaves
 * init with PID > 1", as Al Viro put it) with the initrd as its `/`; the real init is PID 1
 * on the disk, atop a mount it cannot see, with the old initrd at /initrd. The kernel's
 * deprecation line is reported as a behaviour.
 *
 * Linux 7 removed the running of /linuxrc (handle_initrd): it still loads the image into
 * /dev/ram0 and prints the deprecation line, then mounts root= directly. The `linuxrc` stage
 * is therefore optional, and its absence passes only in that shape (checkNoLinuxrc).
 *
 * The kernel needs the RAM disk driver and virtio-blk and ext4 built in (a module could only
 * come from the initrd it is to load): recipe kernels have them; Debian's cloud kernels do not
 * (CONFIG_BLK_DEV_RAM=m), so those cells are skipped with the reason.
 */
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { scenario, type CheckContext, type ScenarioDefinition } from '../../harness/scenario.ts';
import { baseRootDisk } from '../../images/base.ts';

/** This folder (twins in the tests reuse its guest scripts). */
const HERE = path.dirname(fileURLToPath(import.meta.url));
import type { Kernel } from '../../kernels/index.ts';
import { cannotMountRoot } from '../kernel_root/scenario.ts';

/** Why `kernel` cannot run an old-style initrd's /linuxrc, or undefined. */
export function cannotRunLinuxrc(kernel: Pick<Kernel, 'config'>): string | undefined {
  const c = kernel.config;
  if (c?.get('CONFIG_BLK_DEV_INITRD') !== 'y') return 'CONFIG_BLK_DEV_INITRD is not set: the kernel takes no initrd at all';
  const ram = c.get('CONFIG_BLK_DEV_RAM');
  if (ram === 'm') return 'CONFIG_BLK_DEV_RAM=m: the RAM disk driver is a module, which nothing can load before the initrd is in it';
  if (ram !== 'y') {
    return "CONFIG_BLK_DEV_RAM is not set: the kernel cannot load an old-style initrd (it says 'Initramfs unpacking failed' and mounts root= without running /linuxrc)";
  }
  return cannotMountRoot(kernel);
}

const INITRD_FS = /^ext[234]$/;

function kernelLines(text: string | undefined): string[] {
  return (text ?? '')
    .split('\n')
    .map((l) =>
      l
        .replace(/^\[[^\]]*\]\s*/, '')
        .replace(/\s*(?:[|/\\-]\x08?){8,}.*$/, ' (its progress spinner cut)')
        .trim(),
    )
    .filter(Boolean);
}

export function checkLinuxrc(ctx: CheckContext): void {
  const { stage, expect, evidence, behaviour } = ctx;
  if (!ctx.result.has('linuxrc')) {
    checkNoLinuxrc(ctx);
    return;
  }

  // /linuxrc: not PID 1, its / is the initrd (the RAM disk the kernel mounted).
  const rc = stage('linuxrc');
  const pid = Number(rc.vars.pid);
  expect(pid, `/linuxrc runs as a user-mode helper with a PID > 1 (it had ${rc.vars.pid})`).to.be.greaterThan(1);
  expect(rc.file('/etc/rootprobe-initrd'), "/linuxrc's / is the initrd image").to.equal('the old-style initrd\n');
  expect(rc.mountAt('/'), `linuxrc: / is mounted\n${rc.mountinfo.tree()}`).to.not.equal(undefined);
  const initrdRoot = rc.mountAt('/')!;
  expect(initrdRoot.fsType, `linuxrc: / is the ext2 image (${initrdRoot.raw})`).to.match(INITRD_FS);
  expect(initrdRoot.parentId, `linuxrc: the initrd (${initrdRoot.raw}) is mounted atop rootfs`).to.not.equal(initrdRoot.mountId);
  const me = rc.process(pid);
  const p1 = rc.process(1);
  evidence(
    `linuxrc: pid ${pid} (parent ${me?.ppid ?? '?'}), / is ${initrdRoot.fsType} from ${initrdRoot.source} (mount ${initrdRoot.mountId} atop ${initrdRoot.parentId}); ` +
      `PID 1 is ${!p1 ? 'not visible' : p1.exe ? `${p1.comm}, exe "${p1.exe}"` : `${p1.comm} with no exe (a kernel thread: no init has run yet)`}`,
  );
  const said = kernelLines(rc.command('kernel-said')?.output);
  const deprecated = said.find((l) => /deprecated initrd support/.test(l));
  expect(deprecated, `the kernel's deprecation line; it said:\n${said.join('\n')}`).to.not.equal(undefined);
  behaviour(`kernel: ${deprecated}`);
  for (const l of said.filter((x) => x !== deprecated)) evidence(`kernel: ${l}`);

  // The real init: PID 1 on the disk the kernel mounted after /linuxrc exited.
  const real = stage('realroot');
  expect(real.vars.pid, "the real root's init runs as PID 1").to.equal('1');
  expect(real.file('/etc/rootprobe-disk')).to.equal('the real root disk\n');
  expect(real.pid1Mountinfo).to.have.mount('/').of.type('ext4');
  const root = real.pid1Mountinfo.at('/')!;
  expect(root.source, `the kernel mounted the root itself (${root.raw})`).to.equal('/dev/root');
  expect(root.parentId, `/ (${root.raw}) is atop another mount`).to.not.equal(root.mountId);
  const init = real.process(1)!;
  expect(init).to.have.exe('/bin/busybox');
  expect(init).to.have.root('/');
  const realSaid = kernelLines(real.command('kernel-said')?.output);
  const moved = realSaid.find((l) => /Trying to move old root to \/initrd/.test(l));
  const kept = real.pid1Mountinfo.at('/initrd');
  if (kept) {
    expect(kept.fsType, `/initrd is the old initrd (${kept.raw})`).to.match(INITRD_FS);
    expect(kept.parentId, 'the old initrd hangs on the real root').to.equal(root.mountId);
    expect(real.file('/initrd/etc/rootprobe-initrd'), 'the old initrd is readable at /initrd').to.equal('the old-style initrd\n');
    behaviour('after /linuxrc: the kernel mounted root= and moved the old initrd to /initrd');
    evidence(
      `realroot: PID 1 on ${root.source} (mount ${root.mountId} atop ${root.parentId}); the old initrd at /initrd (${kept.fsType} from ${kept.source}, mount ${kept.mountId})`,
    );
  } else {
    expect(real.file('/initrd/etc/rootprobe-initrd'), 'no initrd at /initrd').to.equal(undefined);
    behaviour('after /linuxrc: the kernel mounted root= and released the old initrd (not at /initrd)');
    evidence(`realroot: PID 1 on ${root.source} (mount ${root.mountId} atop ${root.parentId}); the old initrd is gone`);
  }
  if (moved) evidence(`kernel: ${moved}`);
}

/**
 * No `linuxrc` stage: a kernel that loads an initrd but no longer runs it (Linux 7 removed
 * handle_initrd: the RAM disk is only usable as root=/dev/ram0). Told from the guest, not the
 * version: the kernel said it loaded the image into the RAM disk and printed its deprecation
 * line, and never said "Trying to move old root" (which a kernel that ran /linuxrc says after
 * it, whether /linuxrc worked or not); the real init is PID 1 on the disk and the initrd is
 * mounted nowhere. Anything else without the stage fails.
 */
function checkNoLinuxrc(ctx: CheckContext): void {
  const { stage, expect, evidence, behaviour } = ctx;
  const real = stage('realroot');
  const said = kernelLines(real.command('kernel-said')?.output);
  const ran = said.find((l) => /Trying to move old root/.test(l));
  expect(ran, `the kernel ran the initrd path ("${ran}") but /linuxrc never probed`).to.equal(undefined);
  const loaded = said.find((l) => /RAMDISK: Loading/.test(l));
  expect(
    loaded,
    `no linuxrc stage, and the kernel did not say it loaded the initrd into the RAM disk; it said:\n${said.join('\n')}`,
  ).to.not.equal(undefined);
  const deprecated = said.find((l) => /deprecated initrd support/.test(l));
  expect(deprecated, `the kernel's deprecation line; it said:\n${said.join('\n')}`).to.not.equal(undefined);
  expect(real.vars.pid, "the real root's init runs as PID 1").to.equal('1');
  expect(real.file('/etc/rootprobe-disk')).to.equal('the real root disk\n');
  const root = real.pid1Mountinfo.at('/');
  expect(root?.fsType, `/ is the disk (${root?.raw})`).to.equal('ext4');
  const ram = real.pid1Mountinfo.entries.filter(
    (m) => /^\/dev\/(ram|root\.old)/.test(m.source) || (INITRD_FS.test(m.fsType) && m.fsType !== 'ext4'),
  );
  expect(
    ram.map((m) => m.raw),
    'the initrd is mounted nowhere',
  ).to.deep.equal([]);
  expect(real.file('/initrd/etc/rootprobe-initrd'), 'no initrd at /initrd').to.equal(undefined);
  behaviour(`kernel: ${deprecated}`);
  behaviour(
    'the kernel loaded the initrd into /dev/ram0 but ran no /linuxrc: it mounted root= directly (the RAM disk is left for root=/dev/ram0)',
  );
  evidence(
    `realroot: PID 1 on ${root!.source} (mount ${root!.mountId} atop ${root!.parentId}); no /linuxrc ran, nothing of the initrd is mounted`,
  );
  for (const l of said.filter((x) => x !== deprecated)) evidence(`kernel: ${l}`);
}

/**
 * The old-style initrd: the base root, the marker file, and `linuxrc` (a host script) as its
 * /linuxrc, or no /linuxrc at all (undefined). The twins change only that.
 */
export function linuxrcInitrd(linuxrc: string | undefined): NonNullable<ScenarioDefinition['initrd']> {
  return {
    sizeMiB: 8,
    content(t) {
      t.merge(baseRootDisk());
      if (linuxrc) t.script('/linuxrc', linuxrc);
      t.file('/etc/rootprobe-initrd', 'the old-style initrd\n');
    },
  };
}

export default scenario(
  {
    name: 'initrd_linuxrc',
    description:
      'An old-style initrd (an ext2 image, not cpio) with a /linuxrc: the kernel runs it with a PID > 1 on the RAM disk, ' +
      'then mounts root=/dev/vda itself and runs the real init as PID 1, the old initrd at /initrd. ' +
      'Skipped where the RAM disk driver, virtio-blk or ext4 are not built in.',
    seeds: ['003'],
    features: ['initrd', 'proc', 'devtmpfs', 'serial', 'virtio-blk', 'ext4'],
    skipIf: cannotRunLinuxrc,
    initramfs: false,
    initrd: linuxrcInitrd(path.join(HERE, 'linuxrc.sh')),
    // The RAM disk must hold the 8 MiB image (the default is 4 MiB); no rootfstype=: the kernel
    // mounts the initrd with the same list of types as the root.
    cmdline: 'root=/dev/vda ramdisk_size=16384',
    disks: [
      {
        name: 'root',
        fs: 'ext4',
        sizeMiB: 16,
        label: 'realroot',
        content(t) {
          t.merge(baseRootDisk());
          t.dir('/initrd');
          t.script('/sbin/init', path.join(HERE, 'init.sh'));
          t.file('/etc/rootprobe-disk', 'the real root disk\n');
        },
      },
    ],
    // Linux 7 loads the initrd but runs no /linuxrc: then only realroot comes (checkNoLinuxrc).
    stages: ['realroot'],
    optionalStages: ['linuxrc'],
    check: (ctx) => checkLinuxrc(ctx),
  },
  import.meta,
);
