/**
 * The phases of the newc writer's plan (harness/cpio/write.ts:planEntries), each on its own:
 * one entry, the missing parents, the numbering, the hard-link groups.
 */
import { expect } from 'chai';
import { UsageError } from '../harness/errors.ts';
import type { CpioEntry } from '../harness/cpio/entry.ts';
import { addParents, groupHardLinks, numberNodes, planEntries, planOne, type PlanNode } from '../harness/cpio/write.ts';

const MTIME = 1_700_000_000;

/** Entries through planOne, in the order given (give them in archive order). */
function nodesOf(entries: CpioEntry[]): Map<string, PlanNode> {
  const nodes = new Map<string, PlanNode>();
  for (const entry of entries) {
    const n = planOne({ entry }, MTIME, nodes);
    nodes.set(n.path, n);
  }
  return nodes;
}

describe('cpio plan: one entry (planOne)', () => {
  it('normalises the path and fills the header: type bits, default permissions, owner, mtime, size', () => {
    const n = planOne({ entry: { type: 'file', path: '/etc//hosts', data: Buffer.from('abc') } }, MTIME, new Map());
    expect(n.path).to.equal('etc/hosts');
    expect(n.parts.map((b) => b.toString())).to.deep.equal(['etc', 'hosts']);
    expect(n.planned).to.include({ path: 'etc/hosts', mode: 0o100644, uid: 0, gid: 0, mtime: MTIME, size: 3, ino: 0, nlink: 1 });
    expect(planOne({ entry: { type: 'dir', path: 'd', mode: 0o700, uid: 5, mtime: 7 } }, MTIME, new Map()).planned).to.include({
      mode: 0o40700,
      uid: 5,
      mtime: 7,
    });
    expect(planOne({ entry: { type: 'char', path: 'dev/null', major: 1, minor: 3 } }, MTIME, new Map()).planned).to.include({
      mode: 0o20600,
      rdevmajor: 1,
      rdevminor: 3,
    });
  });

  it('a symlink stores its target as data; a hard link gets its normalised target and no owner of its own', () => {
    const s = planOne({ entry: { type: 'symlink', path: 'bin/sh', target: 'busybox' } }, MTIME, new Map());
    expect(s.planned.mode).to.equal(0o120777);
    expect(s.planned.data?.toString()).to.equal('busybox');
    const h = planOne({ entry: { type: 'hardlink', path: 'b', target: './a', uid: 9 } as CpioEntry }, MTIME, new Map());
    expect(h.target).to.equal('a');
    expect(h.planned).to.include({ mode: 0o100000, uid: 0 });
  });

  it('a body in the spill file is planned from there, with its length', () => {
    const spill = { offset: 100, length: 42 };
    const n = planOne({ entry: { type: 'file', path: 'f', data: Buffer.alloc(0) }, spill }, MTIME, new Map());
    expect(n.planned.size).to.equal(42);
    expect(n.planned.spill).to.deep.equal(spill);
  });

  it('refuses a path already seen, the trailer name, and an unknown type', () => {
    const seen = nodesOf([{ type: 'dir', path: 'a' }]);
    expect(() => planOne({ entry: { type: 'dir', path: './a/' } }, MTIME, seen)).to.throw(UsageError, /appears twice/);
    expect(() => planOne({ entry: { type: 'dir', path: 'TRAILER!!!' } }, MTIME, new Map())).to.throw(UsageError, /end of a newc archive/);
    expect(() => planOne({ entry: { type: 'door', path: 'x' } as unknown as CpioEntry }, MTIME, new Map())).to.throw(
      UsageError,
      /unknown type "door"/,
    );
  });
});

describe('cpio plan: missing parents (addParents)', () => {
  it('adds every missing parent folder as root-owned 0755 with the default mtime, and keeps the given ones', () => {
    const nodes = nodesOf([
      { type: 'dir', path: 'a', mode: 0o700 },
      { type: 'file', path: 'a/b/c/f', data: Buffer.from('x') },
    ]);
    addParents(nodes, MTIME);
    expect([...nodes.keys()].sort()).to.deep.equal(['a', 'a/b', 'a/b/c', 'a/b/c/f']);
    for (const p of ['a/b', 'a/b/c']) {
      expect(nodes.get(p)!.entry).to.equal(undefined);
      expect(nodes.get(p)!.planned).to.include({ mode: 0o40755, uid: 0, gid: 0, mtime: MTIME, size: 0 });
    }
    expect(nodes.get('a')!.planned.mode).to.equal(0o40700);
  });

  it('refuses an entry inside something that is not a folder', () => {
    const nodes = nodesOf([
      { type: 'file', path: 'a', data: Buffer.from('x') },
      { type: 'file', path: 'a/b', data: Buffer.from('y') },
    ]);
    expect(() => addParents(nodes, MTIME)).to.throw(UsageError, /"a\/b" is inside "a", which is a file, not a folder/);
  });
});

