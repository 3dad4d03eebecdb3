/**
 * `rootprobe bisect` without booting: how a step's runs or its build make its mark (good, bad,
 * skip), with `--runs N`.
 */
import { expect } from 'chai';
import { stepMark } from '../harness/cli/bisect.ts';
import type { Outcome } from '../harness/run/record.ts';

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
