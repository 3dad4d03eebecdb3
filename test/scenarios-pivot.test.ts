/**
 * pivot_root and the switch_root variants (util-linux's, by hand) on a real kernel, and their
 * broken twins (test/fixtures/scenarios/pivot_root and switch_root_manual): each twin changes one behaviour and the real
 * scenario's assertions must then fail, saying what changed.
 */
import { expect } from 'chai';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadScenarios, pickScenarios } from '../scenarios/index.ts';
import { resolveKernel } from '../kernels/index.ts';
import { runScenario, type RunRecord } from '../harness/run/run-scenario.ts';
import { pool } from '../harness/run/matrix.ts';
import { detectAccel } from '../harness/qemu/accel.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const twinsDir = path.join(root, 'test/fixtures/scenarios/pivot_root');
const manualTwinsDir = path.join(root, 'test/fixtures/scenarios/switch_root_manual');

const MAIN = ['pivot_root', 'switch_root_util_linux', 'switch_root_manual'];
const TWINS = ['pivot-twin-put-old-outside', 'pivot-twin-put-old-mnt', 'pivot-twin-no-chdir', 'switch-twin-manual-no-cleanup'];

describe('pivot_root and switch_root variants: definitions', () => {
  it('are built in, with their seeds and stages', async () => {
    const all = await loadScenarios();
    const [pivot, util, manual] = pickScenarios(all, MAIN);
    expect(pivot!.seeds).to.deep.equal(['000', '001', '002']);
    expect(pivot!.stages).to.deep.equal(['initramfs', 'pivoted', 'back']);
    expect(util!.stages).to.deep.equal(['initramfs', 'realroot']);
    expect(manual!.stages).to.deep.equal(['initramfs', 'realroot']);
  });

  it('the twins load beside them under names of their own, with the real guest scripts', async () => {
    const all = await loadScenarios([twinsDir, manualTwinsDir]);
    const twins = pickScenarios(all, TWINS);
    expect(twins.map((t) => t.name)).to.deep.equal(TWINS);
    // built by the scenarios' own factories: same folder, so the same init.sh
    expect(twins[0]!.dir).to.equal(path.join(root, 'scenarios/pivot_root'));
    expect(twins[3]!.dir).to.equal(path.join(root, 'scenarios/switch_root_manual'));
  });
});

describe('pivot_root and switch_root variants on debian/bookworm @boot', () => {
  const records = new Map<string, RunRecord>();
  let artifacts: string;

  before(async function () {
    this.timeout(1_800_000);
    const kernel = await resolveKernel('debian/bookworm');
    const accel = (await detectAccel(kernel.vmlinuz)).accel;
    artifacts = await fs.mkdtemp(path.join(os.tmpdir(), 'rootprobe-pivot-test-'));
    const all = await loadScenarios([twinsDir, manualTwinsDir]);
    await pool(pickScenarios(all, [...MAIN, ...TWINS]), 2, async (sc) => {
      records.set(sc.name, await runScenario(sc, kernel, { accel, artifactsRoot: artifacts }));
    });
  });
  after(async () => {
    if (artifacts) await fs.rm(artifacts, { recursive: true, force: true });
  });

  const get = (name: string): RunRecord => records.get(name)!;
  const evidence = (name: string): string => get(name).evidence.join('\n');

  it('pivot_root passes: the initramfs stays visible at /var/run/rootfs, and the way back works', () => {
    const r = get('pivot_root');
    expect(r.outcome, r.message).to.equal('passed');
    // bookworm 6.1: the initramfs is the absolute root; pivot_root from it is EINVAL (seed 002)
    expect(r.behaviours.join('\n')).to.match(/pivot_root from the initramfs: EINVAL/);
    expect(evidence('pivot_root')).to.match(/sleeper pid \d+ exe "\/var\/run\/rootfs\/bin\/sleeper"/);
    expect(evidence('pivot_root')).to.match(/sleep pid \d+ cwd "\/var\/run\/rootfs\/tmp"/);
    expect(evidence('pivot_root')).to.match(/getcwd\(2\) says "\(unreachable\)\/"/);
    expect(evidence('pivot_root')).to.match(/^back: \/ is the initramfs again/m);
  });

  it('util-linux switch_root passes: the witness reads (deleted), nothing of the initramfs is left, /run is carried', () => {
    const r = get('switch_root_util_linux');
    expect(r.outcome, r.message).to.equal('passed');
    expect(evidence('switch_root_util_linux')).to.match(/exe "\/bin\/sleeper \(deleted\)" cwd "\/witness \(deleted\)"/);
    expect(evidence('switch_root_util_linux')).to.match(/carried over .*\/run/);
    expect(evidence('switch_root_util_linux')).to.match(/holds 0 files and 0 directories/);
  });

  it('the switch by hand passes: same overmount, the initramfs left intact', () => {
    const r = get('switch_root_manual');
    expect(r.outcome, r.message).to.equal('passed');
    expect(evidence('switch_root_manual')).to.match(/atop rootfs/);
    expect(evidence('switch_root_manual')).to.match(/witness pid \d+ exe "\/bin\/sleeper" cwd "\/witness"/);
  });

  it('twin: put_old outside the new root fails, naming the refused pivot_root', () => {
    const r = get('pivot-twin-put-old-outside');
    expect(r.outcome, r.message).to.equal('failed');
    expect(r.message).to.match(/pivot_root \/newroot failed in the guest: .*(Device or resource busy|Invalid argument)/);
  });

  it('twin: put_old at /mnt fails, showing the old root at /mnt in the mount tree', () => {
    const r = get('pivot-twin-put-old-mnt');
    expect(r.outcome, r.message).to.equal('failed');
    expect(r.message).to.match(/expected a mount at "\/var\/run\/rootfs" in stage "pivoted"/);
    expect(r.message).to.match(/─\/mnt\s+rootfs\s+rootfs\s/);
  });

  it('twin: no chdir before pivot_root fails, PID 1 left with its cwd in the old root', () => {
    const r = get('pivot-twin-no-chdir');
    expect(r.outcome, r.message).to.equal('failed');
    expect(r.message).to.match(/expected pid 1 \(init\) in stage "pivoted" to have cwd "\/", but it is "\/var\/run\/rootfs\/tmp"/);
  });

  it('twin: the switch by hand checked as if the initramfs were deleted fails on the witness', () => {
    const r = get('switch-twin-manual-no-cleanup');
    expect(r.outcome, r.message).to.equal('failed');
    expect(r.message).to.match(/to have exe "\/bin\/sleeper \(deleted\)", but it is "\/bin\/sleeper"/);
  });
});
