/**
 * The scenarios of issue 20 (bind_root, kernel_root, initrd_linuxrc, retain_initrd), their
 * broken twins, and the `skipped` verdict: decided before anything is built or booted, and
 * carried as such by every report. The boot tests use Debian's bookworm kernel and the
 * build/nonroot-6.1 recipe kernel (built into the cache on first use, 5-10 minutes).
 */
import { expect } from 'chai';
import { existsSync, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadScenarios, pickScenarios } from '../scenarios/index.ts';
import { resolveKernel, type Kernel } from '../kernels/index.ts';
import { runScenario, type RunRecord } from '../harness/run/run-scenario.ts';
import { pool, runMatrix, skippedRecord } from '../harness/run/matrix.ts';
import { detectAccel } from '../harness/qemu/accel.ts';
import { summarize, toJUnit, toTap, type MatrixReport } from '../harness/report/formats.ts';
import { summaryText } from '../harness/report/terminal.ts';
import { evidenceMarkdown } from '../harness/report/evidence.ts';
import { Progress } from '../harness/report/terminal.ts';
import { scenario } from '../harness/scenario.ts';
import { cannotMountRoot } from '../scenarios/kernel_root/scenario.ts';
import { cannotRunLinuxrc } from '../scenarios/initrd_linuxrc/scenario.ts';
import { parseKernelConfig } from '../kernels/config.ts';
import { checkJUnit, checkTap } from './report-checks.ts';
import { cli } from './support/cli.ts';
import { prepareImages } from '../harness/run/prepare.ts';
import { meminfo } from '../scenarios/retain_initrd/scenario.ts';
import { Stage } from '../harness/readback/snapshot.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const fixtures = path.join(root, 'test/fixtures/scenarios');
const twinDirs = ['bind_root', 'kernel_root', 'initrd_linuxrc', 'retain_initrd'].map((d) => path.join(fixtures, d));

function fakeKernel(config: string): Kernel {
  return {
    id: 'file:/nonexistent',
    release: '6.1.0-test',
    vmlinuz: '/nonexistent',
    config: parseKernelConfig(config),
    description: 'test',
    sha256: '',
  } as Kernel;
}

function reportOf(runs: RunRecord[]): MatrixReport {
  return {
    tool: 'rootprobe',
    version: '0.0.0',
    startedAt: new Date(0).toISOString(),
    durationMs: 1000,
    accel: 'tcg',
    accelReason: 'test',
    host: { cpus: 2, node: process.version },
    summary: summarize(runs),
    runs,
  };
}

