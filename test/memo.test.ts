/** fileMemo (harness/cache.ts): facts about host files remembered across processes, never stale. */
import { expect } from 'chai';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { fileMemo } from '../harness/cache.ts';
import { usePrivateCache } from './support/cache.ts';

describe('fileMemo: per-file facts remembered in the cache', () => {
  const tmp = usePrivateCache('rootprobe-memo-', { each: true });

  const old = new Date(Date.now() - 3600_000);
  async function oldFile(p: string, text: string): Promise<void> {
    await fs.writeFile(p, text);
    await fs.utimes(p, old, old);
  }

  it('computes once for an unchanged file, again when its bytes change (even with size and mtime put back)', async () => {
    const f = path.join(tmp.dir, 'f');
    await oldFile(f, 'aaaa');
    // ctime cannot be set back; wait until it is older than the racy window
    await new Promise((r) => setTimeout(r, 2100));
    let calls = 0;
    const compute = async () => `v${++calls}`;
    expect(await fileMemo('t', f, compute)).to.equal('v1');
    expect(await fileMemo('t', f, compute)).to.equal('v1');
    expect(calls).to.equal(1);
    expect(await fileMemo('other-kind', f, compute)).to.equal('v2');
    await oldFile(f, 'bbbb'); // same size, same mtime: only ctime tells
    expect(await fileMemo('t', f, compute)).to.equal('v3');
  }).timeout(10_000);

  it('does not remember a file modified within the last 2 s', async () => {
    const f = path.join(tmp.dir, 'fresh');
    await fs.writeFile(f, 'x');
    let calls = 0;
    const compute = async () => ++calls;
    await fileMemo('t', f, compute);
    await fileMemo('t', f, compute);
    expect(calls).to.equal(2);
  });

  it('a damaged memo file is recomputed, not trusted or fatal', async () => {
    const f = path.join(tmp.dir, 'g');
    await oldFile(f, 'g');
    await new Promise((r) => setTimeout(r, 2100));
    await fileMemo('t', f, async () => 'good');
    const memoDir = path.join(tmp.dir, 'cache', 'memo');
    for (const m of await fs.readdir(memoDir)) await fs.writeFile(path.join(memoDir, m), '{"id": "x", "val');
    expect(await fileMemo('t', f, async () => 'recomputed')).to.equal('recomputed');
  }).timeout(10_000);
});
