/**
 * Seed 004 with Debian's real sysvinit as PID 1 of the loop root: the crafted init_request's
 * bytes, then the three ways (telinit u, the request, SIGUSR1) and a broken twin on a real kernel.
 */
import { expect } from 'chai';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { INIT_CMD_RUNLVL, INIT_MAGIC, INIT_REQUEST_SIZE, initRequest } from '../scenarios/sysvinit_loop_root/family.ts';
import { loadScenarios, pickScenarios } from '../scenarios/index.ts';
import { resolveKernel, type Kernel } from '../kernels/index.ts';
import { runScenario, type RunRecord } from '../harness/run/run-scenario.ts';
import { pool } from '../harness/run/matrix.ts';
import { detectAccel } from '../harness/qemu/accel.ts';
import { makeTempDir, removeTempDir } from '../harness/lifecycle.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const fixtures = path.join(here, 'fixtures/scenarios/sysvinit_loop_root');

describe('sysvinit_loop_root: the crafted init_request', () => {
  it("is struct init_request of initreq.h, little-endian: magic 0x03091969, INIT_CMD_RUNLVL, runlevel 'U', 384 bytes", () => {
    const b = initRequest();
    expect(b.length).to.equal(INIT_REQUEST_SIZE).and.equal(384);
    expect([...b.subarray(0, 12)]).to.deep.equal([0x69, 0x19, 0x09, 0x03, INIT_CMD_RUNLVL, 0, 0, 0, 0x55, 0, 0, 0]);
    expect(b.subarray(12).every((x) => x === 0)).to.equal(true);
    expect(initRequest('U', INIT_MAGIC ^ 1).readInt32LE(0)).to.equal(0x03091968);
  });
});

describe('sysvinit_loop_root, its variants and its twin on debian/bookworm @boot', function () {
  this.timeout(1_200_000);
  let kernel: Kernel;
  let art: string;
  const runs = new Map<string, RunRecord>();
  const names = ['sysvinit_loop_root', 'sysvinit_loop_root_request', 'sysvinit_loop_root_usr1', 'sysvinit_twin_bad_magic'];

  before(async () => {
    kernel = await resolveKernel('debian/bookworm');
    const accel = (await detectAccel(kernel.vmlinuz)).accel;
    art = await makeTempDir('rootprobe-sysvinit-test-');
    const scenarios = pickScenarios(await loadScenarios([fixtures]), names);
    const records = await pool(scenarios, 1, (s) => runScenario(s, kernel, { accel, artifactsRoot: art }));
    for (const r of records) runs.set(r.scenario, r);
  });
  after(async () => {
    if (art) await removeTempDir(art);
  });

  const show = (r: RunRecord | undefined): string => `${r?.outcome}: ${r?.message}\n${r?.consoleTail.slice(-10).join('\n')}`;
  const stages = ['initramfs', 'realroot', 'pivoted', 'released', 'shutdown', 'done'];
  const common = (ev: string): void => {
    expect(ev).to.match(
      /realroot: PID 1 is sysvinit-core's init on \/dev\/loop\d: exe \/sbin\/init, cwd \/, root \/, fds \[\d+ \/run\/initctl\]/,
    );
    expect(ev).to.match(/pivoted: .*PID 1 holds it: pid 1 \(init\): exe \/oldroot\/sbin\/init, fd \d+ \/oldroot\/run\/initctl/);
  };

  for (const [name, way] of [
    ['sysvinit_loop_root', 'telinit u'],
    ['sysvinit_loop_root_request', 'the crafted init_request written to /oldroot/run/initctl'],
  ] as const) {
    it(`${name}: after ${way} init re-execs from the tmpfs, lets go of the old root, and both images are clean on the host`, () => {
      const r = runs.get(name);
      expect(r?.outcome, show(r)).to.equal('passed');
      expect(r!.stagesReported).to.deep.equal(stages);
      const ev = r!.evidence.join('\n');
      common(ev);
      expect(ev).to.include(`released: after ${way} (waited`);
      expect(ev).to.match(/PID 1 exe \/sbin\/init, cwd \/, root \/, fds \[\d+ \/run\/initctl\]; on the old root: nothing/);
      expect(ev).to.match(/`\/\.rootprobe\/busybox umount \/oldroot` -> status 0/);
      expect(ev).to.match(/host: partition image state "clean", no needs_recovery, e2fsck -fn exit 0/);
      expect(ev).to.match(/host: \/images\/root\.img inside it state "clean", no needs_recovery, e2fsck -fn exit 0/);
    });
  }

  it('sysvinit_loop_root_usr1: SIGUSR1 makes init reopen its fifo in the tmpfs, but its exe keeps the old root busy (EBUSY, needs_recovery)', () => {
    const r = runs.get('sysvinit_loop_root_usr1');
    expect(r?.outcome, show(r)).to.equal('passed');
    expect(r!.stagesReported).to.deep.equal(stages);
    const ev = r!.evidence.join('\n');
    common(ev);
    expect(ev).to.match(
      /released: after kill -USR1 1 .*PID 1 exe \/oldroot\/sbin\/init, cwd \/, root \/, fds \[\d+ \/run\/initctl\]; on the old root: pid 1 \(init\): exe \/oldroot\/sbin\/init; its initctl fifo: fd \d+ \/run\/initctl$/m,
    );
    expect(ev).to.match(/umount \/oldroot` -> status 1: .*\(EBUSY\)/);
    expect(ev).to.match(/host: partition image .*needs_recovery SET/);
  });

  it('a request with a wrong magic is ignored by init: the released checks fail, naming what PID 1 still holds', () => {
    const r = runs.get('sysvinit_twin_bad_magic');
    expect(r?.outcome, show(r)).to.equal('failed');
    expect(r!.message).to.match(
      /^PID 1 still holds the old root after the crafted init_request written to \/oldroot\/run\/initctl: pid 1 \(init\): exe \/oldroot\/sbin\/init\n/,
    );
  });
});
