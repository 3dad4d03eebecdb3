/**
 * sysvinit_loop_root (seed 004's open question): the loop root of loop_root_shutdown, but its
 * PID 1 is Debian's real sysvinit `init` (sysvinit-core of bookworm, see package.ts), which
 * keeps /run/initctl open on the loop root. At shutdown a child of init pivots into a tmpfs
 * holding a copy of init, and tries one of the seed's three ways to make PID 1 let go:
 *
 *   telinit  `telinit u`: init re-execs itself (re_exec(): the fifo closed, execle("/sbin/init"),
 *            which now resolves in the tmpfs, since pivot_root moved PID 1's root there)
 *   request  the crafted struct init_request of reload-init.bin written to the old fifo
 *   usr1     `kill -USR1 1`: "it might not work in practice", says the seed
 *
 * The readback of PID 1's exe, cwd, root and fds (stage `released`) says whether it let go;
 * the host proves whether the partition then unmounted cleanly (needs_recovery, e2fsck -fn).
 */
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { baseRootDisk } from '../../images/base.ts';
import type { CheckContext, ScenarioDefinition } from '../../harness/scenario.ts';
import type { ProcessInfo } from '../../harness/readback/snapshot.ts';
import { describeHolders, errnoOf, holdersOf } from '../loop_root_shutdown/holders.ts';
import { debugfs, describeState, imageState, withInnerImage, type ImageState } from '../loop_root_shutdown/hostside.ts';
import { LOG_FILE, parseSteps, ROOT_IMAGE, type Step } from '../loop_root_shutdown/family.ts';
import { SYSVINIT_PACKAGE, sysvinitPackage } from './package.ts';

const here = path.dirname(fileURLToPath(import.meta.url));

export type Way = 'telinit' | 'request' | 'usr1';

/** sysvinit's initreq.h: INIT_MAGIC, INIT_CMD_RUNLVL, and struct init_request's size (4 ints + a 368-byte union). */
export const INIT_MAGIC = 0x03091969;
export const INIT_CMD_RUNLVL = 1;
export const INIT_REQUEST_SIZE = 384;

/** The request `telinit u` sends (and seed 004's reload-init.bin holds): runlevel 'U' = re-exec. */
export function initRequest(runlevel = 'U', magic = INIT_MAGIC): Buffer {
  const b = Buffer.alloc(INIT_REQUEST_SIZE);
  b.writeInt32LE(magic | 0, 0);
  b.writeInt32LE(INIT_CMD_RUNLVL, 4);
  b.writeInt32LE(runlevel.charCodeAt(0), 8);
  b.writeInt32LE(0, 12); // sleeptime
  return b;
}

export interface SysvinitVariant {
  name: string;
  description: string;
  seeds?: string[];
  way: Way;
  /** The request file written by `request` (a twin writes a damaged one). */
  request?: { magic?: number; runlevel?: string };
  /** What the check asserts: PID 1 let go of the old root (and the shutdown is clean), or it still holds it. */
  expect: 'released' | 'held';
}

const INITTAB = 'id:2:initdefault:\nrp:2:once:/etc/rootprobe/sysv.sh\n';

export function sysvinitLoopRoot(v: SysvinitVariant): ScenarioDefinition {
  const request = initRequest(v.request?.runlevel, v.request?.magic);
  const conf = `WAY=${v.way}\nREQUEST=reload-init.bin\n`;
  return {
    name: v.name,
    description: v.description,
    seeds: v.seeds,
    features: ['initrd', 'proc', 'sysfs', 'devtmpfs', 'tmpfs', 'serial', 'virtio-blk', 'ext4', 'loop'],
    initramfs(t) {
      t.script('/init', path.join(here, '../loop_root_shutdown/init.sh'));
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
            async content(t, ctx) {
              const pkg = await sysvinitPackage(ctx.arch);
              t.merge(baseRootDisk());
              t.dir('/host');
              t.dir('/shutdown');
              t.dir('/var/log');
              t.hostBinary(pkg.init, '/sbin/init');
              t.symlink('/sbin/telinit', 'init');
              t.file('/etc/inittab', INITTAB);
              t.file('/etc/rootprobe/sysvinit.version', `${SYSVINIT_PACKAGE} ${pkg.version} (${pkg.suite})\n`);
              t.script('/etc/rootprobe/sysv.sh', path.join(here, 'sysv.sh'));
              t.script('/etc/rootprobe/shutdown.sh', path.join(here, 'shutdown.sh'));
              t.file('/etc/rootprobe/sysv.conf', conf);
              t.file('/etc/rootprobe/reload-init.bin', request);
            },
          },
        },
      },
    ],
    stages: ['initramfs', 'realroot', 'pivoted', 'released', 'shutdown'],
    timeoutSec: 60,
    check: (ctx) => check(ctx, v),
  };
}

