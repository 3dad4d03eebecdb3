/**
 * Short messages (harness/report/fold.ts): repeated lines folded, a message of any size cut to
 * a few KB, and a run's whole message kept in its artifact folder (execute.finishRecord, the
 * step every record goes through: the matrix, `run external`, `shell` and the library's boot()).
 */
import { expect } from 'chai';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { foldMessage } from '../harness/report/fold.ts';
import { finishRecord } from '../harness/run/execute.ts';
import { bareRecord, type RunRecord } from '../harness/run/record.ts';
import { RunReadback } from '../harness/readback/result.ts';
import { reportJson, singleRunReport } from '../harness/report/json.ts';

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

  const kernel = { id: 'file:/k/vmlinuz', release: '6.1.0' };
  const record = (outcome: RunRecord['outcome'], message: string): RunRecord => {
    const r = bareRecord({ scenario: 'loop_root_shutdown', kernel, accel: 'tcg', outcome, memoryMiB: 256, rerun: 'npx rootprobe run x' });
    r.message = message;
    return r;
  };

  it("finishing a run's record: run.json, message.txt and every report carry the short message, the whole one in message.txt", async () => {
    const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'fold-test-'));
    try {
      const runDir = path.join(tmp, 'run');
      await fs.mkdir(runDir);
      await fs.writeFile(path.join(runDir, 'console.log'), '[ 1.0] hello\n');
      // What loop_root_shutdown said with a full TMPDIR: 811 KB, one debugfs line repeated.
      const whole = `debugfs could not finish the disk image inner.img:\n${Array(20000).fill(ENOSPC).join('\n')}`;
      const r = record('error', whole);
      const root = path.join(tmp, 'artifacts');
      await finishRecord(r, {
        started: Date.now(),
        runDir,
        name: 'loop_root_shutdown',
        kernel,
        readback: new RunReadback(),
        artifactsRoot: root,
      });
      const dir = r.artifacts!.dir;
      expect(path.dirname(dir)).to.equal(root);
      expect(Buffer.byteLength(r.message!)).to.be.below(4096 + 200);
      expect(r.message).to.include('the same line 19999 more times');
      expect(r.message).to.match(
        new RegExp(`\\(the whole message: ${path.join(dir, 'message.txt').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\)$`),
      );
      expect(await fs.readFile(path.join(dir, 'message.txt'), 'utf8')).to.equal(whole);
      // The artifact's run.json is the finished record, not the one before the fold.
      const runJson = await fs.readFile(path.join(dir, 'run.json'), 'utf8');
      expect(runJson.length).to.be.below(20_000);
      expect(JSON.parse(runJson).message).to.equal(r.message);
      expect(await fs.readFile(path.join(dir, 'console.log'), 'utf8')).to.equal('[ 1.0] hello\n');
      expect(reportJson(singleRunReport(r, 'test', new Date()), 'run').length).to.be.below(20_000);
      // The run folder went into the artifacts.
      expect(await fs.stat(runDir).catch(() => undefined)).to.equal(undefined);
    } finally {
      await fs.rm(tmp, { recursive: true, force: true });
    }
  });

  it('a record whose folder is not kept, or that never booted, is folded too (no message.txt named)', async () => {
    const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'fold-test-'));
    try {
      const runDir = path.join(tmp, 'run');
      await fs.mkdir(runDir);
      const r = record('passed', Array(5000).fill(ENOSPC).join('\n'));
      const root = path.join(tmp, 'artifacts');
      await finishRecord(r, { started: Date.now(), runDir, name: 'x', kernel, readback: new RunReadback(), artifactsRoot: root });
      expect(r.artifacts).to.equal(undefined);
      expect(r.message).to.equal(`${ENOSPC}\n… (the same line 4999 more times)`);
      expect(await fs.stat(root).catch(() => undefined)).to.equal(undefined);
      expect(await fs.stat(runDir).catch(() => undefined)).to.equal(undefined);
      // finish runs first: a run it fails is kept (external mode: a user's file changed).
      await fs.mkdir(runDir);
      const failed = record('passed', 'short');
      const finish = async (x: RunRecord): Promise<void> => {
        x.outcome = 'error';
      };
      await finishRecord(failed, {
        started: Date.now(),
        runDir,
        name: 'x',
        kernel,
        readback: new RunReadback(),
        artifactsRoot: root,
        finish,
      });
      expect(failed.message).to.equal('short');
      expect(failed.artifacts?.dir).to.equal(path.join(root, 'x--file_k_vmlinuz'));
      expect(await fs.stat(path.join(failed.artifacts!.dir, 'message.txt')).catch(() => undefined)).to.equal(undefined);
      // Records made without a boot (skipped, a host error) are short from the start.
      const skipped = bareRecord({
        scenario: 's',
        kernel,
        accel: 'kvm',
        outcome: 'error',
        message: Array(3000).fill(ENOSPC).join('\n'),
        memoryMiB: 1,
        rerun: 'r',
      });
      expect(skipped.message).to.equal(`${ENOSPC}\n… (the same line 2999 more times)`);
    } finally {
      await fs.rm(tmp, { recursive: true, force: true });
    }
  });
});
