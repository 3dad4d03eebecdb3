/**
 * The loop-root shutdown story of seed 004, as a definition factory shared by
 * `loop_root_shutdown` (a clean shutdown, proved from the host), `loop_root_shutdown_holder`
 * (a holder left behind: the failure, reported as such) and the broken twins in the tests.
 *
 *   partition /dev/vda (ext4)  ──  /images/root.img (ext4)  ──losetup──>  /dev/loopN = /
 *
 * initramfs: mount the partition on /host, attach the image to a loop device, mount it, move
 * /proc /sys /dev /host under it, switch_root. PID 1 on the loop root (a shell script) writes
 * a log, probes `realroot`, builds a tmpfs shutdown root, pivot_roots into it and execs its
 * busybox (`pivoted`), moves the API filesystems and the partition out from under the old
 * root, unmounts the loop root, detaches the loop device, unmounts the partition (`shutdown`)
 * and powers off. The host then reads both images: clean, or not.
 *
 * Variants are written into the loop root's /etc/rootprobe/shutdown.conf (HOLDER, FAULTS), so
 * all of them run the same guest scripts.
 */
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { baseRootDisk } from '../../images/base.ts';
import type { CheckContext, ScenarioDefinition } from '../../harness/scenario.ts';
import type { Stage } from '../../harness/readback/snapshot.ts';
import { Mountinfo, type MountinfoEntry } from '../../harness/readback/mountinfo.ts';
import { describeHolders, errnoOf, holdersOf } from './holders.ts';
import { debugfs, describeState, imageState, withInnerImage, type ImageState } from './hostside.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const script = (name: string): string => path.join(here, name);

/** Where the root image lives on the partition, and where the partition is mounted. */
export const ROOT_IMAGE = '/images/root.img';
export const LOG_FILE = '/var/log/rootprobe.log';

export type Fault =
  /** The shutdown skips `losetup -d`. */
  | 'no-detach'
  /** The shutdown skips `umount /host`. */
  | 'no-host-umount'
  /** The shutdown unmounts with `umount -l`: the mount tree looks clean whatever holds it. */
  | 'lazy-umount';

export interface LoopShutdownVariant {
  name: string;
  description: string;
  seeds?: string[];
  /**
   * 'initctl': a process with its cwd on the loop root and its /run/initctl fifo open;
   * 'host-cwd': a process started from the shutdown root after the pivot, with its cwd on the partition (/host/images).
   */
  holder?: 'none' | 'initctl' | 'host-cwd';
  faults?: Fault[];
  /** What the check asserts: a clean shutdown, or the busy loop root (with the dirty partition). */
  expect: 'clean' | 'busy';
}

export interface Step {
  name: string;
  status: number;
  command: string;
  output: string;
}

/** The shutdown's /steps file: NAME<TAB>STATUS<TAB>COMMAND<TAB>OUTPUT per line. */
export function parseSteps(text: string | undefined): Step[] {
  return (text ?? '')
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [name = '', status = '', command = '', ...rest] = l.split('\t');
      return { name, status: Number(status), command, output: rest.join('\t').trim() };
    });
}

function describeStep(s: Step | undefined, name: string): string {
  if (!s) return `${name}: not run`;
  const errno = errnoOf(s.output);
  return `\`${s.command}\` -> status ${s.status}${s.output ? `: ${s.output}` : ''}${errno ? ` (${errno})` : ''}`;
}

function mountLine(e: MountinfoEntry): string {
  return Mountinfo.describe(e);
}

/** Mounts in `stage` of the loop root or the partition (by source), wherever they are. */
function leftovers(stage: Stage, loop: string): MountinfoEntry[] {
  return stage.mountinfo.entries.filter((e) => e.source === loop || e.source === '/dev/vda');
}