function links(p: ProcessInfo | undefined): string {
  if (!p) return 'absent';
  const fds = p.fds.map((f) => `${f.fd} ${f.target}`).join(', ');
  return `exe ${p.exe}, cwd ${p.cwd}, root ${p.root}, fds [${fds}]`;
}

function describeStep(s: Step | undefined, name: string): string {
  if (!s) return `${name}: not run`;
  const errno = errnoOf(s.output);
  return `\`${s.command}\` -> status ${s.status}${s.output ? `: ${s.output}` : ''}${errno ? ` (${errno})` : ''}`;
}

const WAY_TEXT: Record<Way, string> = {
  telinit: 'telinit u',
  request: 'the crafted init_request written to /oldroot/run/initctl',
  usr1: 'kill -USR1 1',
};

async function check(ctx: CheckContext, v: SysvinitVariant): Promise<void> {
  const { stage, expect, evidence, behaviour } = ctx;
  const initramfs = stage('initramfs');
  const loop = initramfs.vars.loop ?? '';
  expect(loop, 'the initramfs attached a loop device').to.match(/^\/dev\/loop\d+$/);

  // The real sysvinit is PID 1 on the loop root, with its fifo open there.
  const realroot = stage('realroot');
  expect(realroot).to.have.mount('/').of.type('ext4').from(loop);
  const init = realroot.process(1);
  expect(init).to.have.exe('/sbin/init');
  expect(init?.comm, 'PID 1 is sysvinit').to.equal('init');
  expect(
    init?.fds.map((f) => f.target),
    `PID 1 has /run/initctl open: ${links(init)}`,
  ).to.include('/run/initctl');
  expect(realroot.file('/etc/inittab'), 'the inittab sysvinit read').to.include('rp:2:once:');
  evidence(`realroot: PID 1 is ${SYSVINIT_PACKAGE}'s init on ${loop}: ${links(init)}`);

  // After the pivot: root and cwd moved to the tmpfs with it, the exe and the fifo did not.
  const pivoted = stage('pivoted');
  expect(pivoted).to.have.mount('/').of.type('tmpfs');
  expect(pivoted).to.have.mount('/oldroot').of.type('ext4').from(loop);
  const p1 = pivoted.process(1);
  expect(p1).to.have.exe('/oldroot/sbin/init');
  expect(
    p1?.fds.map((f) => f.target),
    `PID 1 still has the old fifo open: ${links(p1)}`,
  ).to.include('/oldroot/run/initctl');
  const before = holdersOf(pivoted, pivoted.mountAt('/oldroot')!);
  expect(
    before.filter((h) => h.pid !== 1),
    `only PID 1 holds the old root after the pivot: ${describeHolders(before)}`,
  ).to.be.empty;
  evidence(`pivoted: / is tmpfs, old root at /oldroot; PID 1 holds it: ${describeHolders(before)} (${links(p1)})`);

  // The way, and what PID 1 holds after it.
  const released = stage('released');
  const way = parseSteps(released.file('/steps')).find((s) => s.name === 'way');
  expect(way?.status, `${WAY_TEXT[v.way]}: ${describeStep(way, 'way')}`).to.equal(0);
  const r1 = released.process(1);
  expect(r1, 'PID 1 in the readback after the way').to.not.equal(undefined);
  const holds = holdersOf(released, released.mountAt('/oldroot')!).filter((h) => h.pid === 1);
  const waited = released.vars.waited_ms ?? '?';
  const fifo = r1!.fds.filter((f) => /\/run\/initctl$/.test(f.target)).map((f) => `fd ${f.fd} ${f.target}`);
  evidence(
    `released: after ${WAY_TEXT[v.way]} (waited ${waited} ms) PID 1 ${links(r1)}; ` +
      `on the old root: ${describeHolders(holds) || 'nothing'}; its initctl fifo: ${fifo.join(', ') || 'none open'}`,
  );
  behaviour(
    `${WAY_TEXT[v.way]}: PID 1 ${holds.length ? `still holds the old root (${holds.map((h) => h.what).join(', ')})` : 'lets go of the old root'}`,
  );
  if (v.expect === 'released') {
    expect(holds, `PID 1 still holds the old root after ${WAY_TEXT[v.way]}: ${describeHolders(holds)}\n${released.processTable()}`).to.be
      .empty;
    expect(r1).to.have.exe('/sbin/init');
  } else {
    expect(holds, `PID 1 let go of the old root after ${WAY_TEXT[v.way]}: ${links(r1)}`).to.not.be.empty;
  }

  // The unmounts, and the host's proof.
  const shutdown = stage('shutdown');
  const steps = parseSteps(shutdown.file('/steps'));
  const step = (n: string): Step | undefined => steps.find((s) => s.name === n);
  for (const s of ['umount-oldroot', 'detach-loop', 'umount-host']) evidence(`shutdown: ${describeStep(step(s), s)}`);
  const part = ctx.disks.part.path;
  const outer = await imageState(part);
  let inner: ImageState | undefined;
  let onDisk = '';
  await withInnerImage(part, ROOT_IMAGE, async (file) => {
    inner = await imageState(file);
    onDisk = await debugfs(file, `cat "${LOG_FILE}"`);
  });
  evidence(`host: partition image ${describeState(outer)}`);
  evidence(`host: ${ROOT_IMAGE} inside it ${describeState(inner!)}`);
  const dirty = (s: ImageState): boolean => s.info.needsRecovery || !s.info.clean || !s.fsck.clean;
  behaviour(`partition after ${WAY_TEXT[v.way]}: ${dirty(outer) ? 'left mounted (unclean)' : 'unmounted cleanly'}`);

  if (v.expect === 'released') {
    for (const s of ['umount-oldroot', 'detach-loop', 'umount-host']) {
      expect(step(s)?.status, `shutdown step ${s}: ${describeStep(step(s), s)}\n${shutdown.mountinfo.tree()}`).to.equal(0);
    }
    expect(shutdown.mountinfo.entries.filter((e) => e.source === loop || e.source === '/dev/vda')).to.be.empty;
    expect(dirty(inner!), `the root image must be clean: ${describeState(inner!)}`).to.equal(false);
    expect(dirty(outer), `the partition image must be clean: ${describeState(outer)}`).to.equal(false);
    const log = realroot.file(LOG_FILE) ?? '';
    expect(onDisk === log && log.endsWith('end of log\n'), `${LOG_FILE} read from the host is what the guest wrote`).to.equal(true);
  } else {
    const um = step('umount-oldroot');
    expect(errnoOf(um?.output ?? ''), `umount /oldroot must fail with EBUSY: ${describeStep(um, 'umount-oldroot')}`).to.equal('EBUSY');
    const still = holdersOf(shutdown, shutdown.mountAt('/oldroot')!);
    expect(
      still.map((h) => h.pid),
      `PID 1 is what holds /oldroot: ${describeHolders(still)}`,
    ).to.deep.equal(still.map(() => 1));
    expect(still, 'someone holds /oldroot').to.not.be.empty;
    expect(dirty(outer), `the partition image must show the unclean shutdown: ${describeState(outer)}`).to.equal(true);
  }
}
