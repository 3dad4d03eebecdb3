/**
 * `--kcidb FILE`: the run as KCIDB v5.3 JSON, validated with ajv against the schema written
 * down in schemas/. Unit tests map every verdict; the @boot test validates the file of a real
 * switch_root run through the CLI.
 */
import { expect } from 'chai';
import { readFileSync, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { toKcidb, STATUS, type KcidbReport } from '../harness/report/kcidb.ts';
import { summarize, type MatrixReport } from '../harness/report/formats.ts';
import type { Outcome, RunRecord } from '../harness/run/run-scenario.ts';
import { ROOT, cli } from './support/cli.ts';

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;
const schema = JSON.parse(readFileSync(path.join(ROOT, 'schemas/kcidb.v5.3.schema.json'), 'utf8')) as object;

function validator(): ValidateFunction {
  const ajv = new Ajv({ allErrors: true, strict: true });
  addFormats(ajv);
  return ajv.compile(schema);
}

function valid(data: unknown): void {
  const v = validator();
  expect(v(data), JSON.stringify(v.errors, null, 1)).to.equal(true);
}

function stage(name: string, uptime: number) {
  return {
    name,
    seq: 0,
    uname: '',
    probePid: 1,
    uptime,
    meta: {},
    mountinfo: [],
    pid1Mountinfo: [],
    processes: [],
    files: {},
    commands: {},
    vars: {},
  };
}

function rec(outcome: Outcome, reported: string[], extra: Partial<RunRecord> = {}): RunRecord {
  return {
    scenario: 'switch_root',
    kernel: 'debian/bookworm',
    kernelRelease: '6.1.0-50-cloud-amd64',
    accel: 'tcg',
    outcome,
    message: outcome === 'passed' ? undefined : `why: ${outcome}\u0000`,
    durationMs: 7900,
    stagesReported: reported,
    stages: reported.map((s, i) => stage(s, 1.5 + i)),
    evidence: ['realroot: / is ext4'],
    behaviours: [],
    consoleTail: outcome === 'passed' ? [] : ['[ 1.0] last line'],
    memoryMiB: 256,
    deadlineMs: 150000,
    warnings: [],
    rerun: 'npx rootprobe run switch_root --kernel debian/bookworm --keep',
    ...(outcome === 'passed'
      ? {}
      : {
          artifacts: {
            dir: '/tmp/a',
            consoleLog: '/tmp/a/console.log',
            resultStream: '/tmp/a/result.stream',
            qemuCmdline: '/tmp/a/qemu.cmdline',
            readback: '/tmp/a/readback.json',
            reproduce: '/tmp/a/reproduce.sh',
          },
        }),
    ...extra,
  } as RunRecord;
}

function report(runs: RunRecord[]): MatrixReport {
  return {
    tool: 'rootprobe',
    version: '0',
    startedAt: '2026-12-02T00:00:00.000Z',
    durationMs: 8000,
    accel: 'tcg',
    accelReason: 't',
    host: { cpus: 2, node: 'v20' },
    summary: summarize(runs),
    runs,
  };
}

const STAGES = { switch_root: ['initramfs', 'realroot', 'done'] };

describe('KCIDB report', () => {
  it('the written-down schema is a valid draft-07 schema and refuses what KCIDB refuses', () => {
    const v = validator();
    expect(v({ version: { major: 5, minor: 3 } })).to.equal(true);
    expect(v({ version: { major: 4, minor: 3 } })).to.equal(false);
    expect(
      v({ version: { major: 5, minor: 3 }, tests: [{ id: 'no-origin-prefix', build_id: 'rootprobe:b', origin: 'rootprobe' }] }),
    ).to.equal(false);
    expect(
      v({ version: { major: 5 }, tests: [{ id: 'rootprobe:t', build_id: 'rootprobe:b', origin: 'rootprobe', path: 'a..b' }] }),
    ).to.equal(false);
    expect(
      v({ version: { major: 5 }, tests: [{ id: 'rootprobe:t', build_id: 'rootprobe:b', origin: 'rootprobe', status: 'OK' }] }),
    ).to.equal(false);
    expect(
      v({ version: { major: 5 }, builds: [{ id: 'rootprobe:b', checkout_id: 'rootprobe:c', origin: 'rootprobe', colour: 'red' }] }),
    ).to.equal(false);
  });

  it('a passed run: one checkout and build per kernel, a test per scenario and per stage with dotted paths', () => {
    const k = toKcidb(report([rec('passed', ['initramfs', 'realroot', 'done'])]), { stages: STAGES, runId: 'r1' });
    valid(k);
    expect(k.version).to.deep.equal({ major: 5, minor: 3 });
    expect(k.checkouts).to.have.length(1);
    expect(k.builds).to.have.length(1);
    expect(k.builds[0].checkout_id).to.equal(k.checkouts[0].id);
    expect(k.tests.map((t) => [t.path, t.status])).to.deep.equal([
      ['rootprobe.switch_root', 'PASS'],
      ['rootprobe.switch_root.initramfs', 'PASS'],
      ['rootprobe.switch_root.realroot', 'PASS'],
      ['rootprobe.switch_root.done', 'PASS'],
    ]);
    expect(new Set(k.tests.map((t) => t.id)).size).to.equal(4);
    expect(k.tests.every((t) => t.build_id === k.builds[0].id)).to.equal(true);
    expect(k.tests[0].misc).to.include({ flaky: false, accel: 'tcg', outcome: 'passed' });
    expect(k.tests[0].duration).to.equal(7.9);
    expect(k.tests[2].duration).to.equal(1); // uptime 2.5 - 1.5
  });

  it('maps each verdict to a KCIDB status; the first stage not reached gets it, later ones are left out', () => {
    expect(STATUS).to.deep.equal({
      passed: 'PASS',
      failed: 'FAIL',
      panic: 'FAIL',
      timeout: 'ERROR',
      'missing-stage': 'ERROR',
      error: 'MISS',
      skipped: 'SKIP',
    });
    for (const outcome of ['panic', 'timeout', 'missing-stage', 'error'] as Outcome[]) {
      const k = toKcidb(report([rec(outcome, ['initramfs'])]), { stages: STAGES });
      valid(k);
      expect(
        k.tests.map((t) => [t.path, t.status]),
        outcome,
      ).to.deep.equal([
        ['rootprobe.switch_root', STATUS[outcome]],
        ['rootprobe.switch_root.initramfs', 'PASS'],
        ['rootprobe.switch_root.realroot', STATUS[outcome]],
      ]);
      expect(k.tests[0].misc!.stages_not_reached).to.deep.equal(['done']);
      expect(k.tests[0].log_excerpt).to.equal(`why: ${outcome}\n\nlast console lines:\n[ 1.0] last line`); // NUL dropped
      expect(k.tests[0].log_url).to.equal('file:///tmp/a/console.log');
      expect(k.tests[0].output_files!.map((f) => f.name)).to.include('reproduce.sh');
    }
    const failed = toKcidb(report([rec('failed', ['initramfs', 'realroot', 'done'])]), { stages: STAGES });
    valid(failed);
    expect(failed.tests.map((t) => t.status)).to.deep.equal(['FAIL', 'PASS', 'PASS', 'PASS']);
    // the message of a failed assertion names its stage: that stage fails, with the message
    const msg = 'expected the mount at "/" (id 25) in stage "realroot" to have type "ext4", but it is "tmpfs"';
    const blamed = toKcidb(report([rec('failed', ['initramfs', 'realroot', 'done'], { message: msg })]), { stages: STAGES });
    valid(blamed);
    expect(blamed.tests.map((t) => t.status)).to.deep.equal(['FAIL', 'PASS', 'FAIL', 'PASS']);
    expect(blamed.tests[2].log_excerpt).to.match(/^expected the mount at "\/" \(id 25\) in stage "realroot"/);
  });

  it('flaky and the attempts go in misc; git data goes in the checkout where the kernel came from a git tree', () => {
    const r = rec('passed', ['initramfs', 'realroot', 'done'], {
      flaky: true,
      attempts: [
        { outcome: 'panic', durationMs: 3000, message: 'panic' },
        { outcome: 'passed', durationMs: 7900 },
      ],
    });
    const k = toKcidb(report([r, { ...r, kernel: 'build/nonroot-6.1', scenario: 'pivot_root', flaky: false, attempts: undefined }]), {
      stages: STAGES,
      sources: {
        'build/nonroot-6.1': {
          repositoryUrl: 'https://git.example.org/linux.git',
          commitHash: 'a'.repeat(40),
          branch: 'master',
          treeName: 'mainline',
        },
      },
    });
    valid(k);
    expect(k.tests[0].misc).to.deep.include({
      flaky: true,
      attempts: [
        { outcome: 'panic', status: 'FAIL', duration: 3 },
        { outcome: 'passed', status: 'PASS', duration: 7.9 },
      ],
    });
    expect(k.checkouts).to.have.length(2);
    expect(k.checkouts[1]).to.include({
      git_repository_url: 'https://git.example.org/linux.git',
      git_commit_hash: 'a'.repeat(40),
      git_repository_branch: 'master',
      tree_name: 'mainline',
    });
    expect(k.checkouts[0]).to.not.have.property('git_commit_hash');
    expect(k.tests.filter((t) => t.path.startsWith('rootprobe.pivot_root')).every((t) => t.build_id === k.builds[1].id)).to.equal(true);
    // a scenario or stage name with a dot stays one level of the path
    const dotted = toKcidb(report([{ ...rec('passed', ['a.b', 'done']), scenario: 'my.scn' }]));
    valid(dotted);
    expect(dotted.tests.map((t) => t.path)).to.deep.equal(['rootprobe.my_scn', 'rootprobe.my_scn.a_b', 'rootprobe.my_scn.done']);
  });

  it('a real switch_root run through the CLI writes a KCIDB file that validates @boot', async function () {
    this.timeout(600_000);
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rootprobe-kcidb-'));
    try {
      const file = path.join(dir, 'kcidb.json');
      const r = await cli(['run', 'switch_root', '--jobs', '1', '--kcidb', file, '--artifacts', path.join(dir, 'a')]);
      expect(r.code, r.stdout + r.stderr).to.equal(0);
      const k = JSON.parse(await fs.readFile(file, 'utf8')) as KcidbReport;
      valid(k);
      expect(k.tests.map((t) => [t.path, t.status])).to.deep.equal([
        ['rootprobe.switch_root', 'PASS'],
        ['rootprobe.switch_root.initramfs', 'PASS'],
        ['rootprobe.switch_root.realroot', 'PASS'],
        ['rootprobe.switch_root.done', 'PASS'],
      ]);
      expect(k.builds[0].misc).to.deep.include({ kernel: 'debian/bookworm' });
      expect(String((k.builds[0].misc as { kernel_release: string }).kernel_release)).to.match(/^6\.1\.\d+-\d+-cloud-amd64$/);
      expect(k.tests[0].misc).to.include({ accel: r.stdout.includes('accel kvm') ? 'kvm' : 'tcg', flaky: false });
      expect(k.tests[2].duration).to.be.greaterThan(0);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