export function loopRootShutdown(v: LoopShutdownVariant): ScenarioDefinition {
  const faults = v.faults ?? [];
  const holder = v.holder ?? 'none';
  const conf = `HOLDER=${holder}\nFAULTS="${faults.join(' ')}"\n`;

  return {
    name: v.name,
    description: v.description,
    seeds: v.seeds,
    features: ['initrd', 'proc', 'sysfs', 'devtmpfs', 'tmpfs', 'serial', 'virtio-blk', 'ext4', 'loop'],
    initramfs(t) {
      t.script('/init', script('init.sh'));
    },
    disks: [
      {
        name: 'part',
        fs: 'ext4',
        sizeMiB: 64,
        label: 'hostpart',
        content(t) {
          t.dir('/images');
          t.file('/README', 'the host partition: /images/root.img is the loop root\n');
        },
        images: {
          [ROOT_IMAGE]: {
            name: 'root',
            fs: 'ext4',
            sizeMiB: 24,
            label: 'looproot',
            content(t) {
              t.merge(baseRootDisk());
              t.dir('/host');
              t.dir('/shutdown');
              t.dir('/var/log');
              t.script('/sbin/init', script('realinit.sh'));
              t.script('/etc/rootprobe/shutdown.sh', script('shutdown.sh'));
              t.file('/etc/rootprobe/shutdown.conf', conf);
            },
          },
        },
      },
    ],
    stages: ['initramfs', 'realroot', 'pivoted', 'shutdown'],
    timeoutSec: 40,
    check: (ctx) => (v.expect === 'clean' ? checkClean(ctx) : checkBusy(ctx)),
  };
}

/** Up to the pivot, every variant must look the same: the loop root, then PID 1 running from the tmpfs. */
function checkUpToPivot(ctx: CheckContext): { loop: string; log: string } {
  const { stage, expect, evidence } = ctx;
  const initramfs = stage('initramfs');
  const loop = initramfs.vars.loop ?? '';
  expect(loop, 'the initramfs attached a loop device').to.match(/^\/dev\/loop\d+$/);
  expect(initramfs).to.have.mount('/host').of.type('ext4').from('/dev/vda');
  expect(initramfs).to.have.command('losetup').that.succeeded.with.output(ROOT_IMAGE);
  evidence(`initramfs: ${loop} attached to ${ROOT_IMAGE} on /dev/vda (mounted at /host)`);

  const realroot = stage('realroot');
  expect(realroot).to.have.mount('/').of.type('ext4').from(loop);
  expect(realroot).to.have.mount('/host').of.type('ext4').from('/dev/vda');
  expect(realroot.process(1)).to.have.exe('/bin/busybox');
  const log = realroot.file(LOG_FILE) ?? '';
  expect(log, `${LOG_FILE} written on the loop root`).to.match(/end of log\n$/);
  // Why PID 1 must exec from the shutdown root: before, it holds the loop root (its exe, and
  // the shell keeps its script open).
  const before = holdersOf(realroot, realroot.mountAt('/')!).filter((h) => h.pid === 1);
  expect(before, 'PID 1 runs from the loop root').to.not.be.empty;
  evidence(`realroot: / is ext4 from ${loop}, /host is ext4 from /dev/vda; PID 1 holds the loop root: ${describeHolders(before)}`);

  const pivoted = stage('pivoted');
  expect(pivoted).to.have.mount('/').of.type('tmpfs');
  expect(pivoted).to.have.mount('/oldroot').of.type('ext4').from(loop);
  expect(pivoted).to.have.mount('/host').of.type('ext4').from('/dev/vda');
  const pid1 = pivoted.process(1);
  expect(pid1).to.have.exe('/.rootprobe/busybox');
  expect(pid1).to.have.cwd('/');
  expect(pid1).to.have.root('/');
  const oldroot = pivoted.mountAt('/oldroot')!;
  const pid1Holds = holdersOf(pivoted, oldroot).filter((h) => h.pid === 1);
  expect(pid1Holds, `PID 1 still holds the old root: ${describeHolders(pid1Holds)}`).to.be.empty;
  evidence(
    `pivoted: / is tmpfs, old root at /oldroot (${loop}); PID 1 exe ${pid1?.exe}, cwd ${pid1?.cwd}, root ${pid1?.root}, ` +
      `${pid1?.fds.length ?? 0} fds, none on the old root`,
  );
  return { loop, log };
}

