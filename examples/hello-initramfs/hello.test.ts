import { expect } from 'chai';
import { boot } from 'rootprobe';
import hello from './scenario.ts';

describe('hello-initramfs', function () {
  this.timeout(300_000); // the first run downloads the kernel; a boot takes seconds

  it('passes on Debian bookworm', async () => {
    const run = await boot(hello, { kernel: 'debian/bookworm' });
    expect(run.outcome, run.message).to.equal('passed');
    expect(run.stagesReported).to.deep.equal(['before', 'after', 'done']);
    const after = run.stages.find((s) => s.name === 'after')!;
    expect(after.mountinfo.map((m) => m.mountPoint)).to.include('/scratch');
  });
});
