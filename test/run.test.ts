/**
 * The whole flow on a real kernel: images -> QEMU -> frames -> stages -> verdict, through the
 * CLI as a user runs it, and the verdicts of guests that go wrong on purpose.
 */
import { expect } from 'chai';
import { promises as fs, existsSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadScenarios, pickScenarios } from '../scenarios/index.ts';
import { resolveKernel, type Kernel } from '../kernels/index.ts';
import { runScenario, type RunRecord } from '../harness/run/run-scenario.ts';
import { runMatrix, pool } from '../harness/run/matrix.ts';
import { detectAccel } from '../harness/qemu/accel.ts';
import { SetupError } from '../harness/errors.ts';
import { cli, qemuPids, type Ran } from './support/cli.ts';
import { Progress } from '../harness/report/terminal.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const fixtures = path.join(root, 'test/fixtures/scenarios/broken');

describe('rootprobe CLI: bad input is rejected before anything boots', () => {
  it('an unknown scenario exits 2 and lists the known ones', async () => {
    const r = await cli(['run', 'no_such_scenario']);
    expect(r.code).to.equal(2);
    expect(r.stderr).to.match(/unknown scenario: no_such_scenario/);
    expect(r.stderr).to.include('switch_root');
  });

  it('an unknown kernel exits 2 and names the accepted forms', async () => {
    const r = await cli(['run', 'switch_root', '--kernel', 'debian/hamm']);
    expect(r.code).to.equal(2);
    expect(r.stderr).to.match(/hamm/);
    expect(r.stderr).to.match(/bookworm/);
  });

  it('a file: kernel that does not exist exits 2 naming the path', async () => {
    const r = await cli(['run', 'switch_root', '--kernel', 'file:/nonexistent/bzImage']);
    expect(r.code).to.equal(2);
    expect(r.stderr).to.include('/nonexistent/bzImage');
  });

  it('a malformed option exits 2', async () => {
    expect((await cli(['run', '--jobs', 'zero'])).code).to.equal(2);
    expect((await cli(['run', '--no-such-option'])).code).to.equal(2);
    expect((await cli(['frobnicate'])).code).to.equal(2);
  });

  it('doctor finds every host tool on this machine (busybox-static counts as static) and exits 0', async () => {
    const r = await cli(['doctor']);
    expect(r.code, r.stdout + r.stderr).to.equal(0);
    expect(r.stdout).to.match(/^busybox\s+ok\s+\//m);
    expect(r.stdout).to.match(/^qemu-system-x86_64\s+ok/m);
    expect(r.stdout).to.not.match(/MISSING/);
  });

  it('list shows the scenarios with their seeds', async () => {
    const r = await cli(['list']);
    expect(r.code).to.equal(0);
    expect(r.stdout).to.match(/^switch_root\s+.*\[seeds 003, 000\]/m);
  });
});

describe('switch_root end to end through the CLI @boot', () => {
  let dir: string;
  let r: Ran;
  before(async function () {
    this.timeout(900_000);
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rootprobe-cli-test-'));
    // A TMPDIR of its own, so that what it leaves is told apart from other runs on the machine.
    await fs.mkdir(path.join(dir, 'tmp'));
    r = await cli(
      [
        'run',
        'switch_root',
        '--json',
        path.join(dir, 'r.json'),
        '--junit',
        path.join(dir, 'j.xml'),
        '--tap',
        '-',
        '--artifacts',
        path.join(dir, 'art'),
      ],
      {
        env: { TMPDIR: path.join(dir, 'tmp') },
      },
    );
  });
  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('exits 0 and prints the verdict with its evidence', () => {
    expect(r.code, r.stdout + r.stderr).to.equal(0);
    expect(r.stdout).to.match(/^ok 1 - switch_root \[debian\/bookworm\]/m);
    expect(r.stdout).to.match(/realroot: \/ is ext4 from \/dev\/vda/);
    expect(r.stdout).to.match(/witness pid \d+ exe "\/bin\/sleeper \(deleted\)"/);
    expect(r.stdout).to.match(/1 passed, 0 failed/);
  });

  it('writes the JSON report with stage realroot whose / is ext4 atop rootfs', async () => {
    const j = JSON.parse(await fs.readFile(path.join(dir, 'r.json'), 'utf8'));
    expect(j.runs).to.have.length(1);
    const run = j.runs[0];
    expect(run).to.include({ scenario: 'switch_root', kernel: 'debian/bookworm', outcome: 'passed' });
    expect(run.accel).to.be.oneOf(['kvm', 'tcg']);
    expect(run.stages.map((s: { name: string }) => s.name)).to.deep.equal(['initramfs', 'realroot', 'done']);
    const realroot = run.stages.find((s: { name: string }) => s.name === 'realroot');
    const rootMount = realroot.mountinfo.filter((m: { mountPoint: string }) => m.mountPoint === '/').pop();
    expect(rootMount.fsType).to.equal('ext4');
    expect(rootMount.source).to.equal('/dev/vda');
    const initramfs = run.stages.find((s: { name: string }) => s.name === 'initramfs');
    const rootfs = initramfs.mountinfo.find((m: { mountPoint: string }) => m.mountPoint === '/');
    expect(rootfs.fsType).to.equal('rootfs');
    expect(rootMount.parentId).to.equal(rootfs.mountId);
    const pid1 = realroot.processes.find((p: { pid: number }) => p.pid === 1);
    expect(pid1.exe).to.equal('/sbin/init');
    expect(Object.keys(pid1)).to.include.members(['pid', 'comm', 'cmdline', 'exe', 'cwd', 'root', 'probe']);
  });

  it('writes JUnit with one passing testcase', async () => {
    const x = await fs.readFile(path.join(dir, 'j.xml'), 'utf8');
    expect(x).to.match(/<testcase classname="rootprobe\.debian\/bookworm" name="switch_root \[debian\/bookworm\]"/);
    expect(x).to.not.match(/<failure|<error/);
  });

  it('keeps no artifact folder for a passing run without --keep, and leaves no QEMU and no temp folder', async () => {
    expect(existsSync(path.join(dir, 'art', 'switch_root--debian_bookworm'))).to.equal(false);
    expect(qemuPids(path.join(dir, 'tmp'))).to.deep.equal([]);
    // (tsx keeps its compile cache there too: only rootprobe's own folders count)
    expect((await fs.readdir(path.join(dir, 'tmp'))).filter((n) => n.startsWith('rootprobe'))).to.deep.equal([]);
  });
});

describe('verdicts of guests that go wrong on purpose @boot', () => {
  let kernel: Kernel;
  let accel: 'kvm' | 'tcg';
  const records = new Map<string, RunRecord>();
  const panicSeenAt = new Map<string, number>();
  const endedAt = new Map<string, number>();
  let artifacts: string;

  before(async function () {
    this.timeout(900_000);
    kernel = await resolveKernel('debian/bookworm');
    accel = (await detectAccel(kernel.vmlinuz)).accel;
    artifacts = await fs.mkdtemp(path.join(os.tmpdir(), 'rootprobe-verdicts-'));
    const all = await loadScenarios([fixtures]);
    const chosen = pickScenarios(all, ['broken-panic', 'broken-silent', 'broken-hang', 'broken-frame', 'broken-assertion']);
    await pool(chosen, 2, async (sc) => {
      const r = await runScenario(sc, kernel, {
        accel,
        artifactsRoot: artifacts,
        onEvent: (e) => {
          if (e.type === 'console' && e.line.includes('Kernel panic - not syncing') && !panicSeenAt.has(sc.name)) {
            panicSeenAt.set(sc.name, Date.now());
          }
        },
      });
      endedAt.set(sc.name, Date.now());
      records.set(sc.name, r);
    });
  });
  after(async () => {
    await fs.rm(artifacts, { recursive: true, force: true });
  });

  it('a panic is `panic`, within 2 s of the panic line, with that line', () => {
    const r = records.get('broken-panic')!;
    expect(r.outcome, r.message).to.equal('panic');
    expect(r.message).to.match(/Kernel panic - not syncing/);
    expect(r.message).to.match(/after stage `initramfs`/);
    expect(endedAt.get('broken-panic')! - panicSeenAt.get('broken-panic')!).to.be.below(2000);
  });

  it('a guest that stops without reporting is `missing-stage`, naming the stage, with the last console lines', () => {
    const r = records.get('broken-silent')!;
    expect(r.outcome, r.message).to.equal('missing-stage');
    expect(r.message).to.match(/stage `initramfs` never reported/);
    expect(r.message).to.match(/last console lines/);
    expect(r.message).to.include('about to power off without a probe');
  });

  it('a guest that hangs is `timeout`, saying how long it waited and for which stage', () => {
    const r = records.get('broken-hang')!;
    expect(r.outcome, r.message).to.equal('timeout');
    expect(r.message).to.match(/waited \d+ s \((kvm|tcg)\) for stage `done`; last stage reached: `initramfs`/);
  });

  it('a damaged frame is an error naming the stage and the failed check', () => {
    const r = records.get('broken-frame')!;
    expect(r.outcome, r.message).to.equal('error');
    expect(r.message).to.match(/stage `initramfs` arrived damaged \(hash\)/);
  });

  it('a failed assertion is `failed` and shows the mount tree', () => {
    const r = records.get('broken-assertion')!;
    expect(r.outcome, r.message).to.equal('failed');
    expect(r.message).to.include('rootfs');
  });

  it('keeps an artifact folder for each failing run, with a reproduce script', async () => {
    const r = records.get('broken-assertion')!;
    expect(r.artifacts).to.not.equal(undefined);
    for (const f of ['console.log', 'result.stream', 'qemu.cmdline', 'readback.json', 'reproduce.sh', 'qemu.sh']) {
      expect(existsSync(path.join(r.artifacts!.dir, f)), f).to.equal(true);
    }
    expect(await fs.readFile(r.artifacts!.reproduce, 'utf8')).to.include('rootprobe run broken-assertion --kernel debian/bookworm');
    expect(r.rerun).to.include('broken-assertion');
  });

  it('leaves no QEMU process and no run folder behind', async () => {
    expect(qemuPids('rootprobe-broken-')).to.deep.equal([]);
    const left = (await fs.readdir(os.tmpdir())).filter((n) => n.startsWith('rootprobe-broken-'));
    expect(left).to.deep.equal([]);
  });

  it('a host binary that does not exist is an error naming it, before anything boots', async () => {
    const all = await loadScenarios([fixtures]);
    const sc = pickScenarios(all, ['broken-missing-binary']);
    const before = qemuPids('rootprobe-broken-missing').length;
    let err: unknown;
    try {
      await runMatrix(sc, ['debian/bookworm'], {
        jobs: 1,
        artifactsRoot: artifacts,
        keep: false,
        progress: new Progress(process.stderr, false),
      });
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(Error);
    expect((err as Error).message).to.include('/usr/bin/rootprobe-no-such-binary');
    expect(err instanceof SetupError || (err as Error).name === 'UsageError').to.equal(true);
    expect(qemuPids('rootprobe-broken-missing').length).to.equal(before);
  });
});