describe('cpio plan: numbering (numberNodes)', () => {
  it('gives inodes 1..N in archive order, skipping hard links, and folders 2 + their subfolders as link count', () => {
    const nodes = nodesOf([
      { type: 'dir', path: 'a' },
      { type: 'dir', path: 'a/x' },
      { type: 'dir', path: 'a/y' },
      { type: 'file', path: 'a/z', data: Buffer.from('z') },
      { type: 'hardlink', path: 'b', target: 'a/z' },
      { type: 'file', path: 'c', data: Buffer.from('c') },
    ]);
    const sorted = [...nodes.values()];
    numberNodes(sorted, nodes);
    const got = Object.fromEntries(sorted.map((n) => [n.path, [n.planned.ino, n.planned.nlink]]));
    expect(got).to.deep.equal({ a: [1, 4], 'a/x': [2, 2], 'a/y': [3, 2], 'a/z': [4, 1], b: [0, 1], c: [5, 1] });
  });
});

describe('cpio plan: hard-link groups (groupHardLinks)', () => {
  it("members share the file's inode, mode, owner and mtime; the data goes on the last member only", () => {
    const data = Buffer.from('payload');
    const nodes = nodesOf([
      { type: 'hardlink', path: 'a', target: 'm' },
      { type: 'file', path: 'm', data, mode: 0o755, uid: 3, gid: 4, mtime: 5 },
      { type: 'hardlink', path: 'z', target: 'm' },
      { type: 'file', path: 'other', data: Buffer.from('o') },
    ]);
    const sorted = [...nodes.values()].sort((x, y) => x.path.localeCompare(y.path));
    numberNodes(sorted, nodes);
    groupHardLinks(sorted, nodes);
    const by = (p: string) => nodes.get(p)!.planned;
    for (const p of ['a', 'm', 'z']) {
      expect(by(p), p).to.include({ ino: by('m').ino, mode: 0o100755, uid: 3, gid: 4, mtime: 5, nlink: 3 });
    }
    expect(by('z').size).to.equal(data.length);
    expect(by('z').data).to.equal(data);
    expect([by('a').size, by('m').size]).to.deep.equal([0, 0]);
    expect([by('a').data, by('m').data]).to.deep.equal([undefined, undefined]);
    expect(by('other')).to.include({ nlink: 1, size: 1 });
  });

  it('refuses a link to a path not in the archive, to a synthesised folder, or to something not a file', () => {
    const run = (entries: CpioEntry[]) => () => {
      const nodes = nodesOf(entries);
      addParents(nodes, MTIME);
      const sorted = [...nodes.values()];
      numberNodes(sorted, nodes);
      groupHardLinks(sorted, nodes);
    };
    expect(run([{ type: 'hardlink', path: 'l', target: 'nope' }])).to.throw(UsageError, /"nope", which is not in the archive/);
    expect(
      run([
        { type: 'file', path: 'd/f', data: Buffer.from('x') },
        { type: 'hardlink', path: 'l', target: 'd' },
      ]),
    ).to.throw(UsageError, /"d", which is not a file/);
    expect(
      run([
        { type: 'symlink', path: 's', target: 'x' },
        { type: 'hardlink', path: 'l', target: 's' },
      ]),
    ).to.throw(UsageError, /"s", which is a symlink/);
  });
});

describe('cpio plan: planEntries runs the phases in order', () => {
  it('parents added, sorted by bytes, numbered, links grouped', () => {
    const plan = planEntries(
      [
        { entry: { type: 'hardlink', path: 'b/l', target: 'b/f' } },
        { entry: { type: 'file', path: 'b/f', data: Buffer.from('x') } },
        { entry: { type: 'file', path: 'B', data: Buffer.from('y') } },
      ],
      { mtime: MTIME },
    );
    expect(plan.map((p) => [p.path, p.ino, p.nlink, p.size])).to.deep.equal([
      ['B', 1, 1, 1],
      ['b', 2, 2, 0],
      ['b/f', 3, 2, 0],
      ['b/l', 3, 2, 1],
    ]);
  });
});
