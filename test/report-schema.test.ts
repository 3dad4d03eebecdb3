/**
 * One report shape: the --json of `run`, `run external` and `diff` has schemaVersion, command
 * and runs[], and validates against schemas/report.schema.json (ajv). Validated here: a real
 * `rootprobe run switch_root --json` (one boot), the diff writer over that run's records, and
 * shapes the schema must refuse. The `run external --json` report of test/external.test.ts
 * (a real external boot) is validated there with the same helper, the `bisect --json` report
 * in test/bisect.test.ts (from recorded runs) and test/kernel-dev.test.ts (a real bisect).
 */
import { expect } from 'chai';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { reportJson, reportObject, runsReport, REPORT_SCHEMA_VERSION, type JsonReport } from '../harness/report/json.ts';
import { bareRecord } from '../harness/run/record.ts';
import { diffRuns } from '../harness/report/diff.ts';
import { cli } from './support/cli.ts';
import { reportSchemaErrors } from './support/report-schema.ts';

describe('the JSON report schema @boot', () => {
  let dir: string;
  let report: JsonReport;
  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rootprobe-schema-'));
    const json = path.join(dir, 'r.json');
    const r = await cli(['run', 'switch_root', '--jobs', '1', '--json', json, '--artifacts', path.join(dir, 'art')]);
    expect(r.code, r.stdout + r.stderr).to.equal(0);
    report = JSON.parse(await fs.readFile(json, 'utf8')) as JsonReport;
  });
  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('a real `run --json` report validates, with schemaVersion, command and runs[]', () => {
    expect(reportSchemaErrors(report)).to.deep.equal([]);
    expect(report.schemaVersion).to.equal(REPORT_SCHEMA_VERSION);
    expect(report.command).to.equal('run');
    expect(report.runs.map((r) => [r.scenario, r.outcome])).to.deep.equal([['switch_root', 'passed']]);
    expect(report.runs[0]!.stages.map((s) => s.name)).to.deep.equal(['initramfs', 'realroot', 'done']);
  });

  it('the diff writer gives the same shape, with kernels and diffs', () => {
    const [a] = report.runs;
    const b = {
      ...a!,
      kernel: 'debian/other',
      stages: a!.stages.map((s) => ({
        ...s,
        mountinfo: s.mountinfo.map((m) => ({ ...m, fsType: m.fsType === 'ext4' ? 'xfs' : m.fsType })),
      })),
    };
    const differences = diffRuns(a!, b);
    expect(differences.length).to.be.greaterThan(0);
    const text = reportJson({ ...report, runs: [a!, b] }, 'diff', {
      kernels: [a!.kernel, b.kernel],
      diffs: [{ scenario: a!.scenario, a: a!.kernel, b: b.kernel, differences }],
    });
    const diff = JSON.parse(text) as JsonReport;
    expect(reportSchemaErrors(diff)).to.deep.equal([]);
    expect(Object.keys(diff).slice(0, 2)).to.deep.equal(['schemaVersion', 'command']);
  });

  it('refuses what is not the shape: a bare run record, a missing schemaVersion, an unknown outcome', () => {
    expect(reportSchemaErrors(report.runs[0])).to.not.deep.equal([]);
    const { schemaVersion: _v, ...noVersion } = report;
    expect(reportSchemaErrors(noVersion).join('\n')).to.include("must have required property 'schemaVersion'");
    const odd = { ...report, runs: [{ ...report.runs[0]!, outcome: 'fine' }] };
    expect(reportSchemaErrors(odd).join('\n')).to.include('/runs/0/outcome must be equal to one of the allowed values');
    const extra = { ...report, bonus: 1 };
    expect(reportSchemaErrors(extra).join('\n')).to.include('must NOT have additional properties');
  });
});

describe('the JSON report schema, without booting', () => {
  it('a run report with a skipped cell validates (skipIf: retain_initrd on a 6.1 kernel is not booted)', () => {
    const skipped = bareRecord({
      scenario: 'retain_initrd',
      kernel: { id: 'debian/bookworm', release: '6.1.0-18-amd64' },
      accel: 'tcg',
      outcome: 'skipped',
      message: 'retain_initrd needs 6.8 or later',
      memoryMiB: 256,
      rerun: 'npx rootprobe run retain_initrd --kernel debian/bookworm --keep',
    });
    const report = reportObject(runsReport([skipped], 'tcg', 'ROOTPROBE_ACCEL=tcg', new Date()), 'run');
    expect(reportSchemaErrors(report)).to.deep.equal([]);
    expect(report.summary).to.include({ total: 1, skipped: 1 });
  });
});
