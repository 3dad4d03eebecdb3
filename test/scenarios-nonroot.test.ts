/**
 * nonroot_initramfs on stock Debian kernels, and its broken twins: the scenario decides what
 * it expects from what the guest shows, so it passes on each kernel naming the behaviour it
 * saw, and fails when the behaviour changes. (The patched kernel: test/kernels-build.test.ts.)
 */
import { expect } from 'chai';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadScenarios, pickScenarios } from '../scenarios/index.ts';
import { resolveKernel, type Kernel } from '../kernels/index.ts';
import { runScenario, type RunRecord } from '../harness/run/run-scenario.ts';
import { pool } from '../harness/run/matrix.ts';
import { detectAccel } from '../harness/qemu/accel.ts';
import { parseMountinfo } from '../harness/readback/mountinfo.ts';
import { BEHAVIOURS, rootShape } from '../scenarios/nonroot_initramfs/scenario.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const twins = path.join(root, 'test/fixtures/scenarios/nonroot_initramfs');

describe('nonroot_initramfs: the shape of / decides the expectation', () => {
  const entry = (line: string) => parseMountinfo(`${line}\n`)[0]!;
  it('rootfs as its own parent, rootfs with a parent, a tmpfs atop rootfs', () => {
    expect(rootShape(entry('1 1 0:2 / / rw - rootfs rootfs rw'))).to.equal('rootfs-top');
    expect(rootShape(entry('2 1 0:3 / / rw - rootfs rootfs rw'))).to.equal('rootfs-with-parent');
    expect(rootShape(entry('22 1 0:20 / / rw - tmpfs tmpfs rw'))).to.equal('tmpfs-over-rootfs');
    expect(rootShape(entry('25 1 254:0 / / rw - ext4 /dev/vda rw'))).to.equal(undefined);
    expect(BEHAVIOURS['rootfs-top']).to.match(/EINVAL/);
  });
});

describe('nonroot_initramfs on Debian kernels, and its broken twins @boot', function () {
  this.timeout(1_800_000);
  const records = new Map<string, RunRecord>();
  let artifacts: string;

  before(async () => {
    artifacts = await fs.mkdtemp(path.join(os.tmpdir(), 'rootprobe-nonroot-test-'));
    const kernels = new Map<string, Kernel>();
    for (const k of ['debian/bookworm', 'debian/sid']) kernels.set(k, await resolveKernel(k));
    const accel = (await detectAccel(kernels.get('debian/bookworm')!.vmlinuz)).accel;
    const all = await loadScenarios([twins]);
    const runs: Array<[string, string]> = [
      ['nonroot_initramfs', 'debian/bookworm'],
      ['nonroot_initramfs', 'debian/sid'],
      ['nonroot_twin_expects_pivot', 'debian/bookworm'],
      ['nonroot_twin_no_bind', 'debian/bookworm'],
    ];
    await pool(runs, 2, async ([name, k]) => {
      const [sc] = pickScenarios(all, [name]);
      records.set(`${name}@${k}`, await runScenario(sc!, kernels.get(k)!, { accel, artifactsRoot: artifacts }));
    });
  });
  after(async () => {
    await fs.rm(artifacts, { recursive: true, force: true });
  });

  it('bookworm (6.1): / is rootfs, its own parent; pivot_root fails with EINVAL; both workarounds work', () => {
    const r = records.get('nonroot_initramfs@debian/bookworm')!;
    expect(r.outcome, r.message).to.equal('passed');
    expect(r.behaviours).to.deep.equal([BEHAVIOURS['rootfs-top']]);
    const ev = r.evidence.join('\n');
    expect(ev).to.match(/initramfs: \/ is rootfs \(mount \d+, its own parent\)/);
    expect(ev).to.match(/direct: pivot_root .* failed with EINVAL/);
    expect(ev).to.match(/workaround \(a\): .* pivot_root succeeded/);
    expect(ev).to.match(/workaround \(b\): switch_root into a tmpfs copy/);
    // the stock kernel does not know the parameter and hands it to /init
    expect(ev).to.match(/Unknown kernel command line parameters "nonroot_initramfs"/);
    const direct = r.stages.find((s) => s.name === 'direct')!;
    expect(direct.vars.errno).to.equal('EINVAL');
  });

  it('sid: / is rootfs atop a parent mount; pivot_root works from the initramfs', () => {
    const r = records.get('nonroot_initramfs@debian/sid')!;
    expect(r.outcome, r.message).to.equal('passed');
    expect(r.behaviours).to.deep.equal([BEHAVIOURS['rootfs-with-parent']]);
    expect(r.evidence.join('\n')).to.match(/initramfs: \/ is rootfs \(mount \d+, parent mount \d+\)/);
    expect(r.evidence.join('\n')).to.match(/direct: pivot_root \/newroot \/newroot\/oldroot succeeded/);
  });

  it('a twin that expects pivot_root to work on bookworm fails, naming EINVAL', () => {
    const r = records.get('nonroot_twin_expects_pivot@debian/bookworm')!;
    expect(r.outcome, r.message).to.equal('failed');
    expect(r.message).to.match(/pivot_root from the initramfs: pivot_root failed with EINVAL/);
  });

  it('a twin whose workaround (a) skips the bind mount fails, naming EINVAL', () => {
    const r = records.get('nonroot_twin_no_bind@debian/bookworm')!;
    expect(r.outcome, r.message).to.equal('failed');
    expect(r.message).to.match(/workaround \(a\), bind mount \+ chroot: pivot_root failed with EINVAL/);
  });
});
