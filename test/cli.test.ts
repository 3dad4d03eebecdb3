/**
 * Day-to-day use without a boot: sharding, JUnit merge, the structure of the JUnit and TAP
 * reports, progress lines, definition checks before anything boots, and the CLI's answers
 * to bad input (exit 2, before any kernel or QEMU).
 */
import { expect } from 'chai';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { junitMerge, matrixCells, parseShard, shardCells } from '../harness/run/shard.ts';
import { definitionProblems, validateScenarios } from '../harness/validate.ts';
import { loadNamedScenarios, loadScenarios, pickScenarios } from '../scenarios/index.ts';
import { toJUnit, toTap, summarize, type MatrixReport } from '../harness/report/formats.ts';
import { Progress, summaryText } from '../harness/report/terminal.ts';
import type { RunRecord, Outcome } from '../harness/run/run-scenario.ts';
import { DefinitionError, UsageError } from '../harness/errors.ts';
import type { Scenario } from '../harness/scenario.ts';
import { timeoutFactor } from '../harness/qemu/accel.ts';
import { checkJUnit, checkTap, parseXml } from './report-checks.ts';
import { cli } from './support/cli.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const fixtures = path.join(root, 'test/fixtures/scenarios');

function record(scenario: string, kernel: string, outcome: Outcome, extra: Partial<RunRecord> = {}): RunRecord {
  return {
    scenario,
    kernel,
    kernelRelease: '6.1.0-test',
    accel: 'tcg',
    outcome,
    message: outcome === 'passed' ? undefined : `why ${scenario} <&> "quoted"\nsecond line`,
    durationMs: 1234,
    stagesReported: [],
    stages: [],
    evidence: ['fact & <evidence>'],
    behaviours: [],
    consoleTail: outcome === 'passed' ? [] : ['[ 1.0] console \x1b[1mline\x07 <tag>'],
    memoryMiB: 256,
    deadlineMs: 150000,
    warnings: [],
    rerun: `npx rootprobe run ${scenario} --kernel ${kernel} --keep`,
    ...(outcome === 'passed'
      ? {}
      : { artifacts: { dir: `/a/${scenario}`, consoleLog: '', resultStream: '', qemuCmdline: '', readback: '', reproduce: '' } }),
    ...extra,
  };
}

function report(runs: RunRecord[]): MatrixReport {
  return {
    tool: 'rootprobe',
    version: '0',
    startedAt: new Date(0).toISOString(),
    durationMs: 5000,
    accel: 'tcg',
    accelReason: 'test',
    host: { cpus: 2, node: process.version },
    summary: summarize(runs),
    runs,
  };
}

describe('sharding: --shard i/n', () => {
  const names = ['switch_root', 'pivot_root', 'loop_root_shutdown', 'hello', 'z', 'a.b'];
  const sc = names.map((name) => ({ name }));
  const kernels = ['debian/trixie', 'debian/bookworm', 'file:/k/bzImage'];

  it('parses i/n and rejects anything else as a usage error', () => {
    expect(parseShard('1/2')).to.deep.equal({ index: 1, count: 2 });
    expect(parseShard(' 3 / 3 ')).to.deep.equal({ index: 3, count: 3 });
    for (const bad of ['0/2', '3/2', '1/0', '1', '1/2/3', 'a/b', '-1/2', '1.5/2', '', '2/']) {
      expect(() => parseShard(bad), bad).to.throw(UsageError, /--shard takes i\/n/);
    }
  });

  it('shards 1..n together cover the matrix exactly once, for n = 1..8', () => {
    const all = matrixCells(sc, kernels).map((c) => `${c.kernel}|${c.scenario.name}`);
    expect(all).to.have.length(names.length * kernels.length);
    for (let n = 1; n <= 8; n++) {
      const seen: string[] = [];
      const sizes: number[] = [];
      for (let i = 1; i <= n; i++) {
        const part = shardCells(sc, kernels, { index: i, count: n }).map((c) => `${c.kernel}|${c.scenario.name}`);
        sizes.push(part.length);
        seen.push(...part);
      }
      expect([...seen].sort(), `n=${n}`).to.deep.equal([...all].sort());
      expect(new Set(seen).size, `n=${n}: no cell twice`).to.equal(seen.length);
      expect(Math.max(...sizes) - Math.min(...sizes), `n=${n}: balanced`).to.be.at.most(1);
    }
  });

  it('is deterministic whatever order scenarios and kernels are given in', () => {
    const a = shardCells(sc, kernels, { index: 2, count: 3 }).map((c) => `${c.kernel}|${c.scenario.name}`);
    const b = shardCells([...sc].reverse(), [...kernels].reverse(), { index: 2, count: 3 }).map((c) => `${c.kernel}|${c.scenario.name}`);
    expect(b).to.deep.equal(a);
    // documented order: by kernel, then scenario; cell k to shard k mod n + 1
    const first = matrixCells(sc, kernels)
      .slice(0, 3)
      .map((c) => `${c.kernel}|${c.scenario.name}`);
    expect(first).to.deep.equal(['debian/bookworm|a.b', 'debian/bookworm|hello', 'debian/bookworm|loop_root_shutdown']);
    expect(
      shardCells(sc, kernels, { index: 1, count: 2 })
        .map((c) => c.scenario.name)
        .slice(0, 2),
    ).to.deep.equal(['a.b', 'loop_root_shutdown']);
  });

  it('the CLI rejects a bad --shard with exit 2 before anything runs', async () => {
    const r = await cli(['run', '--shard', '3/2']);
    expect(r.code).to.equal(2);
    expect(r.stderr).to.match(/--shard takes i\/n .*got '3\/2'/);
  });
});