describe('the skipped verdict: reasons and reports', () => {
  it('kernel_root and initrd_linuxrc name the option that keeps them from a kernel', () => {
    const debianLike = fakeKernel(
      'CONFIG_BLK_DEV_INITRD=y\nCONFIG_BLK_DEV_RAM=m\nCONFIG_VIRTIO_BLK=m\nCONFIG_VIRTIO_PCI=m\nCONFIG_EXT4_FS=y\n',
    );
    expect(cannotMountRoot(debianLike)).to.equal('CONFIG_VIRTIO_BLK=m: the kernel cannot mount its root without an initramfs');
    expect(cannotRunLinuxrc(debianLike)).to.match(/^CONFIG_BLK_DEV_RAM=m: /);
    const noRam = fakeKernel('CONFIG_BLK_DEV_INITRD=y\nCONFIG_VIRTIO_BLK=y\nCONFIG_VIRTIO_PCI=y\nCONFIG_EXT4_FS=y\n');
    expect(cannotMountRoot(noRam)).to.equal(undefined);
    expect(cannotRunLinuxrc(noRam)).to.match(/^CONFIG_BLK_DEV_RAM is not set: .*Initramfs unpacking failed/);
    const recipe = fakeKernel(
      'CONFIG_BLK_DEV_INITRD=y\nCONFIG_BLK_DEV_RAM=y\nCONFIG_VIRTIO_BLK=y\nCONFIG_VIRTIO_PCI=y\nCONFIG_EXT4_FS=y\n',
    );
    expect(cannotRunLinuxrc(recipe)).to.equal(undefined);
  });

  it('a skipped cell is SKIP in the table, # SKIP in TAP, <skipped> in JUnit, SKIPPED in the evidence, and never a pass', async () => {
    const [sc] = pickScenarios(await loadScenarios(), ['kernel_root']);
    const k = fakeKernel('CONFIG_VIRTIO_BLK=m\n');
    const skipped = skippedRecord(sc!, k, cannotMountRoot(k)!, 'tcg');
    const passed = { ...skipped, scenario: 'other', outcome: 'passed' as const, message: undefined, durationMs: 5000 };
    const report = reportOf([skipped, passed]);
    expect(report.summary).to.include({ total: 2, passed: 1, skipped: 1, failed: 0 });
    const tap = toTap(report);
    expect(tap).to.match(
      /^ok 1 - kernel_root \[file:\/nonexistent\] # SKIP CONFIG_VIRTIO_BLK=m: the kernel cannot mount its root without an initramfs$/m,
    );
    expect(checkTap(tap).map((t) => t.ok)).to.deep.equal([true, true]);
    const junit = toJUnit(report);
    expect(checkJUnit(junit).map((c) => c.failure ?? c.error)).to.deep.equal([undefined, undefined]);
    expect(junit).to.match(/<testsuites [^>]*tests="2" failures="0" errors="0" skipped="1"/);
    expect(junit).to.include('<skipped message="CONFIG_VIRTIO_BLK=m: the kernel cannot mount its root without an initramfs"/>');
    expect(junit).to.not.match(/<error|<failure/);
    const table = summaryText(report, false);
    expect(table).to.match(/kernel_root\s+SKIP/);
    expect(table).to.include('1 passed, 0 failed, 1 skipped');
    expect(table).to.include('skipped: CONFIG_VIRTIO_BLK=m');
    const md = evidenceMarkdown(report, [{ name: 'kernel_root', seeds: ['003'] }], { now: new Date(0) });
    expect(md).to.include('**SKIPPED** (not booted): CONFIG_VIRTIO_BLK=m: the kernel cannot mount its root without an initramfs');
    expect(md).to.include('passed 1, not passed 0, skipped 1');
  });

  it('runMatrix decides a skip before building images or booting (a scenario whose images cannot be built is skipped all the same)', async () => {
    const unbuildable = scenario(
      {
        name: 'skip_before_build',
        description: 'skipped on every kernel; its initramfs would throw if anything built it',
        features: [],
        skipIf: () => 'never applies (test)',
        initramfs() {
          throw new Error('the image was built for a skipped cell');
        },
        stages: ['never'],
        check() {
          throw new Error('checked a skipped cell');
        },
      },
      import.meta,
    );
    const artifacts = await fs.mkdtemp(path.join(os.tmpdir(), 'rootprobe-skip-test-'));
    try {
      const report = await runMatrix([unbuildable], ['debian/bookworm'], {
        jobs: 1,
        artifactsRoot: artifacts,
        keep: false,
        progress: new Progress(process.stderr, false),
      });
      expect(report.runs).to.have.length(1);
      const r = report.runs[0]!;
      expect(r.outcome).to.equal('skipped');
      expect(r.message).to.equal('never applies (test)');
      expect(r.durationMs).to.equal(0);
      expect(r.stagesReported).to.deep.equal([]);
      expect(r.artifacts).to.equal(undefined);
      expect(await fs.readdir(artifacts)).to.deep.equal([]);
    } finally {
      await fs.rm(artifacts, { recursive: true, force: true });
    }
  });
});

describe('the skipped verdict through the CLI', () => {
  it('a run whose only cell is skipped exits 0, boots nothing and says SKIP with the reason', async () => {
    const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'rootprobe-skip-cli-'));
    try {
      const r = await cli(['run', 'kernel_root', '--kernel', 'debian/bookworm', '--tap', '-', '--artifacts', path.join(tmp, 'art')]);
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stdout).to.match(/^ok 1 - kernel_root \[debian\/bookworm\] # SKIP CONFIG_VIRTIO_BLK=m: /m);
      expect(r.stdout).to.match(/kernel_root\s+SKIP/);
      expect(r.stderr).to.not.match(/^start /m);
      expect(existsSync(path.join(tmp, 'art'))).to.equal(false);
    } finally {
      await fs.rm(tmp, { recursive: true, force: true });
    }
  });
});

