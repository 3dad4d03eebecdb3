/**
 * Short messages (harness/report/fold.ts): repeated lines folded, a message of any size cut to
 * a few KB, and a run's whole message kept in its artifact folder (matrix.foldRunMessage).
 */
import { expect } from 'chai';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { foldMessage } from '../harness/report/fold.ts';
import { foldRunMessage } from '../harness/run/matrix.ts';
import type { RunRecord } from '../harness/run/run-scenario.ts';

// What debugfs printed, line after line, when TMPDIR filled up under loop_root_shutdown.
const ENOSPC = 'debugfs: write: No space left on device while writing /tmp/rootprobe-x/inner.img';

describe('foldMessage', () => {
  it('leaves a short message as it is', () => {
    const m = 'timeout after 150 s waiting for stage realroot\nlast console lines:\n[ 1.0] a\n[ 1.1] b';
    expect(foldMessage(m)).to.equal(m);
    expect(foldMessage('')).to.equal('');
  });

  it('folds 20000 repeated lines (811 KB) into two, under a few KB', () => {
    const m = `debugfs could not finish the disk image inner.img:\n${Array(20000).fill(ENOSPC).join('\n')}\nthe end`;
    expect(m.length).to.be.above(800_000);
    const f = foldMessage(m);
    expect(Buffer.byteLength(f)).to.be.below(4096);
    expect(f).to.include(ENOSPC);
    expect(f).to.include('the same line 19999 more times');
    expect(f.split('\n')).to.have.length(4);
    expect(f).to.match(/the end$/);
  });

  it('folds lines that differ only in numbers, naming the last', () => {
    const lines = Array.from({ length: 500 }, (_, i) => `debugfs: Could not allocate block ${1000 + i} in ext2 filesystem`);
    const f = foldMessage(lines.join('\n'));
    expect(f).to.include(lines[0]);
    expect(f).to.include('499 more lines like it');
    expect(f).to.include('block 1499');
    expect(f.split('\n')).to.have.length(2);
  });

  it('keeps the head and the tail of many different lines, and cuts long lines and long text', () => {
    const lines = Array.from(
      { length: 1000 },
      (_, i) => `${'abcdefghij'[i % 10].repeat(1 + (i % 7))} line ${String.fromCharCode(65 + (i % 26))}`,
    );
    const f = foldMessage(lines.join('\n'));
    const out = f.split('\n');
    expect(out.length).to.be.at.most(61);
    expect(f).to.include(lines[0]);
    expect(f).to.include(lines[999]);
    expect(f).to.match(/lines left out/);
    const long = foldMessage('x'.repeat(100_000));
    expect(long.length).to.be.below(700);
    expect(long).to.match(/99500 more characters/);
    const wide = foldMessage(
      Array.from({ length: 50 }, (_, i) => `${i % 2 ? 'y' : 'z'}`.repeat(499) + ` ${String.fromCharCode(97 + (i % 26))}`).join('\n'),
    );
    expect(Buffer.byteLength(wide)).to.be.at.most(4096 + 100);
    expect(wide).to.match(/bytes left out/);
  });

  it('a run whose message was folded keeps the whole one in message.txt of its artifact folder', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fold-test-'));
    try {
      const whole = Array(5000).fill(ENOSPC).join('\n');
      const r = { message: whole, artifacts: { dir } } as unknown as RunRecord;
      await foldRunMessage(r);
      expect(r.message!.length).to.be.below(4096);
      expect(r.message).to.include(`the whole message: ${path.join(dir, 'message.txt')}`);
      expect(await fs.readFile(path.join(dir, 'message.txt'), 'utf8')).to.equal(whole);
      const short = { message: 'short' } as unknown as RunRecord;
      await foldRunMessage(short);
      expect(short.message).to.equal('short');
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