describe('reports: JUnit and TAP structure', () => {
  const runs = [
    record('alpha', 'debian/bookworm', 'passed'),
    record('beta', 'debian/bookworm', 'failed'),
    record('gamma', 'debian/trixie', 'timeout'),
    record('alpha', 'debian/trixie', 'panic'),
  ];

  it('JUnit is well-formed XML, one testcase per scenario x kernel, counts that add up', () => {
    const cases = checkJUnit(toJUnit(report(runs)));
    expect(cases.map((c) => c.name)).to.deep.equal([
      'alpha [debian/bookworm]',
      'beta [debian/bookworm]',
      'gamma [debian/trixie]',
      'alpha [debian/trixie]',
    ]);
    const beta = cases[1];
    expect(beta.failure?.attrs.message).to.equal('why beta <&> "quoted"');
    // control characters XML cannot carry are dropped, the rest escaped and read back
    expect(beta.failure?.text).to.include('last console lines:').and.include('console [1mline <tag>');
    expect(beta.failure?.text).to.include('artifacts: /a/beta').and.include('rerun: npx rootprobe run beta');
    expect(cases[2].error?.attrs.type).to.equal('timeout');
    expect(cases[0].out).to.include('fact & <evidence>');
  });

  it('the parser used here does reject broken XML (the check can fail)', () => {
    expect(() => parseXml('<a><b></a></b>')).to.throw(/closes/);
    expect(() => parseXml('<a x=1></a>')).to.throw(/malformed/);
    expect(() => parseXml('<a>&nbsp;</a>')).to.throw(/entity/);
    expect(() => parseXml('<a></a><b></b>')).to.throw(/root/);
  });

  it('TAP: the plan matches the ok / not ok lines, numbered 1..N, with YAML blocks', () => {
    const tests = checkTap(toTap(report(runs)));
    expect(tests.map((t) => t.ok)).to.deep.equal([true, false, false, false]);
    expect(tests[1].desc).to.equal('beta [debian/bookworm] # failed');
    expect(() => checkTap('TAP version 13\n1..2\nok 1 - a\n')).to.throw(/plan/);
  });

  it('junit-merge joins shard reports: suites of one kernel merged, counts summed, still valid', async () => {
    const a = toJUnit(report(runs.slice(0, 2)));
    const b = toJUnit(report(runs.slice(2)));
    const c = toJUnit(report([record('delta', 'debian/bookworm', 'error')]));
    const merged = junitMerge([
      { name: 'a', text: a },
      { name: 'b', text: b },
      { name: 'c', text: c },
    ]);
    const cases = checkJUnit(merged);
    expect(cases).to.have.length(5);
    const suites = parseXml(merged).children.map((s) => `${s.attrs.name}:${s.attrs.tests}`);
    expect(suites).to.deep.equal(['debian/bookworm:3', 'debian/trixie:2']);
    expect(parseXml(merged).attrs).to.include({ tests: '5', failures: '1', errors: '3' });
    expect(() => junitMerge([{ name: 'x.txt', text: 'not xml' }])).to.throw(UsageError, /x\.txt/);

    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rootprobe-merge-'));
    try {
      await fs.writeFile(path.join(dir, '1.xml'), a);
      await fs.writeFile(path.join(dir, '2.xml'), b);
      const r = await cli(['junit-merge', path.join(dir, 'all.xml'), path.join(dir, '1.xml'), path.join(dir, '2.xml')]);
      expect(r.code, r.stderr).to.equal(0);
      expect(checkJUnit(await fs.readFile(path.join(dir, 'all.xml'), 'utf8'))).to.have.length(4);
      expect((await cli(['junit-merge', path.join(dir, 'x.xml')])).code).to.equal(2);
      expect((await cli(['junit-merge', path.join(dir, 'x.xml'), path.join(dir, 'missing.xml')])).code).to.equal(2);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it('the summary states the memory per VM, and a failure its folder and rerun command', () => {
    const text = summaryText(report(runs), false);
    expect(text).to.match(/1 passed, 3 failed \(1 panic, 1 timeout\) in 5\.0 s, 256 MiB per VM, accel tcg/);
    expect(text).to.include('  artifacts: /a/beta\n  rerun: npx rootprobe run beta --kernel debian/bookworm --keep');
  });
});

describe('progress lines', () => {
  function sink(): { out: NodeJS.WriteStream; text: () => string } {
    let buf = '';
    const w = new Writable({
      write(chunk, _enc, cb) {
        buf += chunk;
        cb();
      },
    });
    return { out: w as unknown as NodeJS.WriteStream, text: () => buf };
  }

  it('plain (CI): a line as each run starts, reaches a stage and ends', () => {
    const s = sink();
    const p = new Progress(s.out, false);
    p.start('a', 'k');
    p.event({ type: 'phase', scenario: 'a', kernel: 'k', phase: 'boot' });
    p.event({ type: 'stage', scenario: 'a', kernel: 'k', stage: 'initramfs', elapsedMs: 2500 });
    p.event({ type: 'console', scenario: 'a', kernel: 'k', line: 'noise' });
    p.end(record('a', 'k', 'failed', { durationMs: 4000 }));
    p.stop();
    expect(s.text()).to.equal('start  a @ k\nstage  a @ k: initramfs (2.5 s)\nFAIL   a @ k (4.0 s)\n');
  });

  it('terminal: live lines redrawn in place, then the verdict', () => {
    const s = sink();
    const p = new Progress(s.out, true);
    p.start('a', 'k');
    p.event({ type: 'phase', scenario: 'a', kernel: 'k', phase: 'boot' });
    p.event({ type: 'stage', scenario: 'a', kernel: 'k', stage: 'initramfs', elapsedMs: 2500 });
    p.end(record('a', 'k', 'passed'));
    p.stop();
    const t = s.text();
    expect(t).to.include('a @ k  building images');
    expect(t).to.include('a @ k  last stage: initramfs');
    expect(t).to.include('\x1b[1A\x1b[J'); // the live line is erased before the next drawing
    expect(t).to.match(/\x1b\[32mPASS\x1b\[0m {3}a @ k \(1\.2 s\)\n$/);
  });
});

describe('scenario definitions are checked before anything boots', () => {
  const invalid = path.join(fixtures, 'invalid');

  it('a stage asserted on but not declared: exit 2, the file and line, the declared stages', async () => {
    const r = await cli(['run', 'invalid-undeclared-stage', '--scenarios', invalid]);
    expect(r.code).to.equal(2);
    expect(r.stderr).to.include(`${path.join(invalid, 'undeclared-stage/scenario.ts')}:14)`);
    expect(r.stderr).to.match(/asserts on stage 'realrot', which the scenario does not declare \(stages: realroot\)/);
  });

  it('a stage asserted on that no guest script probes: exit 2, naming the scripts read', async () => {
    const r = await cli(['run', 'invalid-never-probed', '--scenarios', invalid]);
    expect(r.code).to.equal(2);
    expect(r.stderr).to.include(path.join(invalid, 'never-probed/scenario.ts'));
    expect(r.stderr).to.match(
      /stage 'after', but no guest script probes it \(no `probe after` in scenario\.ts, init\.sh; probed: before, done\)/,
    );
  });

  it('two scenarios with one name: exit 2, both files', async () => {
    const r = await cli(['list', '--scenarios', path.join(fixtures, 'invalid-dup')]);
    expect(r.code).to.equal(2);
    expect(r.stderr).to.include(path.join(fixtures, 'invalid-dup/one/scenario.ts'));
    expect(r.stderr).to.include(path.join(fixtures, 'invalid-dup/two/scenario.ts'));
    // and in the library, for lists not made by loadScenarios
    const [a] = await loadScenarios([path.join(fixtures, 'dayday')]).then((all) => pickScenarios(all, ['hello-nochdir']));
    expect(() => validateScenarios([a, { ...a } as Scenario])).to.throw(DefinitionError, /defined twice/);
  });

  it('loadNamedScenarios gives what the whole list gives: a built-in from its own folder, others through the list', async () => {
    const all = await loadScenarios([]);
    const byName = (n: string) => all.find((s) => s.name === n);
    const [sw, pivot] = await loadNamedScenarios(['switch_root', 'pivot_root']);
    expect(sw).to.equal(byName('switch_root'));
    expect(pivot).to.equal(byName('pivot_root'));
    // a second scenario of a folder named otherwise (retain_initrd/ defines it)
    expect((await loadNamedScenarios(['retain_initrd_without']))[0]).to.equal(byName('retain_initrd_without'));
    // a misspelt name: the whole list's error and suggestion; a path-like name is only a name
    await loadNamedScenarios(['switch_rot']).then(
      () => expect.fail('resolved'),
      (e: Error) => expect(e.message).to.match(/unknown scenario: switch_rot \(did you mean switch_root\?\)/),
    );
    await loadNamedScenarios(['../scenarios/switch_root']).then(
      () => expect.fail('resolved'),
      (e: Error) => expect(e.message).to.match(/unknown scenario: \.\.\/scenarios\/switch_root/),
    );
    // with --scenarios folders, their names are loaded and checked against the built-ins
    const [hello] = await loadNamedScenarios(['hello-nochdir'], [path.join(fixtures, 'dayday')]);
    expect(hello.name).to.equal('hello-nochdir');
  });

  it('a disk that does not fit: exit 2 naming the scenario file, with no QEMU started', async function () {
    this.timeout(300_000); // resolves the (cached) kernel and builds the base images
    const r = await cli(['run', 'invalid-disk-too-small', '--scenarios', invalid]);
    expect(r.code, r.stderr).to.equal(2);
    expect(r.stderr).to.include(`scenario 'invalid-disk-too-small' (${path.join(invalid, 'disk-too-small/scenario.ts')})`);
    expect(r.stderr).to.match(/does not fit in its 4 MiB ext4 disk/);
    expect(r.stderr).to.not.match(/accelerator:/);
  });

  it('the built-in scenarios, the example and the boot fixtures have no problems (no false alarms)', async () => {
    // broken/ holds guest scripts written inline as TS strings (`'probe initramfs\\nrp_finish'`):
    // they must be read as scripts, not rejected as "never probed".
    const boots = [
      'dayday',
      'broken',
      'faults',
      'retries',
      'pivot_root',
      'switch_root_manual',
      'loop_root_shutdown',
      'nonroot_initramfs',
    ].map((d) => path.join(fixtures, d));
    const all = await loadScenarios([path.join(root, 'examples'), ...boots]);
    expect(all.map((s) => s.name)).to.include.members(['broken-assertion', 'broken-panic', 'retry-flaky-once']);
    expect(all.map((s) => s.name)).to.include.members(['switch_root', 'hello-initramfs', 'hello-nochdir']);
    expect(definitionProblems(all)).to.deep.equal([]);
  });
});

describe('CLI: bad input to the day-to-day commands exits 2 before any boot', () => {
  it('ROOTPROBE_TIMEOUT_FACTOR that is no positive number', async () => {
    for (const v of ['abc', '0', '-2']) {
      const r = await cli(['run', 'switch_root'], { env: { ROOTPROBE_TIMEOUT_FACTOR: v } });
      expect(r.code, v).to.equal(2);
      expect(r.stderr).to.match(/ROOTPROBE_TIMEOUT_FACTOR must be a positive number/);
      expect(r.stderr).to.not.match(/accelerator:/);
    }
  });

  it('deadlines scale with the accelerator and ROOTPROBE_TIMEOUT_FACTOR', () => {
    const saved = process.env.ROOTPROBE_TIMEOUT_FACTOR;
    try {
      delete process.env.ROOTPROBE_TIMEOUT_FACTOR;
      expect([timeoutFactor('kvm'), timeoutFactor('tcg')]).to.deep.equal([1, 5]);
      process.env.ROOTPROBE_TIMEOUT_FACTOR = '2.5';
      expect([timeoutFactor('kvm'), timeoutFactor('tcg')]).to.deep.equal([2.5, 12.5]);
      process.env.ROOTPROBE_TIMEOUT_FACTOR = 'fast';
      expect(() => timeoutFactor('kvm')).to.throw(UsageError, /"fast"/);
    } finally {
      if (saved === undefined) delete process.env.ROOTPROBE_TIMEOUT_FACTOR;
      else process.env.ROOTPROBE_TIMEOUT_FACTOR = saved;
    }
  });

  it('shell and build: missing arguments, unknown scenario or stage', async () => {
    expect((await cli(['shell'])).stderr).to.match(/usage: rootprobe shell/);
    expect((await cli(['build', 'switch_root'])).stderr).to.match(/usage: rootprobe build .*--out DIR/);
    const unknown = await cli(['build', 'nope', '--out', '/nonexistent-out']);
    expect(unknown.code).to.equal(2);
    expect(unknown.stderr).to.match(/unknown scenario: nope\. Known: .*switch_root/);
    const stage = await cli(['shell', 'switch_root', '--stage', 'nowhere']);
    expect(stage.code).to.equal(2);
    expect(stage.stderr).to.match(/scenario 'switch_root' has no stage 'nowhere'; its stages: initramfs, realroot, done/);
    expect((await cli(['shell', 'switch_root', '--kernel', 'debian/hamm'])).code).to.equal(2);
  });

  it('help lists the new commands and options', async () => {
    const r = await cli(['--help']);
    expect(r.code).to.equal(0);
    for (const w of ['rootprobe shell', 'rootprobe build', 'junit-merge', '--shard I/N']) expect(r.stdout).to.include(w);
  });
});

describe('a user scenario file that does not load', () => {
  let dir: string;
  const harness = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../harness/index.ts');
  const body = (extra = ''): string =>
    `import { scenario } from ${JSON.stringify(harness)};\n${extra}\n` +
    `export default scenario({ name: 'loads-not', description: 'x', features: ['initrd'], ` +
    `initramfs() {}, stages: ['one'], check() {} }, import.meta);\n`;
  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rootprobe-load-test-'));
    await fs.mkdir(path.join(dir, 'sc'));
  });
  afterEach(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('outside a "type": "module" package: exit 2 saying so, not an internal error', async () => {
    await fs.writeFile(path.join(dir, 'sc', 'scenario.ts'), body());
    const r = await cli(['run', 'loads-not', '--scenarios', dir]);
    expect(r.code, r.stderr).to.equal(2);
    expect(r.stderr).to.include(`${path.join(dir, 'sc', 'scenario.ts')} could not be loaded`);
    expect(r.stderr).to.include('"type": "module"');
    expect(r.stderr).to.not.include('internal error');
  });

  it('as .mts it loads without a package.json; a throw at its top level is exit 2 naming the file', async () => {
    await fs.writeFile(path.join(dir, 'sc', 'scenario.mts'), body());
    expect((await loadScenarios([dir])).map((s) => s.name)).to.include('loads-not');
    await fs.writeFile(path.join(dir, 'package.json'), '{"type":"module"}\n');
    await fs.rm(path.join(dir, 'sc', 'scenario.mts'));
    await fs.writeFile(path.join(dir, 'sc', 'scenario.ts'), body("throw new TypeError('the scenario broke');"));
    const r = await cli(['list', '--scenarios', dir]);
    expect(r.code, r.stderr).to.equal(2);
    expect(r.stderr).to.match(/scenario\.ts could not be loaded: the scenario broke/);
  });
});
