/**
 * `rootprobe bisect` without booting: how a step's runs or its build make its mark (good, bad,
 * skip), with `--runs N`; and its --json, assembled from recorded runs (switch_root_manual,
 * passed on sid and a panic on trixie, test/fixtures/scenarios/loop_root_shutdown), which must
 * be the one report shape of schemas/report.schema.json.
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bisectReport, bisectReportJson, shownRun, stepMark, type BisectResult, type BisectStep } from '../harness/cli/bisect.ts';
import type { MatrixReport } from '../harness/report/formats.ts';
import { REPORT_SCHEMA_VERSION, type JsonReport } from '../harness/report/json.ts';
import type { Outcome, RunRecord } from '../harness/run/record.ts';
import { reportSchemaErrors } from './support/report-schema.ts';

const run = (outcome: Outcome, message?: string) => ({ outcome, ...(message !== undefined ? { message } : {}) });

describe('bisect: the mark of a step (stepMark)', () => {
  it('a step whose every run passed is good', () => {
    expect(stepMark({ runs: [run('passed')] })).to.deep.equal({ mark: 'good', why: 'passed' });
    expect(stepMark({ runs: [run('passed'), run('passed'), run('passed')] })).to.deep.equal({
      mark: 'good',
      why: 'passed, passed, passed',
    });
  });

  it('failed, panic and missing-stage are bad, with the first line of the message', () => {
    expect(stepMark({ runs: [run('failed', 'expected EINVAL\n  more')] })).to.deep.equal({ mark: 'bad', why: 'failed: expected EINVAL' });
    expect(stepMark({ runs: [run('panic', 'Kernel panic - not syncing: Attempted to kill init!')] }).mark).to.equal('bad');
    expect(stepMark({ runs: [run('missing-stage', 'stage `realroot` never reported')] }).mark).to.equal('bad');
  });

  it('with --runs N, one failing run of N makes the step bad, wherever it comes', () => {
    for (const at of [0, 2, 4]) {
      const runs = Array.from({ length: 5 }, (_, i) => (i === at ? run('failed', `run ${i} failed`) : run('passed')));
      const m = stepMark({ runs });
      expect(m.mark, `failing run at ${at}`).to.equal('bad');
      expect(m.why).to.include(`run ${at} failed`);
      expect(m.why.split(': ')[0].split(', ')).to.have.length(5);
    }
  });

  it('a timeout or an error is skip (the boot could not be judged), also beside passes', () => {
    expect(stepMark({ runs: [run('timeout', 'waited 90 s\n...')] })).to.deep.equal({ mark: 'skip', why: 'timeout (waited 90 s)' });
    expect(stepMark({ runs: [run('passed'), run('error', 'QEMU did not start')] })).to.deep.equal({
      mark: 'skip',
      why: 'passed, error (QEMU did not start)',
    });
  });

  it('a failing run wins over a timeout of the same step: the behaviour was seen', () => {
    const m = stepMark({ runs: [run('timeout', 'waited'), run('failed', 'rc=0'), run('passed')] });
    expect(m).to.deep.equal({ mark: 'bad', why: 'timeout, failed, passed: rc=0' });
  });

  it('a build that fails is skip, naming the first line of the error', () => {
    expect(stepMark({ buildError: 'make failed: fs/namespace.c:12: error: x\nlog: /c/build.log' })).to.deep.equal({
      mark: 'skip',
      why: 'the build failed: make failed: fs/namespace.c:12: error: x',
    });
  });

  it('a step with neither runs nor a build error is an internal error, not a mark', () => {
    expect(() => stepMark({ runs: [] })).to.throw(/internal/);
  });
});

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const recorded = JSON.parse(
  readFileSync(path.join(root, 'test/fixtures/scenarios/loop_root_shutdown/recorded-matrix-report.json'), 'utf8'),
) as MatrixReport;
const recordedRun = (kernel: string): RunRecord => {
  const r = recorded.runs.find((x) => x.scenario === 'switch_root_manual' && x.kernel === kernel);
  if (!r) throw new Error(`no recorded switch_root_manual run on ${kernel}`);
  return structuredClone(r);
};

const TREE = 'git:/src/linux';
const [G, M1, M2, B] = ['1', '2', '3', '4'].map((c) => c.repeat(40));
/** A recorded run, as if booted on the kernel built from `commit`. */
const on = (commit: string, kernel: 'debian/sid' | 'debian/trixie'): RunRecord => ({ ...recordedRun(kernel), kernel: `${TREE}@${commit}` });
const step = (commit: string, subject: string, s: { runs: RunRecord[] } | { buildError: string }): BisectStep => ({
  commit,
  subject,
  ...stepMark(s),
  runs: 'runs' in s ? s.runs : [],
});

/** The ends, a commit whose build failed, then the first bad one booted twice (--runs 2). */
function found(): BisectResult {
  const steps = [
    step(G, 'the good end', { runs: [on(G, 'debian/sid')] }),
    step(B, 'the bad end', { runs: [on(B, 'debian/trixie')] }),
    step(M1, 'does not build', { buildError: 'make: *** [fs/namespace.o] Error 1' }),
    step(M2, 'the culprit', { runs: [on(M2, 'debian/sid'), on(M2, 'debian/trixie')] }),
  ];
  return {
    firstBad: { commit: M2, subject: 'the culprit' },
    steps,
    lastGood: shownRun(steps[0]),
    firstBadRun: shownRun(steps[3]),
    good: G,
    bad: B,
    accel: 'tcg',
    accelReason: 'ROOTPROBE_ACCEL=tcg',
  };
}
const GIVEN = { scenario: 'switch_root_manual', kernel: TREE, good: 'v6.1', bad: 'HEAD', startedAt: new Date('2026-12-01T10:00:00Z') };

