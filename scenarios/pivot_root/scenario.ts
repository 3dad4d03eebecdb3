/**
 * pivot_root: the initramfs pivots to an ext4 root disk keeping the old root visible at
 * /var/run/rootfs, then pivots back (seed 000), with processes whose exe, cwd and root links
 * show what pivot_root moved and what it left (seed 001), and the EINVAL of pivot_root from
 * the absolute root (seed 002) decided from what the kernel does.
 *
 * Seed 000: after `pivot_root . var/run/rootfs`, a process started from the initramfs reads
 * `/var/run/rootfs/bin/sleeper` as its exe: it stays identifiable (under switch_root it reads
 * `... (deleted)`: see switch_root_util_linux). Seed 001: pivot_root changes the root and cwd
 * of processes that were at the old root and leaves any other cwd where it was (cwd /tmp reads
 * /var/run/rootfs/tmp afterwards); a chroot without chdir leaves the cwd outside the root,
 * which getcwd(2) reports as `(unreachable)/`.
 */
import * as path from 'node:path';
import { scenario, type CheckContext, type Scenario } from '../../harness/scenario.ts';
import type { ProcessInfo, Stage } from '../../harness/readback/snapshot.ts';
import { baseRootDisk } from '../../images/base.ts';
import { LIB_DIR } from '../lib/switched-root.ts';

export interface PivotRootOptions {
  name: string;
  description?: string;
  /** Where PID 1 stands when it calls pivot_root (guest path). Default: the new root, /newroot. */
  pivotCwd?: string;
  /** put_old as the guest passes it (absolute). Default: /newroot/var/run/rootfs. */
  putOld?: string;
}

function sleeperWithCwdTmp(s: Stage): ProcessInfo | undefined {
  return s.processesNamed('sleep').find((p) => p.cmdline.includes('100001'));
}

function only(s: Stage, comm: string, what: string): ProcessInfo {
  const p = s.processesNamed(comm);
  if (p.length !== 1) {
    throw Object.assign(new Error(`stage \`${s.name}\`: expected one ${what} (comm ${comm}), found ${p.length}\n${s.processTable()}`), {
      name: 'AssertionError',
    });
  }
  return p[0]!;
}