async function hostImages(ctx: CheckContext, withInner: (inner: ImageState, file: string) => Promise<void>): Promise<ImageState> {
  const part = ctx.disks.part.path;
  const outer = await imageState(part);
  await withInnerImage(part, ROOT_IMAGE, async (file) => withInner(await imageState(file), file));
  return outer;
}

async function checkClean(ctx: CheckContext): Promise<void> {
  const { stage, expect, evidence } = ctx;
  const { loop, log } = checkUpToPivot(ctx);

  const shutdown = stage('shutdown');
  const steps = parseSteps(shutdown.file('/steps'));
  const step = (n: string): Step | undefined => steps.find((s) => s.name === n);
  // Each mount that must be gone: if it is still there, say which step failed and who held it.
  for (const [point, stepName, source] of [
    ['/oldroot', 'umount-oldroot', loop],
    ['/host', 'umount-host', '/dev/vda'],
  ] as const) {
    const m = shutdown.mountAt(point);
    if (m) {
      const holds = holdersOf(shutdown, m);
      const byLoop = point === '/host' ? heldByLoop(shutdown, loop) : '';
      expect.fail(
        `${point} (${mountLine(m)}) is still mounted at shutdown; ${describeStep(step(stepName), stepName)}; held by: ` +
          `${[describeHolders(holds), byLoop].filter(Boolean).join('; ') || 'no process link points into it'}\n` +
          `mount tree at shutdown:\n${shutdown.mountinfo.tree()}`,
      );
    }
    const elsewhere = shutdown.mountinfo.entries.find((e) => e.source === source);
    if (elsewhere) expect.fail(`${source} is still mounted at ${elsewhere.mountPoint} at shutdown: ${mountLine(elsewhere)}`);
  }
  for (const s of ['umount-oldroot', 'detach-loop', 'umount-host']) {
    expect(step(s)?.status, `shutdown step ${s}: ${describeStep(step(s), s)}`).to.equal(0);
  }
  // The loop device is free: losetup on it fails, it has no backing file.
  expect(shutdown, `${loop} is detached`).to.have.command('backing-file').that.failed;
  expect(leftovers(shutdown, loop)).to.be.empty;
  evidence(`shutdown: umount /oldroot, losetup -d ${loop}, umount /host all exit 0; mountinfo shows neither ${loop} nor /dev/vda`);

  // The host's proof: both filesystems were unmounted cleanly, and the log reached the disk.
  let innerLine = '';
  const outer = await hostImages(ctx, async (inner, file) => {
    innerLine = describeState(inner);
    expect(inner.info.needsRecovery, `the root image ${ROOT_IMAGE} must be clean after the shutdown, but: ${innerLine}`).to.equal(false);
    expect(inner.info.clean && inner.fsck.clean, `root image ${ROOT_IMAGE}: ${innerLine}\n${inner.fsck.output}`).to.equal(true);
    const onDisk = await debugfs(file, `cat "${LOG_FILE}"`);
    expect(
      onDisk === log,
      `${LOG_FILE} read from the host (${onDisk.length} bytes) is what the guest wrote (${log.length} bytes)`,
    ).to.equal(true);
  });
  const outerLine = describeState(outer);
  expect(outer.info.needsRecovery, `the partition image must be clean after the shutdown, but: ${outerLine}`).to.equal(false);
  expect(outer.info.clean && outer.fsck.clean, `partition image: ${outerLine}\n${outer.fsck.output}`).to.equal(true);
  evidence(`host: partition image ${outerLine}`);
  evidence(`host: ${ROOT_IMAGE} inside it ${innerLine}; ${LOG_FILE} (${log.length} bytes) read back through both layers`);
}

