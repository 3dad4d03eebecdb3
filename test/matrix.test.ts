/**
 * The kernel matrix as a user runs it: every scenario on the three Debian suites and on our
 * patched source build, through the CLI, and `rootprobe diff` showing what the patch and
 * the newer kernel changed for nonroot_initramfs.
 *
 * Every cell must pass: a failed assertion, a missing stage, a timeout or a panic on any
 * kernel fails the test. (debian/trixie's 6.12 used to panic in early boot in part of its
 * boots under TCG; 6.12.117 booted 50 of 50 times, bench/boot-repeat.ts, so that special
 * case is gone.) --retries stays, as a user would run it: a flake is reported, never hidden.
 */
import { expect } from 'chai';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { cli } from './support/cli.ts';
import { loadScenarios } from '../scenarios/index.ts';

const KERNELS = ['debian/bookworm', 'debian/trixie', 'debian/sid', 'build/nonroot-6.1'];

interface Run {
  scenario: string;
  kernel: string;
  outcome: string;
  accel: string;
  flaky?: boolean;
  attempts?: Array<{ outcome: string }>;
  behaviours: string[];
  message?: string;
}

describe('kernel matrix: every scenario on bookworm, trixie, sid and build/nonroot-6.1 @boot', () => {
  let dir: string;
  let result: { code: number | null; stdout: string; stderr: string };
  let runs: Run[];
  before(async function () {
    this.timeout(3_600_000);
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rootprobe-matrix-'));
    result = await cli([
      'run',
      '--all',
      ...KERNELS.flatMap((k) => ['--kernel', k]),
      '--retries',
      '3',
      '--json',
      path.join(dir, 'matrix.json'),
      '--evidence',
      path.join(dir, 'evidence.md'),
      '--artifacts',
      path.join(dir, 'artifacts'),
    ]);
    runs = JSON.parse(await fs.readFile(path.join(dir, 'matrix.json'), 'utf8')).runs;
  });
  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('passes on all four kernels and prints the scenario x kernel table', async () => {
    const bad = runs
      // skipped: the scenario does not apply to that kernel (its reason is checked in scenarios-new.test.ts)
      .filter((r) => r.outcome !== 'passed' && r.outcome !== 'skipped')
      .map((r) => `${r.scenario} on ${r.kernel}: ${r.outcome} ${r.message ?? ''}`);
    expect(bad, result.stdout).to.deep.equal([]);
    expect(result.code).to.equal(0);
    const header = result.stdout.split('\n').find((l) => l.startsWith('scenario'))!;
    for (const k of KERNELS) expect(header).to.include(k);
    expect(runs).to.have.length((await loadScenarios()).length * KERNELS.length);
    const flaky = runs.filter((r) => r.flaky).map((r) => `${r.scenario}@${r.kernel}`);
    if (flaky.length) console.log(`      flaky cells (passed on a retry): ${flaky.join(', ')}`);
  });

  it('names the nonroot_initramfs behaviour each kernel showed', () => {
    const seen = (k: string) => runs.find((r) => r.scenario === 'nonroot_initramfs' && r.kernel === k)!.behaviours.join('; ');
    expect(seen('debian/bookworm')).to.match(/EINVAL/);
    expect(seen('debian/trixie')).to.match(/EINVAL/);
    expect(seen('debian/sid')).to.not.match(/EINVAL/);
    expect(seen('build/nonroot-6.1')).to.match(/tmpfs/);
  });

  it('writes the evidence table with a column per kernel', async () => {
    const md = await fs.readFile(path.join(dir, 'evidence.md'), 'utf8');
    for (const k of KERNELS) expect(md).to.include(k);
    expect(md).to.match(/004/);
  });
});

describe('rootprobe diff: bookworm vs sid for nonroot_initramfs @boot', () => {
  let result: { code: number | null; stdout: string; stderr: string };
  before(async function () {
    this.timeout(1_200_000);
    result = await cli(['diff', '--kernel', 'debian/bookworm', '--kernel', 'debian/sid', '--retries', '2', 'nonroot_initramfs']);
  });

  it('exits 1 (the readback differs) and shows EINVAL against success', () => {
    expect(result.code, result.stdout + result.stderr).to.equal(1);
    expect(result.stdout).to.match(/^nonroot_initramfs: debian\/bookworm \(6\.1[^)]*\) vs debian\/sid \(7\./m);
    // the errno of pivot_root straight from the initramfs, as the guest recorded it
    const lines = result.stdout.split('\n');
    const bookworm = lines.filter((l) => l.includes('- debian/bookworm:')).join('\n');
    const sid = lines.filter((l) => l.includes('+ debian/sid:')).join('\n');
    expect(bookworm).to.match(/EINVAL|Invalid argument/);
    expect(sid).to.not.match(/EINVAL|Invalid argument/);
    // and the shape of / that explains it: rootfs on top of the tree vs rootfs with a parent
    expect(result.stdout).to.match(/mount \/\n\s+- debian\/bookworm: rootfs from rootfs, root \/, parent itself \(top of the tree\)/);
  });
});
