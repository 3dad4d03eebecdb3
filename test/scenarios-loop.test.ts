/**
 * Seed 004's loop-root shutdown: the helpers on a recorded shutdown stage (who held the busy
 * loop root), then the two scenarios and their broken twins on a real kernel.
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Stage, type StageJSON } from '../harness/readback/snapshot.ts';
import { describeHolders, errnoOf, holdersOf, mountOf } from '../scenarios/loop_root_shutdown/holders.ts';
import { parseSteps } from '../scenarios/loop_root_shutdown/family.ts';
import { loadScenarios, pickScenarios } from '../scenarios/index.ts';
import { resolveKernel, type Kernel } from '../kernels/index.ts';
import { runScenario, type RunRecord } from '../harness/run/run-scenario.ts';
import { pool } from '../harness/run/matrix.ts';
import { detectAccel } from '../harness/qemu/accel.ts';
import { makeTempDir, removeTempDir } from '../harness/lifecycle.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const fixtures = path.join(here, 'fixtures/scenarios/loop_root_shutdown');

function recordedShutdown(): Stage {
  return Stage.fromJSON(JSON.parse(readFileSync(path.join(fixtures, 'holder-shutdown.stage.json'), 'utf8')) as StageJSON);
}

describe('loop_root_shutdown helpers on a recorded shutdown stage (holder variant, bookworm)', () => {
  it('parses the shutdown steps with their status and the errno of their message', () => {
    const steps = parseSteps(recordedShutdown().file('/steps'));
    expect(steps.map((s) => [s.name, s.status])).to.deep.equal([
      ['umount-oldroot', 1],
      ['detach-loop', 0],
      ['umount-host', 1],
    ]);
    expect(steps[0].command).to.equal('/.rootprobe/busybox umount /oldroot');
    expect(errnoOf(steps[0].output)).to.equal('EBUSY');
    expect(errnoOf(steps[2].output)).to.equal('EBUSY');
    expect(errnoOf('')).to.equal(undefined);
    expect(parseSteps(undefined)).to.deep.equal([]);
    expect(parseSteps('x\t0\tcmd\tout\twith tab\n')[0]).to.deep.equal({ name: 'x', status: 0, command: 'cmd', output: 'out\twith tab' });
  });

  it('finds the holder of the busy loop root by its cwd, exe and fds, and not PID 1 or the probe', () => {
    const st = recordedShutdown();
    const oldroot = st.mountAt('/oldroot')!;
    expect(oldroot.source).to.equal('/dev/loop0');
    const holds = holdersOf(st, oldroot);
    expect([...new Set(holds.map((h) => h.comm))]).to.deep.equal(['sleep']);
    expect(holds.map((h) => `${h.what} ${h.target}`)).to.include.members([
      'cwd /oldroot/var/log',
      'fd 0 /oldroot/run/initctl',
      'exe /oldroot/bin/busybox',
    ]);
    expect(describeHolders(holds)).to.match(
      /^pid \d+ \(sleep\): exe \/oldroot\/bin\/busybox, cwd \/oldroot\/var\/log, fd 0 \/oldroot\/run\/initctl/,
    );
    // Nothing of any process lies on the partition mount: the loop device holds it.
    expect(holdersOf(st, st.mountAt('/host')!)).to.deep.equal([]);
  });

  it('places a path on the mount with the longest mount point', () => {
    const st = recordedShutdown();
    expect(mountOf(st, '/oldroot/var/log')?.mountPoint).to.equal('/oldroot');
    expect(mountOf(st, '/oldrootx')?.mountPoint).to.equal('/');
    expect(mountOf(st, '/host/images/root.img')?.mountPoint).to.equal('/host');
    expect(mountOf(st, '/dev/console')?.fsType).to.equal('devtmpfs');
  });
});

describe('loop_root_shutdown and its twins on debian/bookworm @boot', function () {
  this.timeout(1_200_000);
  let kernel: Kernel;
  let art: string;
  const runs = new Map<string, RunRecord>();
  const names = [
    'loop_root_shutdown',
    'loop_root_shutdown_holder',
    'loop_twin_no_detach',
    'loop_twin_no_host_umount',
    'loop_twin_lazy_host',
    'loop_twin_busy_without_holder',
  ];

  before(async () => {
    kernel = await resolveKernel('debian/bookworm');
    const accel = (await detectAccel(kernel.vmlinuz)).accel;
    art = await makeTempDir('rootprobe-loop-test-');
    const scenarios = pickScenarios(await loadScenarios([fixtures]), names);
    const records = await pool(scenarios, 2, (s) => runScenario(s, kernel, { accel, artifactsRoot: art }));
    for (const r of records) runs.set(r.scenario, r);
  });
  after(async () => {
    if (art) await removeTempDir(art);
  });

  const show = (r: RunRecord | undefined): string => `${r?.outcome}: ${r?.message}\n${r?.consoleTail.slice(-10).join('\n')}`;

  it('loop_root_shutdown passes: PID 1 runs from the tmpfs, nothing is left mounted, both images are clean on the host', () => {
    const r = runs.get('loop_root_shutdown');
    expect(r?.outcome, show(r)).to.equal('passed');
    expect(r!.stagesReported).to.deep.equal(['initramfs', 'realroot', 'pivoted', 'shutdown', 'done']);
    const ev = r!.evidence.join('\n');
    expect(ev).to.match(/pivoted: \/ is tmpfs, old root at \/oldroot \(\/dev\/loop\d\); PID 1 exe \/\.rootprobe\/busybox/);
    expect(ev).to.match(/host: partition image state "clean", no needs_recovery, e2fsck -fn exit 0/);
    expect(ev).to.match(
      /host: \/images\/root\.img inside it state "clean", no needs_recovery, e2fsck -fn exit 0; \/var\/log\/rootprobe\.log/,
    );
  });

  it('loop_root_shutdown_holder passes by observing the failure: EBUSY, the holder named, the partition needing recovery', () => {
    const r = runs.get('loop_root_shutdown_holder');
    expect(r?.outcome, show(r)).to.equal('passed');
    expect(r!.stagesReported).to.deep.equal(['initramfs', 'realroot', 'pivoted', 'shutdown', 'done']);
    const ev = r!.evidence.join('\n');
    expect(ev).to.match(/umount \/oldroot` -> status 1: .*Device or resource busy \(EBUSY\)/);
    expect(ev).to.match(
      /\/oldroot \(ext4 from \/dev\/loop\d\) stayed busy, held by pid \d+ \(sleep\): .*cwd \/oldroot\/var\/log, fd 0 \/oldroot\/run\/initctl/,
    );
    expect(ev).to.match(/\/host held by loop device \/dev\/loop\d \(backing file \/host\/images\/root\.img\)/);
    expect(ev).to.match(/host: partition image .*needs_recovery SET/);
  });

  it('a shutdown that forgets losetup -d fails, naming /host and the loop device that held it', () => {
    const r = runs.get('loop_twin_no_detach');
    expect(r?.outcome, show(r)).to.equal('failed');
    expect(r!.message).to.match(
      /^\/host \(.*\/dev\/vda.*\) is still mounted at shutdown; `.*umount \/host` -> status 1: .*\(EBUSY\); held by: loop device \/dev\/loop\d \(backing file \/host\/images\/root\.img\)/,
    );
  });

  it('a shutdown that forgets to unmount the partition fails, naming /host', () => {
    const r = runs.get('loop_twin_no_host_umount');
    expect(r?.outcome, show(r)).to.equal('failed');
    expect(r!.message).to.match(/^\/host \(.*\/dev\/vda.*\) is still mounted at shutdown; umount-host: not run/);
  });

  it('a busy partition hidden by umount -l looks clean in the guest and is caught by the host check', () => {
    const r = runs.get('loop_twin_lazy_host');
    expect(r?.outcome, show(r)).to.equal('failed');
    // The guest-side checks all held ...
    expect(r!.evidence.join('\n')).to.match(/shutdown: umount \/oldroot, losetup -d \/dev\/loop\d, umount \/host all exit 0/);
    // ... the partition image did not.
    expect(r!.message).to.match(/the partition image must be clean after the shutdown, but: .*needs_recovery SET/);
  });

  it("the holder variant's assertions fail when nothing holds the loop root", () => {
    const r = runs.get('loop_twin_busy_without_holder');
    expect(r?.outcome, show(r)).to.equal('failed');
    expect(r!.message).to.match(/umount \/oldroot must fail: `.*umount \/oldroot` -> status 0/);
  });
});