/** "loop device /dev/loop0 (backing file /host/images/root.img)" when the loop device still has one. */
function heldByLoop(stage: Stage, loop: string): string {
  const b = stage.command('backing-file');
  return b && b.status === 0 ? `loop device ${loop} (backing file ${b.output.trim()})` : '';
}

async function checkBusy(ctx: CheckContext): Promise<void> {
  const { stage, expect, evidence, behaviour } = ctx;
  const { loop } = checkUpToPivot(ctx);

  const shutdown = stage('shutdown');
  const steps = parseSteps(shutdown.file('/steps'));
  const step = (n: string): Step | undefined => steps.find((s) => s.name === n);

  // The loop root stayed busy: its unmount failed with EBUSY, and the readback names who held it.
  const um = step('umount-oldroot');
  expect(um, 'the shutdown ran umount /oldroot').to.not.equal(undefined);
  expect(um!.status, `umount /oldroot must fail: ${describeStep(um, 'umount-oldroot')}`).to.not.equal(0);
  expect(errnoOf(um!.output), describeStep(um, 'umount-oldroot')).to.equal('EBUSY');
  expect(shutdown).to.have.mount('/oldroot').of.type('ext4').from(loop);
  const oldroot = shutdown.mountAt('/oldroot')!;
  const holds = holdersOf(shutdown, oldroot);
  expect(holds, `who holds /oldroot (${mountLine(oldroot)})\n${shutdown.processTable()}`).to.not.be.empty;
  expect(
    holds.filter((h) => h.pid === 1),
    'PID 1 is not among the holders',
  ).to.be.empty;
  expect(
    holds.map((h) => h.target),
    'the /run/initctl fifo is held open',
  ).to.include('/oldroot/run/initctl');
  evidence(`shutdown: ${describeStep(um, 'umount-oldroot')}`);
  evidence(`shutdown: /oldroot (ext4 from ${loop}) stayed busy, held by ${describeHolders(holds)}`);

  const det = step('detach-loop');
  if (det) {
    behaviour(`losetup -d on a loop device still mounted: status ${det.status}${det.status === 0 ? ' (autoclear deferred)' : ''}`);
    evidence(`shutdown: ${describeStep(det, 'detach-loop')}`);
  }

  // The partition stayed busy too: the loop device still reads its backing file from it.
  const uh = step('umount-host');
  expect(uh?.status, `umount /host must fail while the loop root is busy: ${describeStep(uh, 'umount-host')}`).to.not.equal(0);
  expect(errnoOf(uh!.output), describeStep(uh, 'umount-host')).to.equal('EBUSY');
  expect(shutdown).to.have.mount('/host').of.type('ext4').from('/dev/vda');
  const byLoop = heldByLoop(shutdown, loop);
  expect(byLoop, `${loop} still has its backing file`).to.include(ROOT_IMAGE);
  evidence(`shutdown: ${describeStep(uh, 'umount-host')}; /host held by ${byLoop}`);

  // The host sees what that means: the partition was never unmounted.
  let innerLine = '';
  let innerDirty = false;
  const outer = await hostImages(ctx, async (inner) => {
    innerLine = describeState(inner);
    innerDirty = inner.info.needsRecovery || !inner.info.clean || !inner.fsck.clean;
  });
  const outerLine = describeState(outer);
  const dirty = outer.info.needsRecovery || !outer.info.clean || !outer.fsck.clean;
  expect(dirty, `the partition image must show the unclean shutdown, but: ${outerLine}`).to.equal(true);
  evidence(`host: partition image ${outerLine}`);
  evidence(`host: ${ROOT_IMAGE} inside it ${innerLine}`);
  behaviour(
    `partition left mounted: ${outer.info.needsRecovery ? 'needs_recovery set' : 'no needs_recovery'}, e2fsck -fn ${outer.fsck.clean ? 'clean' : 'not clean'}`,
  );
  behaviour(`loop root left mounted: ${innerDirty ? 'root image dirty' : 'root image clean'}`);
}
