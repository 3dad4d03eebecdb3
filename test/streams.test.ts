import { expect } from 'chai';
import { createWriteStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { batchedWriter, endStream } from '../harness/qemu/streams.ts';

describe("the console log's batched writer (qemu/streams.ts)", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'rootprobe-streams-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('writes every byte in order, small chunks gathered into few writes, the rest on flush()', async () => {
    const file = path.join(dir, 'console.log');
    const ws = createWriteStream(file);
    const writes: number[] = [];
    const write = ws.write.bind(ws) as (chunk: Buffer) => boolean;
    ws.write = ((chunk: Buffer) => {
      writes.push(chunk.length);
      return write(chunk);
    }) as typeof ws.write;
    const source = new PassThrough();
    const out = batchedWriter(ws, source, { delayMs: 10_000, maxBytes: 1000 });
    let expected = '';
    for (let i = 0; i < 300; i++) {
      const text = `line ${i}\n`;
      expected += text;
      out.push(Buffer.from(text));
    }
    // 300 chunks of 7-9 bytes: a write each time 1000 bytes wait, none by the (long) timer
    expect(writes.length).to.be.within(2, 3);
    out.flush();
    out.flush(); // nothing left: no empty write
    await endStream(ws);
    expect(readFileSync(file, 'utf8')).to.equal(expected);
    expect(writes.reduce((a, b) => a + b, 0)).to.equal(Buffer.byteLength(expected));
    expect(writes.length).to.be.within(3, 4);
  });

  it('writes what waits once the delay has passed, with no flush()', async () => {
    const file = path.join(dir, 'console.log');
    const ws = createWriteStream(file);
    const out = batchedWriter(ws, new PassThrough(), { delayMs: 5 });
    out.push(Buffer.from('Linux version 6.1\n'));
    await new Promise((r) => setTimeout(r, 50));
    await endStream(ws);
    expect(readFileSync(file, 'utf8')).to.equal('Linux version 6.1\n');
  });
});