describe('bisect: the runs the readback difference compares (shownRun)', () => {
  it("a bad step's first run that did not pass, though a later one passed (--runs N)", () => {
    const bad = step(M2, 'flaky culprit', { runs: [on(M2, 'debian/sid'), on(M2, 'debian/trixie'), on(M2, 'debian/sid')] });
    expect(bad.mark).to.equal('bad');
    expect(shownRun(bad)).to.equal(bad.runs[1]);
  });

  it("a good step's last run; none for a step whose build failed", () => {
    const good = step(G, 'good', { runs: [on(G, 'debian/sid'), on(G, 'debian/sid')] });
    expect(shownRun(good)).to.equal(good.runs[1]);
    expect(shownRun(step(M1, 'no build', { buildError: 'x' }))).to.equal(undefined);
  });
});

describe('bisect --json: the one report shape (bisectReport)', () => {
  it('a bisect that found its commit validates against the report schema, as written to the file', () => {
    const rep = JSON.parse(bisectReportJson(found(), GIVEN)) as JsonReport;
    expect(reportSchemaErrors(rep)).to.deep.equal([]);
    expect(Object.keys(rep).slice(0, 2)).to.deep.equal(['schemaVersion', 'command']);
    expect(rep.schemaVersion).to.equal(REPORT_SCHEMA_VERSION);
    expect(rep.command).to.equal('bisect');
    expect(rep).to.not.have.property('kind');
    expect(rep.accel).to.equal('tcg');
  });

  it('runs[] holds every run booted, each step naming its own by index, the summary counting them', () => {
    const rep = bisectReport(found(), GIVEN);
    expect(rep.runs.map((r) => `${r.kernel.slice(-3)} ${r.outcome}`)).to.deep.equal(['111 passed', '444 panic', '333 passed', '333 panic']);
    const b = rep.bisect!;
    expect(b.steps.map((s) => [s.mark, s.runs])).to.deep.equal([
      ['good', [0]],
      ['bad', [1]],
      ['skip', []],
      ['bad', [2, 3]],
    ]);
    for (const s of b.steps) for (const i of s.runs) expect(rep.runs[i].kernel).to.equal(`${TREE}@${s.commit}`);
    expect(b.steps[2].why).to.equal('the build failed: make: *** [fs/namespace.o] Error 1');
    expect(rep.summary).to.include({ total: 4, passed: 2, panic: 2 });
  });

  it('says the ends as given and as commits, the first bad commit, and the readback difference of the runs compared', () => {
    const b = bisectReport(found(), GIVEN).bisect!;
    expect(b).to.include({ scenario: 'switch_root_manual', kernel: TREE, lastGoodRun: 0, firstBadRun: 3 });
    expect(b.good).to.deep.equal({ rev: 'v6.1', commit: G });
    expect(b.bad).to.deep.equal({ rev: 'HEAD', commit: B });
    expect(b.firstBad).to.deep.equal({ commit: M2, subject: 'the culprit' });
    expect(b).to.not.have.property('candidates');
    expect(b.differences.find((d) => d.what === 'outcome')).to.deep.include({ a: 'passed', b: 'panic' });
  });

  it('a bisect left with skipped commits names the candidates, compares nothing, and validates', () => {
    const r = found();
    const rep = bisectReport(
      { steps: r.steps.slice(0, 3), candidates: [M1, M2], good: G, bad: B, accel: 'kvm', accelReason: 'KVM probe boot reached ...' },
      GIVEN,
    );
    expect(reportSchemaErrors(rep)).to.deep.equal([]);
    expect(rep.bisect).to.not.have.any.keys('firstBad', 'lastGoodRun', 'firstBadRun');
    expect(rep.bisect!.candidates).to.deep.equal([M1, M2]);
    expect(rep.bisect!.differences).to.deep.equal([]);
  });

  it('the schema refuses what is not a bisect report: the old {kind} shape, an unknown mark, a short commit', () => {
    const rep = bisectReport(found(), GIVEN);
    const { bisect, command: _c, ...rest } = rep;
    const old = { ...rest, kind: 'bisect', ...bisect };
    expect(reportSchemaErrors(old).join('\n')).to.include("must have required property 'command'");
    const maybe = { ...rep, bisect: { ...bisect!, steps: [{ ...bisect!.steps[0], mark: 'maybe' }, ...bisect!.steps.slice(1)] } };
    expect(reportSchemaErrors(maybe).join('\n')).to.include('/bisect/steps/0/mark must be equal to one of the allowed values');
    const short = { ...rep, bisect: { ...bisect!, firstBad: { commit: '24d66b8a', subject: 'x' } } };
    expect(reportSchemaErrors(short).join('\n')).to.include('/bisect/firstBad/commit must match pattern');
  });

  it('a compared run that is none of the steps is an internal error, not a report pointing nowhere', () => {
    expect(() => bisectReport({ ...found(), firstBadRun: on(M2, 'debian/trixie') }, GIVEN)).to.throw(/internal/);
  });
});
