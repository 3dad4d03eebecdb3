/**
 * --retries: a cell that did not pass boots again; every attempt is reported, and a cell
 * whose attempts disagree is flaky in every report format, never silently green.
 */
import { expect } from 'chai';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadScenarios, pickScenarios } from '../scenarios/index.ts';
import { runMatrix } from '../harness/run/matrix.ts';
import { Progress, summaryText } from '../harness/report/terminal.ts';
import { toJUnit, toTap, type MatrixReport } from '../harness/report/formats.ts';

const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures/scenarios/retries');

describe('--retries @boot', () => {
  let report: MatrixReport;
  let artifacts: string;
  before(async function () {
    this.timeout(600_000);
    artifacts = await fs.mkdtemp(path.join(os.tmpdir(), 'rootprobe-retries-'));
    const all = await loadScenarios([fixtures]);
    report = await runMatrix(pickScenarios(all, ['retry-flaky-once', 'retry-always-fails']), ['debian/bookworm'], {
      jobs: 2,
      artifactsRoot: artifacts,
      keep: false,
      retries: 1,
      progress: new Progress(process.stderr, false),
    });
  });
  after(async () => {
    await fs.rm(artifacts, { recursive: true, force: true });
  });

  it('a cell that fails once and then passes is passed, flaky, with both attempts', () => {
    const r = report.runs.find((x) => x.scenario === 'retry-flaky-once')!;
    expect(r.outcome).to.equal('passed');
    expect(r.flaky).to.equal(true);
    expect(r.attempts!.map((a) => a.outcome)).to.deep.equal(['failed', 'passed']);
    expect(r.attempts![0].message).to.include('the first boot of this cell fails on purpose');
  });

  it('a cell that fails every time is failed, not flaky, after 1 + retries boots', () => {
    const r = report.runs.find((x) => x.scenario === 'retry-always-fails')!;
    expect(r.outcome).to.equal('failed');
    expect(r.flaky).to.equal(false);
    expect(r.attempts).to.have.length(2);
  });

  it('says flaky in the terminal summary, JUnit and TAP', () => {
    expect(summaryText(report, false)).to.match(/retry-flaky-once\s+PASS flaky/);
    expect(summaryText(report, false)).to.match(/flaky: 2 attempts:\n\s+1\. failed: .*\n\s+2\. passed/);
    expect(toJUnit(report)).to.include('flaky: the attempts disagreed');
    expect(toTap(report)).to.match(/^ok \d+ - retry-flaky-once \[debian\/bookworm\] # flaky: passed on attempt 2$/m);
  });
});
