/**
 * `--shard auto`: the index and total from the CI a job runs in, each CI with its own
 * variables (GitLab's parallel:, a Kubernetes Indexed Job, GitHub matrix values passed in),
 * and the CLI's exit 2 before anything boots when they are missing or do not fit.
 */
import { expect } from 'chai';
import { resolveShard } from '../harness/run/shard.ts';
import { UsageError } from '../harness/errors.ts';
import { cli } from './support/cli.ts';

const CI_VARS = ['ROOTPROBE_JOB_INDEX', 'ROOTPROBE_JOB_TOTAL', 'CI_NODE_INDEX', 'CI_NODE_TOTAL', 'JOB_COMPLETION_INDEX'];

function usage(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).to.be.instanceOf(UsageError);
    return (e as Error).message;
  }
  throw new Error('expected a UsageError');
}

describe('--shard auto', () => {
  it('takes GitLab parallel: CI_NODE_INDEX (1-based) and CI_NODE_TOTAL', () => {
    expect(resolveShard('auto', { CI_NODE_INDEX: '3', CI_NODE_TOTAL: '4' })).to.deep.equal({
      index: 3,
      count: 4,
      from: 'GitLab CI_NODE_INDEX, CI_NODE_TOTAL',
    });
    expect(resolveShard('auto/4', { CI_NODE_INDEX: '1', CI_NODE_TOTAL: '4' })).to.include({ index: 1, count: 4 });
    expect(usage(() => resolveShard('auto/3', { CI_NODE_INDEX: '1', CI_NODE_TOTAL: '4' }))).to.include('is 4, not 3');
    expect(usage(() => resolveShard('auto', { CI_NODE_INDEX: '5', CI_NODE_TOTAL: '4' }))).to.include('shard 5 of 4, outside 1..4');
    expect(usage(() => resolveShard('auto', { CI_NODE_INDEX: '2' }))).to.include('only CI_NODE_INDEX is set');
    expect(usage(() => resolveShard('auto', { CI_NODE_INDEX: 'two', CI_NODE_TOTAL: '4' }))).to.include(
      "CI_NODE_INDEX must be a whole number (got 'two')",
    );
  });

  it("takes a Kubernetes Indexed Job's JOB_COMPLETION_INDEX (0-based) with the total from auto/N", () => {
    expect(resolveShard('auto/4', { JOB_COMPLETION_INDEX: '0' })).to.include({ index: 1, count: 4 });
    expect(resolveShard('auto/4', { JOB_COMPLETION_INDEX: '3' })).to.include({ index: 4, count: 4 });
    expect(usage(() => resolveShard('auto/4', { JOB_COMPLETION_INDEX: '4' }))).to.include('shard 5 of 4');
    expect(usage(() => resolveShard('auto', { JOB_COMPLETION_INDEX: '2' }))).to.match(
      /JOB_COMPLETION_INDEX=2 .* give the Job's completions as --shard auto\/N/,
    );
  });

  it("takes GitHub's strategy.job-index and job-total passed in as ROOTPROBE_JOB_INDEX/TOTAL (0-based), before any other CI's", () => {
    expect(resolveShard('auto', { ROOTPROBE_JOB_INDEX: '0', ROOTPROBE_JOB_TOTAL: '2' })).to.include({ index: 1, count: 2 });
    expect(resolveShard('auto', { ROOTPROBE_JOB_INDEX: '1', ROOTPROBE_JOB_TOTAL: '2', CI_NODE_INDEX: '1', CI_NODE_TOTAL: '3' })).to.include(
      { index: 2, count: 2 },
    );
    expect(resolveShard('auto/3', { ROOTPROBE_JOB_INDEX: '2' })).to.include({ index: 3, count: 3 });
    expect(usage(() => resolveShard('auto', { ROOTPROBE_JOB_INDEX: '1' }))).to.include('set ROOTPROBE_JOB_TOTAL or give --shard auto/N');
    expect(usage(() => resolveShard('auto', { ROOTPROBE_JOB_TOTAL: '2' }))).to.include('ROOTPROBE_JOB_INDEX is not');
    expect(usage(() => resolveShard('auto', { ROOTPROBE_JOB_INDEX: '2', ROOTPROBE_JOB_TOTAL: '2' }))).to.include('shard 3 of 2');
  });

  it('names every variable it looked for when there are none; I/N still works; other words are refused', () => {
    const msg = usage(() => resolveShard('auto', { CI_NODE_INDEX: '', PATH: '/bin' }));
    for (const v of CI_VARS) expect(msg).to.include(v);
    expect(resolveShard('2/3', { CI_NODE_INDEX: '1', CI_NODE_TOTAL: '4' })).to.deep.equal({ index: 2, count: 3, from: '--shard' });
    expect(usage(() => resolveShard('automatic', {}))).to.include('--shard takes i/n');
    expect(usage(() => resolveShard('auto/0', { JOB_COMPLETION_INDEX: '0' }))).to.include('N >= 1');
  });

  it('is exit 2 through the CLI before anything boots, and runs the shard the CI names', async () => {
    const clean = Object.fromEntries(CI_VARS.map((v) => [v, undefined]));
    const none = await cli(['run', 'switch_root', '--shard', 'auto'], { env: { ...clean, ROOTPROBE_ACCEL: 'none-such' } });
    expect(none.code, none.stderr).to.equal(2);
    expect(none.stderr).to.include('--shard auto found no CI shard variables');
    const k8s = await cli(['run', '--shard', 'auto', '--kernel', 'debian/bookworm'], { env: { ...clean, JOB_COMPLETION_INDEX: '1' } });
    expect(k8s.code).to.equal(2);
    expect(k8s.stderr).to.include('--shard auto/N');
    // one cell over two GitLab nodes: node 2 gets none, and says where its numbers came from
    const gitlab = await cli(['run', 'switch_root', '--shard', 'auto'], { env: { ...clean, CI_NODE_INDEX: '2', CI_NODE_TOTAL: '2' } });
    expect(gitlab.code, gitlab.stderr).to.equal(0);
    expect(gitlab.stderr).to.include('shard 2/2 (from GitLab CI_NODE_INDEX, CI_NODE_TOTAL)');
    expect(gitlab.stderr).to.include('shard 2/2: 0 of 1 cell(s)');
    expect(gitlab.stdout).to.include('0 passed, 0 failed');
  });
});
