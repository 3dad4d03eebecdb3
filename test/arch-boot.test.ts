/**
 * Every scenario on arm64 and riscv64 guests (Debian bookworm's cloud-arm64 6.1, trixie's
 * riscv64 6.12, and the nonroot-6.1 recipe cross-built for arm64, under TCG on an x86-64
 * host), through the CLI as the README says, and
 * `rootprobe diff` of the same kernel release on x86-64 and arm64: the mount tree the
 * scenarios read back is the same; only the command line (console, result port) differs.
 */
import { expect } from 'chai';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { cli } from './support/cli.ts';
import { loadScenarios } from '../scenarios/index.ts';

const DEBIAN = ['debian/bookworm:cloud-arm64', 'debian/trixie:riscv64'];
/** Cross-built from Debian's linux-source-6.1 with the nonroot_initramfs patch (minutes, once per cache). */
const CROSS = 'build/nonroot-6.1,arch=arm64';
const KERNELS = [...DEBIAN, CROSS];

interface Run {
  scenario: string;
  kernel: string;
  outcome: string;
  accel: string;
  arch?: string;
  behaviours: string[];
  message?: string;
}

describe('arm64 and riscv64: every scenario on bookworm:cloud-arm64, trixie:riscv64 and a recipe kernel cross-built for arm64 @boot', () => {
  let dir: string;
  let result: { code: number | null; stdout: string; stderr: string };
  let runs: Run[];
  before(async function () {
    this.timeout(3_600_000);
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rootprobe-arch-'));
    result = await cli([
      'run',
      '--all',
      ...KERNELS.flatMap((k) => ['--kernel', k]),
      '--retries',
      '2',
      '--json',
      path.join(dir, 'arch.json'),
      '--junit',
      path.join(dir, 'arch.xml'),
      '--evidence',
      path.join(dir, 'evidence.md'),
      '--artifacts',
      path.join(dir, 'artifacts'),
    ]);
    runs = JSON.parse(await fs.readFile(path.join(dir, 'arch.json'), 'utf8')).runs;
  });
  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('passes every cell that applies; a skip names the kernel option or version it lacks', async () => {
    const bad = runs
      .filter((r) => r.outcome !== 'passed' && r.outcome !== 'skipped')
      .map((r) => `${r.scenario} on ${r.kernel}: ${r.outcome} ${r.message ?? ''}`);
    expect(bad, result.stdout).to.deep.equal([]);
    expect(result.code).to.equal(0);
    expect(runs).to.have.length((await loadScenarios()).length * KERNELS.length);
    for (const r of runs.filter((x) => x.outcome === 'skipped')) expect(r.message, r.scenario).to.match(/CONFIG_[A-Z0-9_]+|Linux \d+\.\d+/);
    // Most of the seed scenarios ran on each architecture (not all skipped).
    for (const k of KERNELS) expect(runs.filter((r) => r.kernel === k && r.outcome === 'passed').length, k).to.be.at.least(11);
  });

  it('records each guest architecture, under TCG on this x86-64 host, in the JSON, JUnit, terminal and evidence', async () => {
    expect([...new Set(runs.filter((r) => r.kernel === KERNELS[0]).map((r) => r.arch))]).to.deep.equal(['arm64']);
    expect([...new Set(runs.filter((r) => r.kernel === KERNELS[1]).map((r) => r.arch))]).to.deep.equal(['riscv64']);
    expect([...new Set(runs.filter((r) => r.kernel === CROSS).map((r) => r.arch))]).to.deep.equal(['arm64']);
    if (process.arch === 'x64') expect([...new Set(runs.map((r) => r.accel))]).to.deep.equal(['tcg']);
    expect(await fs.readFile(path.join(dir, 'arch.xml'), 'utf8'))
      .to.include('arch=riscv64')
      .and.include('arch=arm64');
    expect(result.stdout).to.match(/PASS switch_root on debian\/bookworm:cloud-arm64 \(6\.1[^,]*-arm64, tcg, arm64, bios\)/);
    expect(await fs.readFile(path.join(dir, 'evidence.md'), 'utf8')).to.match(/- architectures: arm64, riscv64/);
  });

  it("shows the same pivot_root-from-the-initramfs behaviour as x86-64 of the same releases (EINVAL on 6.1 and 6.12; the patch's tmpfs)", () => {
    const patched = runs.find((x) => x.scenario === 'nonroot_initramfs' && x.kernel === CROSS)!;
    expect(patched.outcome).to.equal('passed');
    expect(patched.behaviours.join('; ')).to.match(/tmpfs/);
    // Built in (no modules), so the kernel mounts its own root and runs an old initrd's /linuxrc.
    for (const sc of ['kernel_root', 'initrd_linuxrc']) {
      const r = runs.find((x) => x.scenario === sc && x.kernel === CROSS)!;
      expect(r.outcome, `${sc}: ${r.message ?? ''}`).to.equal('passed');
    }
    for (const k of DEBIAN) {
      const r = runs.find((x) => x.scenario === 'nonroot_initramfs' && x.kernel === k)!;
      expect(r.behaviours.join('; '), k).to.match(/EINVAL/);
    }
  });
});

describe('rootprobe diff across architectures: bookworm 6.1 on x86-64 and on arm64 @boot', () => {
  let result: { code: number | null; stdout: string; stderr: string };
  before(async function () {
    this.timeout(1_200_000);
    result = await cli([
      'diff',
      '--kernel',
      'debian/bookworm',
      '--kernel',
      'debian/bookworm:cloud-arm64',
      '--retries',
      '2',
      'nonroot_initramfs',
      'pivot_root',
      'loop_root_shutdown',
    ]);
  });

  it('finds the mount trees the same: the command line (console, result port) is what differs', () => {
    expect(result.code, result.stdout + result.stderr).to.equal(1);
    expect(result.stdout).to.match(
      /^nonroot_initramfs: debian\/bookworm \(6\.1[^)]*amd64\) vs debian\/bookworm:cloud-arm64 \(6\.1[^)]*arm64\)/m,
    );
    expect(result.stdout).to.match(/\+ debian\/bookworm:cloud-arm64: console=ttyAMA0 .*rootprobe\.port=vport:org\.rootprobe\.result/);
    expect(result.stdout).to.match(/^pivot_root: .*\n {2}no differences in the readback/m);
    expect(result.stdout).to.match(/^loop_root_shutdown: .*\n {2}no differences in the readback/m);
    expect(result.stdout).to.not.match(/^ {4}mount /m);
  });
});