function check({ stage, expect, evidence, behaviour }: CheckContext): void {
  const ir = stage('initramfs');
  const pv = stage('pivoted');
  const back = stage('back');

  // --- How the pivot was reached: the kernel decides (seed 002). -------------------------
  const irRoot = ir.mountAt('/');
  expect(irRoot, `initramfs: no mount at /\n${ir.mountinfo.tree()}`).to.not.equal(undefined);
  const how = ir.vars.how;
  const directRc = ir.vars.direct_rc;
  const directOut = ir.vars.direct_out ?? '';
  if (how === 'direct') {
    expect(directRc).to.equal('0');
    behaviour('pivot_root from the initramfs: allowed (the initramfs root is a mount with a parent)');
  } else {
    expect(how, 'stage initramfs says how the pivot is reached').to.equal('bind');
    expect(directOut, `pivot_root from the initramfs failed (exit ${directRc}) but not with EINVAL`).to.match(/Invalid argument/);
    behaviour('pivot_root from the initramfs: EINVAL; pivoted from a bind mount of / moved onto / (seed 002 workaround)');
  }
  evidence(
    `initramfs: pivot_root with the initramfs as old root, tried in a mount namespace: ${directRc === '0' ? 'succeeded' : `exit ${directRc}: ${directOut}`}`,
  );
  evidence(`initramfs: / is ${irRoot!.fsType} (mount ${irRoot!.mountId}, parent ${irRoot!.parentId}); pivot reached ${how}`);
  const disk = ir.mountAt('/newroot');
  expect(ir).to.have.mount('/newroot').of.type('ext4').from('/dev/vda');

  expect(ir).to.have.processNamed('sleeper').with.exe('/bin/sleeper');
  expect(only(ir, 'sleeper', 'sleeper'))
    .to.have.cwd('/')
    .and.root('/');
  const tmpIr = sleeperWithCwdTmp(ir);
  expect(tmpIr, `initramfs: no \`sleep 100001\` process\n${ir.processTable()}`).to.not.equal(undefined);
  expect(tmpIr!).to.have.cwd('/tmp').and.root('/');

  // Seed 001's chroot without chdir: root is the disk, cwd stayed at the initramfs's /.
  const cwIr = only(ir, 'nochdir', 'chroot-without-chdir process');
  expect(cwIr).to.have.root('/newroot');
  expect(cwIr).to.have.cwd('/');
  // ... and as the process sees it (the probe reads it from inside the process's root): seed 001's decoration
  expect(cwIr.ownCwd, 'cwd of the chroot-without-chdir process, read from its own root').to.match(/^\(unreachable\)\//);
  const logIr = ir.file('/tmp/nochdir.log') ?? '';
  expect(logIr, 'getcwd(2) of the process that chrooted without chdir').to.match(/^chroot \(unreachable\)\/$/m);
  evidence(
    `initramfs: chroot("/newroot") without chdir: getcwd(2) says "${/^chroot (.*)$/m.exec(logIr)?.[1]}", /proc/${cwIr.pid}/cwd reads "${cwIr.cwd}" (from its own root "${cwIr.ownCwd}"), root "${cwIr.root}"`,
  );

  // --- After pivot_root /newroot put_old. ---------------------------------------------------
  expect(pv.vars.pivot_rc, `pivot_root /newroot ${pv.vars.pivot_out ? `failed in the guest: ${pv.vars.pivot_out}` : ''}`).to.equal('0');
  expect(pv).to.have.mount('/').of.type('ext4').from('/dev/vda');
  const pvRoot = pv.mountAt('/')!;
  expect(pvRoot.mountId, 'after pivot_root, / is the disk mount that was at /newroot').to.equal(disk!.mountId);
  expect(pvRoot.parentId, 'after pivot_root, the disk sits where the old root was mounted').to.equal(irRoot!.parentId);
  expect(pv).to.have.mount('/var/run/rootfs').of.type(irRoot!.fsType);
  const kept = pv.mountAt('/var/run/rootfs')!;
  expect(kept.mountId, 'the old root mount is kept at /var/run/rootfs').to.equal(irRoot!.mountId);
  evidence(
    `pivoted: / is ${pvRoot.fsType} from ${pvRoot.source} (mount ${pvRoot.mountId}); the initramfs (mount ${kept.mountId}) is at /var/run/rootfs`,
  );

  // Seed 000: the process started from the initramfs is identifiable by its exe.
  expect(pv).to.have.processNamed('sleeper').with.exe('/var/run/rootfs/bin/sleeper');
  const slPv = only(pv, 'sleeper', 'sleeper');
  // Seed 001: root and cwd at the old root were moved to the new root ...
  expect(slPv).to.have.root('/').and.cwd('/');
  // ... a cwd elsewhere stays where it was, now under put_old.
  const tmpPv = sleeperWithCwdTmp(pv);
  expect(tmpPv, `pivoted: no \`sleep 100001\` process\n${pv.processTable()}`).to.not.equal(undefined);
  expect(tmpPv!).to.have.cwd('/var/run/rootfs/tmp').and.root('/');
  evidence(
    `pivoted: sleeper pid ${slPv.pid} exe "${slPv.exe}" cwd "${slPv.cwd}" root "${slPv.root}"; sleep pid ${tmpPv!.pid} cwd "${tmpPv!.cwd}"`,
  );

  // PID 1 called pivot_root from the new root: its root is moved by the kernel, its cwd is there.
  expect(pv.process(1)).to.have.root('/');
  expect(pv.process(1)).to.have.cwd('/');
  expect(pv.process(1)).to.have.exe('/var/run/rootfs/bin/busybox');
  evidence(
    `pivoted: PID 1 exe "${pv.process(1)!.exe}" root "${pv.process(1)!.root}" cwd "${pv.process(1)!.cwd}" (its shell's $PWD still says ${pv.vars.pid1_pwd})`,
  );

  // The chroot-without-chdir process: its cwd was the old root, so the kernel moved it too.
  const cwPv = only(pv, 'nochdir', 'chroot-without-chdir process');
  expect(cwPv).to.have.root('/').and.cwd('/');
  const logPv = pv.file('/var/run/rootfs/tmp/nochdir.log') ?? '';
  expect(logPv, 'getcwd(2) of the chroot-without-chdir process after pivot_root').to.match(/^usr1 \/$/m);
  evidence(
    `pivoted: the chroot-without-chdir process: getcwd(2) now says "${/^usr1 (.*)$/m.exec(logPv)?.[1]}" (pivot_root moved its cwd from the old root)`,
  );

  // --- Back into the initramfs with a second pivot_root (seed 000). ------------------------
  expect(back.vars.back_rc, `pivot_root . mnt from /var/run/rootfs: ${back.vars.back_out ?? ''}`).to.equal('0');
  expect(back).to.have.mount('/').of.type(irRoot!.fsType);
  expect(back.mountAt('/')!.mountId, 'after the way back, / is the initramfs mount again').to.equal(irRoot!.mountId);
  expect(back).to.have.mount('/mnt').of.type('ext4').from('/dev/vda');
  expect(back.mountAt('/mnt')!.mountId, 'the disk is under put_old /mnt').to.equal(disk!.mountId);
  expect(back).to.have.processNamed('sleeper').with.exe('/bin/sleeper');
  expect(only(back, 'sleeper', 'sleeper'))
    .to.have.root('/')
    .and.cwd('/');
  expect(sleeperWithCwdTmp(back)!).to.have.cwd('/tmp');
  expect(back.process(1)).to.have.root('/').and.cwd('/');
  expect(back.process(1)).to.have.exe('/bin/busybox');
  evidence(
    `back: / is the initramfs again (mount ${irRoot!.mountId}), the disk at /mnt; sleeper exe "${only(back, 'sleeper', 'sleeper').exe}"`,
  );
}

export function pivotRootScenario(opts: PivotRootOptions): Scenario {
  const conf: string[] = [];
  if (opts.pivotCwd) conf.push(`PIVOT_CWD=${opts.pivotCwd}`);
  if (opts.putOld) conf.push(`PUT_OLD=${opts.putOld}`);
  return scenario(
    {
      name: opts.name,
      description:
        opts.description ??
        'The initramfs pivots to an ext4 root disk with the old root at /var/run/rootfs and back; processes started ' +
          'from the initramfs read their exe/cwd under /var/run/rootfs, PID 1 is at the new root, a chroot without ' +
          'chdir shows (unreachable)/; pivot_root from rootfs is EINVAL where the kernel says so.',
      seeds: ['000', '001', '002'],
      features: ['initrd', 'proc', 'sysfs', 'devtmpfs', 'serial', 'virtio-blk', 'ext4'],
      async initramfs(t, ctx) {
        t.script('/init', ctx.here('init.sh'));
        // A binary of its own, so that its exe names a file only the initramfs has.
        t.copy('/bin/sleeper', await ctx.program(path.join(LIB_DIR, 'sleeper.c')), 0o755);
        // Seed 001's chroot without chdir, reading the raw getcwd(2): 700 KB static, where perl
        // with its libraries was 7 MB of initramfs (~0.6 s of unpacking under TCG).
        t.copy('/bin/nochdir', await ctx.program('nochdir.c'), 0o755);
        t.dir('/etc/rootprobe');
        // A put_old outside the new root (a broken twin) must exist, or pivot_root fails with ENOENT instead.
        if (opts.putOld && !opts.putOld.startsWith('/newroot/')) t.dir(opts.putOld);
        if (conf.length > 0) t.file('/etc/rootprobe/pivot.conf', conf.join('\n') + '\n');
      },
      disks: [
        {
          name: 'root',
          fs: 'ext4',
          sizeMiB: 24,
          label: 'realroot',
          content(t) {
            t.merge(baseRootDisk());
            t.dir('/var/run/rootfs');
          },
        },
      ],
      stages: ['initramfs', 'pivoted', 'back'],
      check,
    },
    import.meta,
  );
}

export default pivotRootScenario({ name: 'pivot_root' });