describe('issue 20 scenarios and their broken twins @boot', function () {
  this.timeout(3_600_000);
  const records = new Map<string, RunRecord>();
  let artifacts: string;
  /** The size of the initramfs retain_initrd boots with (its segments, concatenated). */
  let imageBytes = 0;

  before(async () => {
    artifacts = await fs.mkdtemp(path.join(os.tmpdir(), 'rootprobe-new-scenarios-test-'));
    const kernels = new Map<string, Kernel>();
    for (const k of ['debian/bookworm', 'debian/sid', 'build/nonroot-6.1', 'build/stock-7.2']) kernels.set(k, await resolveKernel(k));
    const accel = (await detectAccel(kernels.get('debian/bookworm')!.vmlinuz)).accel;
    const all = await loadScenarios(twinDirs.filter((d) => existsSync(d)));
    const runs: Array<[string, string]> = [
      ['bind_root', 'debian/bookworm'],
      ['bind_root', 'build/nonroot-6.1'],
      ['bind_root_twin_copy', 'debian/bookworm'],
      ['kernel_root', 'build/nonroot-6.1'],
      ['kernel_root_twin_switch', 'build/nonroot-6.1'],
      ['initrd_linuxrc', 'build/nonroot-6.1'],
      ['initrd_linuxrc_twin_exec', 'build/nonroot-6.1'],
      ['initrd_linuxrc_twin_none', 'build/nonroot-6.1'],
      ['initrd_linuxrc', 'build/stock-7.2'],
      ['retain_initrd', 'debian/sid'],
      ['retain_initrd_without', 'debian/sid'],
      ['retain_initrd_twin_no_param', 'debian/sid'],
    ];
    // One VM at a time: the machine is shared.
    const [retain] = pickScenarios(all, ['retain_initrd']);
    const segments = (await prepareImages(retain!, kernels.get('debian/sid')!)).segments;
    imageBytes = (await Promise.all(segments.map((x) => fs.stat(x.path)))).reduce((a, st) => a + st.size, 0);
    await pool(runs, 1, async ([name, k]) => {
      const [sc] = pickScenarios(all, [name]);
      records.set(`${name}@${k}`, await runScenario(sc!, kernels.get(k)!, { accel, artifactsRoot: artifacts }));
    });
  });
  after(async () => {
    await fs.rm(artifacts, { recursive: true, force: true });
  });

  const get = (key: string): RunRecord => {
    const r = records.get(key);
    expect(r, `${key} ran`).to.not.equal(undefined);
    return r!;
  };

  it('bind_root on bookworm: pivot_root from the host root is EINVAL; after mount --bind / / the container hangs on the rootfs with the whole initramfs', () => {
    const r = get('bind_root@debian/bookworm');
    expect(r.outcome, r.message).to.equal('passed');
    expect(r.behaviours[0]).to.match(/EINVAL/);
    const ev = r.evidence.join('\n');
    const files = /initramfs: \/ is rootfs \(mount \d+, its own parent\) holding (\d+) files/.exec(ev);
    expect(files, ev).to.not.equal(null);
    expect(ev).to.match(
      new RegExp(`runtime: below the container's / is mount \\d+, rootfs at /, holding all ${files![1]} files of the initramfs`),
    );
    const direct = r.stages.find((s) => s.name === 'direct')!;
    expect(direct.vars.errno).to.equal('EINVAL');
  });

  it('bind_root under nonroot_initramfs: pivot_root works without the bind and the container hangs on the rootfs below the tmpfs, not on it; with the bind, on the tmpfs', () => {
    const r = get('bind_root@build/nonroot-6.1');
    expect(r.outcome, r.message).to.equal('passed');
    expect(r.behaviours[0]).to.match(/works \(nonroot_initramfs\); below the container only rootfs/);
    expect(r.behaviours[1]).to.match(/hangs on the initramfs's tmpfs/);
    expect(r.evidence.join('\n')).to.match(/initramfs: \/ is tmpfs \(mount \d+, parent mount \d+\)/);
  });

  it("a bind_root twin that binds a tmpfs copy instead of / fails: what the container hangs on is not the host's root", () => {
    const r = get('bind_root_twin_copy@debian/bookworm');
    expect(r.outcome, r.message).to.equal('failed');
    expect(r.message).to.match(/rootfs|host's root/);
  });

  it("kernel_root on a recipe kernel: / is ext4 from /dev/root atop a mount PID 1 cannot see; PID 1 is the disk's init", () => {
    const r = get('kernel_root@build/nonroot-6.1');
    expect(r.outcome, r.message).to.equal('passed');
    const ev = r.evidence.join('\n');
    expect(ev).to.match(/realroot: \/ is ext4 from \/dev\/root \(mount \d+\) atop mount \d+/);
    expect(ev).to.match(/kernel: VFS: Mounted root \(ext4 filesystem\)/);
    const s = r.stages.find((x) => x.name === 'realroot')!;
    expect(s.vars.pid).to.equal('1');
  });

  it('a kernel_root twin whose initramfs switch_roots into the disk fails: user space, not the kernel, mounted it', () => {
    const r = get('kernel_root_twin_switch@build/nonroot-6.1');
    expect(r.outcome, r.message).to.equal('failed');
    expect(r.message).to.match(/the kernel mounted the root itself, as \/dev\/root/);
  });

  it('initrd_linuxrc on a recipe kernel: /linuxrc runs with a PID > 1 on the RAM disk; the real init is PID 1 with the old initrd at /initrd', () => {
    const r = get('initrd_linuxrc@build/nonroot-6.1');
    expect(r.outcome, r.message).to.equal('passed');
    expect(r.behaviours.join('\n')).to.match(/kernel: using deprecated initrd support/);
    expect(r.behaviours.join('\n')).to.match(/moved the old initrd to \/initrd/);
    const rc = r.stages.find((x) => x.name === 'linuxrc')!;
    expect(Number(rc.vars.pid)).to.be.greaterThan(1);
  });

  it('initrd_linuxrc on Linux 7 (build/stock-7.2): the kernel loads the initrd into the RAM disk, says it is deprecated, runs no /linuxrc and mounts root= itself', () => {
    const r = get('initrd_linuxrc@build/stock-7.2');
    expect(r.outcome, r.message).to.equal('passed');
    expect(r.stagesReported).to.deep.equal(['realroot', 'done']);
    expect(r.behaviours).to.include(
      'the kernel loaded the initrd into /dev/ram0 but ran no /linuxrc: it mounted root= directly (the RAM disk is left for root=/dev/ram0)',
    );
    expect(r.behaviours.join('\n')).to.match(/kernel: using deprecated initrd support, will be removed in January 2027/);
  });

  it('an initrd_linuxrc twin with no /linuxrc on 6.1 fails: the kernel ran the initrd path, nothing probed linuxrc', () => {
    const r = get('initrd_linuxrc_twin_none@build/nonroot-6.1');
    expect(r.outcome, r.message).to.equal('failed');
    expect(r.message).to.match(/the kernel ran the initrd path \("Trying to move old root to \/initrd/);
  });

  it('rootprobe diff shows how the old initrd path changed from 6.1 to 7.2: the linuxrc stage, the deprecation line, /initrd', async () => {
    const r = await cli([
      'diff',
      '--kernel',
      'build/nonroot-6.1',
      '--kernel',
      'build/stock-7.2',
      'initrd_linuxrc',
      '--artifacts',
      artifacts,
    ]);
    expect(r.code, r.stderr).to.equal(1);
    const out = r.stdout;
    expect(out).to.include('initrd_linuxrc: build/nonroot-6.1 (6.1.176) vs build/stock-7.2 (7.2.13)');
    expect(out).to.match(/stage linuxrc:\n\s+reported\n\s+- build\/nonroot-6\.1: yes\n\s+\+ build\/stock-7\.2: no/);
    expect(out).to.match(/- build\/nonroot-6\.1: kernel: using deprecated initrd support, will be removed in 2021\./);
    expect(out).to.match(/\+ build\/stock-7\.2: kernel: using deprecated initrd support, will be removed in January 2027/);
    expect(out).to.match(/mount \/initrd\n\s+- build\/nonroot-6\.1: ext2 from \/dev\/root\.old.*\n\s+\+ build\/stock-7\.2: \(absent\)/);
  });

  it('an initrd_linuxrc twin whose /linuxrc execs init itself fails: that init is not PID 1', () => {
    const r = get('initrd_linuxrc_twin_exec@build/nonroot-6.1');
    expect(r.outcome, r.message).to.equal('failed');
    expect(r.message).to.match(/the real root's init runs as PID 1/);
  });

  it('retain_initrd on sid: /sys/firmware/initrd is the image QEMU was given, unpacked a second time; the kernel holds its size in memory', () => {
    const r = get('retain_initrd@debian/sid');
    expect(r.outcome, r.message).to.equal('passed');
    const init = r.stages.find((x) => x.name === 'initramfs')!;
    expect(Number(init.commands['image-size']!.output.trim()), 'the size at /sys/firmware/initrd').to.equal(imageBytes);
    const without = get('retain_initrd_without@debian/sid');
    expect(without.outcome, without.message).to.equal('passed');
    // Without retain_initrd the kernel frees the image's pages (and counts them in MemTotal).
    const kept = meminfo(Stage.fromJSON(init));
    const freed = meminfo(Stage.fromJSON(without.stages.find((x) => x.name === 'initramfs')!));
    const deltaKiB = freed.total - kept.total;
    expect(
      Math.abs(deltaKiB - imageBytes / 1024),
      `MemTotal without (${freed.total} kB) - with (${kept.total} kB) against the image (${imageBytes / 1024} kB)`,
    ).to.be.lessThan(256);
  });

  it('a retain_initrd twin booted without the parameter fails: there is no /sys/firmware/initrd', () => {
    const r = get('retain_initrd_twin_no_param@debian/sid');
    expect(r.outcome, r.message).to.equal('failed');
    expect(r.message).to.match(/with retain_initrd, \/sys\/firmware\/initrd holds the image/);
  });
});
