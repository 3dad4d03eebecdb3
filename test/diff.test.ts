/**
 * `rootprobe diff`: only what differs between two kernels' readback, keyed so that mount ids
 * and pids (which differ on every boot) do not count as differences.
 */
import { expect } from 'chai';
import { parseSnapshot, type StageJSON } from '../harness/readback/snapshot.ts';
import { diffRuns, diffText } from '../harness/report/diff.ts';
import type { RunRecord } from '../harness/run/run-scenario.ts';
import { packSnapshotDir } from './fixtures/readback/fixtures.ts';

function record(kernel: string, stages: StageJSON[], extra: Partial<RunRecord> = {}): RunRecord {
  return {
    scenario: 'switch_root',
    kernel,
    kernelRelease: `${kernel}-release`,
    accel: 'tcg',
    outcome: 'passed',
    durationMs: 1,
    stagesReported: stages.map((s) => s.name),
    stages,
    evidence: [],
    behaviours: [],
    consoleTail: [],
    memoryMiB: 256,
    deadlineMs: 1,
    warnings: [],
    rerun: '',
    ...extra,
  };
}

describe('rootprobe diff', () => {
  let base: StageJSON;
  before(async () => {
    base = (await parseSnapshot(packSnapshotDir('switch-root-snapshot'))).toJSON();
  });

  it('finds no difference between a readback and itself, even with other mount ids and pids', () => {
    const other: StageJSON = structuredClone(base);
    // a reboot renumbers mounts and processes consistently
    const shift = 100;
    for (const m of other.mountinfo) {
      m.mountId += shift;
      if (m.parentId !== m.mountId - shift) m.parentId += shift;
      else m.parentId = m.mountId;
    }
    const d = diffRuns(record('a', [base]), record('b', [other]));
    expect(d).to.deep.equal([]);
    expect(diffText(record('a', [base]), record('b', [other]), d)).to.include('no differences');
  });

  it('shows a changed fs type of /, a changed exe text and a changed command status, and nothing else', () => {
    const other: StageJSON = structuredClone(base);
    const root = other.mountinfo.filter((m) => m.mountPoint === '/').pop()!;
    root.fsType = 'tmpfs';
    const proc = other.processes.find((p) => !p.probe && p.cmdline.length > 0 && p.pid !== 1)!;
    proc.exe = `${proc.exe} (deleted)`;
    other.commands = { ...other.commands, 'pivot-back': { output: 'pivot_root: Invalid argument\n', status: 1 } };
    const a = record('debian/bookworm', [base]);
    const b = record('debian/sid', [other], { behaviours: ['pivot_root from rootfs: EINVAL'] });
    const d = diffRuns(a, b);
    const whats = d.map((x) => x.what);
    expect(whats).to.include('mount /');
    expect(whats).to.include(`process ${proc.cmdline.join(' ')}`);
    expect(whats, JSON.stringify(d, null, 1)).to.include('command pivot-back');
    expect(whats).to.include('behaviour');
    expect(d).to.have.length(4);
    const text = diffText(a, b, d);
    expect(text).to.match(/mount \/\n\s+- debian\/bookworm: ext4 .*\n\s+\+ debian\/sid: tmpfs/);
    expect(text).to.include('exit 1: pivot_root: Invalid argument');
  });

  it('says when a stage reported on one kernel only', () => {
    const d = diffRuns(record('a', [base]), record('b', [], { outcome: 'panic' }));
    expect(d.find((x) => x.what === 'outcome')).to.deep.include({ a: 'passed', b: 'panic' });
    expect(d.find((x) => x.what === 'reported')).to.deep.include({ where: `stage ${base.name}`, a: 'yes', b: 'no' });
  });
});
