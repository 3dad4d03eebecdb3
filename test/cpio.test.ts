import { expect } from 'chai';
import { TEST_KERNEL } from './support/kernel.ts';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { UsageError } from '../harness/errors.ts';
import { requireTool } from '../harness/host.ts';
import { archivePath, packNewc, readNewc, writeNewcFile, type CpioEntry } from '../harness/cpio/index.ts';
import { CHUNK } from '../harness/cpio/write.ts';
import { ImageTree } from '../harness/image/tree.ts';

const cpio = requireTool('cpio', 'to cross-check our archives');
const tmpDirs: string[] = [];
function tmpDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'rootprobe-cpio-test-'));
  tmpDirs.push(d);
  return d;
}
after(() => {
  for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true });
});

function gnu(args: string[], input: Buffer, cwd?: string): string {
  return execFileSync(cpio, args, { input, cwd, stdio: ['pipe', 'pipe', 'pipe'] }).toString('utf8');
}

/** The fields of every header in a plain segment, walked by hand (independent of readNewc). */
function rawHeaders(
  buf: Buffer,
): Array<{ offset: number; name: Buffer; namesize: number; filesize: number; nlink: number; ino: number; mtime: number }> {
  const out = [];
  let o = 0;
  for (;;) {
    expect(buf.toString('latin1', o, o + 6), `magic at ${o}`).to.equal('070701');
    const f = (i: number) => parseInt(buf.toString('latin1', o + 6 + 8 * i, o + 14 + 8 * i), 16);
    const namesize = f(11);
    const filesize = f(6);
    const name = buf.subarray(o + 110, o + 110 + namesize - 1);
    out.push({ offset: o, name, namesize, filesize, nlink: f(4), ino: f(0), mtime: f(5) });
    if (name.toString() === 'TRAILER!!!') return out;
    o = (((o + 110 + namesize + 3) & ~3) + filesize + 3) & ~3;
  }
}

/** n bytes that differ from file to file (seed) and from offset to offset. */
function pattern(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + (i >>> 9) + seed * 7) & 0xff;
  return b;
}

const sizes = [0, 1, 2, 3, 4, 5];
const longName = `long/${'x'.repeat(200)}/${'y'.repeat(200)}`;
/** A tree without device nodes, which GNU cpio can extract without root. */
const tree: CpioEntry[] = [
  { type: 'dir', path: 'etc', mode: 0o700 },
  { type: 'file', path: '/etc/passwd', data: Buffer.from('root:x:0:0::/root:/bin/sh\n'), mode: 0o600 },
  ...sizes.map((n): CpioEntry => ({ type: 'file', path: `sizes/s${n}`, data: Buffer.alloc(n, 0x41 + n) })),
  { type: 'file', path: 'bin/café', data: Buffer.from('non-ascii\n'), mode: 0o755 },
  { type: 'file', path: longName, data: Buffer.from('long\n') },
  { type: 'symlink', path: 'bin/sh', target: 'busybox' },
  { type: 'symlink', path: 'lib64', target: '/usr/lib' },
  { type: 'file', path: 'bin/busybox', data: Buffer.from('#!fake busybox\n'), mode: 0o755 },
  { type: 'hardlink', path: 'bin/ls', target: 'bin/busybox' },
  { type: 'hardlink', path: 'bin/cat', target: '/bin/busybox' },
  { type: 'fifo', path: 'run/initctl', mode: 0o600 },
  { type: 'dir', path: 'empty' },
];
/** Paths GNU cpio lists for `tree` (parents synthesised, sorted by components). */
const treePaths = [
  'bin',
  'bin/busybox',
  'bin/café',
  'bin/cat',
  'bin/ls',
  'bin/sh',
  'empty',
  'etc',
  'etc/passwd',
  'lib64',
  'long',
  `long/${'x'.repeat(200)}`,
  longName,
  'run',
  'run/initctl',
  'sizes',
  ...sizes.map((n) => `sizes/s${n}`),
];

describe('cpio: archivePath', () => {
  it('normalises leading /, // and ./', () => {
    expect(archivePath('/a//b/./c')).to.equal('a/b/c');
    expect(archivePath('./x/')).to.equal('x');
  });
  for (const bad of ['../x', 'a/../../b', '', '/', '.', 'a\0b']) {
    it(`rejects ${JSON.stringify(bad)} with a UsageError naming it`, () => {
      expect(() => archivePath(bad)).to.throw(UsageError, JSON.stringify(bad));
    });
  }
});

describe('cpio: round trip through GNU cpio', () => {
  let archive: Buffer;
  let dir: string;
  before(async () => {
    archive = await packNewc(tree, { mtime: 1_600_000_000 });
    dir = tmpDir();
    gnu(['-idm', '--no-absolute-filenames', '--quiet'], archive, dir);
  });

  it('GNU cpio -it lists the same paths, parents first', () => {
    const listed = gnu(['-it', '--quiet'], archive).split('\n').filter(Boolean);
    expect(listed).to.deep.equal(treePaths);
  });

  it('GNU cpio -idm extracts the same contents, modes, mtimes and symlink targets', () => {
    for (const e of tree) {
      const p = path.join(dir, archivePath(e.path));
      const st = fs.lstatSync(p);
      if (e.type === 'file') {
        expect(st.isFile(), e.path).to.equal(true);
        expect(fs.readFileSync(p).equals(e.data!), `content of ${e.path}`).to.equal(true);
        expect(st.mode & 0o7777, `mode of ${e.path}`).to.equal(e.mode ?? 0o644);
        expect(st.mtimeMs / 1000, `mtime of ${e.path}`).to.equal(1_600_000_000);
      } else if (e.type === 'symlink') {
        expect(fs.readlinkSync(p)).to.equal(e.target);
      } else if (e.type === 'dir') {
        expect(st.isDirectory()).to.equal(true);
        expect(st.mode & 0o7777, `mode of ${e.path}`).to.equal(e.mode ?? 0o755);
      } else if (e.type === 'fifo') {
        expect(st.isFIFO(), `${e.path} is a fifo`).to.equal(true);
        expect(st.mode & 0o7777).to.equal(0o600);
      }
    }
    expect(fs.lstatSync(path.join(dir, 'run')).mode & 0o7777, 'synthesised parent').to.equal(0o755);
  });

  it('hard links share one inode and the data', () => {
    const inos = ['bin/busybox', 'bin/ls', 'bin/cat'].map((p) => fs.statSync(path.join(dir, p)));
    expect(new Set(inos.map((s) => s.ino)).size).to.equal(1);
    expect(inos[0].nlink).to.equal(3);
    expect(fs.readFileSync(path.join(dir, 'bin/cat'), 'utf8')).to.equal('#!fake busybox\n');
  });

  it('a tree of host files (ImageTree -> writeNewcFile, streamed) extracts with GNU cpio -idm to the same files', async () => {
    // Sizes around the writer's chunk size, and enough small files that headers and bodies
    // cross chunk boundaries at many offsets.
    const src = tmpDir();
    const sizes = [0, 1, 3, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK + 5];
    const t = new ImageTree('host files');
    const hostFiles: Array<{ guest: string; host: string; mode: number }> = [];
    const add = (guest: string, data: Buffer, mode: number): void => {
      const host = path.join(src, guest.replaceAll('/', '_'));
      fs.writeFileSync(host, data);
      fs.chmodSync(host, mode);
      t.copy(guest, host); // mode from the host file
      hostFiles.push({ guest, host, mode });
    };
    for (const n of sizes) add(`/big/s${n}`, pattern(n, n), 0o644);
    for (let i = 0; i < 600; i++) add(`/small/f${String(i).padStart(3, '0')}`, pattern(1000 + 7 * i, i), i % 2 ? 0o600 : 0o751);
    t.hardlink('/big/link', `/big/s${CHUNK + 1}`);
    t.symlink('/big/sym', `s${CHUNK}`);
    t.file('/etc/inline', 'in memory\n');
    t.dir('/empty', 0o700);
    const out = path.join(tmpDir(), 'host.cpio');
    await writeNewcFile(await t.entries(), out, { mtime: 1_600_000_000 });
    const archive = fs.readFileSync(out);

    // The same bytes as with every body in memory.
    const inMemory = (await t.entries()).map(
      (e): CpioEntry =>
        e.type === 'file' && e.hostPath !== undefined ? { ...e, hostPath: undefined, data: fs.readFileSync(e.hostPath) } : e,
    );
    expect(archive.equals(await packNewc(inMemory, { mtime: 1_600_000_000 })), 'same bytes as in-memory bodies').to.equal(true);
    await writeNewcFile(await t.entries(), `${out}.gz`, { mtime: 1_600_000_000, compress: 'gzip' });
    const gz = fs.readFileSync(`${out}.gz`);
    expect(gz.equals(await packNewc(inMemory, { mtime: 1_600_000_000, compress: 'gzip' })), 'gzip: same bytes').to.equal(true);
    expect(gunzipSync(gz).equals(archive), 'gzip holds the plain archive').to.equal(true);

    const dir = tmpDir();
    gnu(['-idm', '--no-absolute-filenames', '--quiet'], archive, dir);
    for (const f of hostFiles) {
      const p = path.join(dir, f.guest);
      expect(fs.readFileSync(p).equals(fs.readFileSync(f.host)), `content of ${f.guest}`).to.equal(true);
      expect(fs.statSync(p).mode & 0o7777, `mode of ${f.guest}`).to.equal(f.mode);
      expect(fs.statSync(p).mtimeMs / 1000, `mtime of ${f.guest}`).to.equal(1_600_000_000);
    }
    const [linked, link] = [`big/s${CHUNK + 1}`, 'big/link'].map((p) => fs.statSync(path.join(dir, p)));
    expect([link.ino, link.nlink, link.size]).to.deep.equal([linked.ino, 2, CHUNK + 1]);
    expect(fs.readlinkSync(path.join(dir, 'big/sym'))).to.equal(`s${CHUNK}`);
    expect(fs.readFileSync(path.join(dir, 'etc/inline'), 'utf8')).to.equal('in memory\n');
    expect(fs.statSync(path.join(dir, 'empty')).mode & 0o7777).to.equal(0o700);
    const listed = gnu(['-it', '--quiet'], archive).split('\n').filter(Boolean);
    expect(listed).to.have.length(hostFiles.length + 7); // + big, small, link, sym, etc, etc/inline, empty
  });

  it('GNU cpio -itv shows device numbers and types', async () => {
    const devs = await packNewc([
      { type: 'char', path: 'dev/console', major: 5, minor: 1 },
      { type: 'block', path: 'dev/vda', major: 254, minor: 0, mode: 0o660 },
      { type: 'char', path: 'dev/big', major: 4000, minor: 70000 },
    ]);
    const lines = gnu(['-itv', '--quiet'], devs).split('\n').filter(Boolean);
    expect(lines).to.have.length(4);
    expect(lines[1]).to.match(/^crw------- .* 4000, +70000 .* dev\/big$/);
    expect(lines[2]).to.match(/^crw------- .* 5, +1 .* dev\/console$/);
    expect(lines[3]).to.match(/^brw-rw---- .* 254, +0 .* dev\/vda$/);
    const back = await readNewc(devs);
    expect(back.map((e) => [e.path, e.type, e.major, e.minor])).to.deep.equal([
      ['dev', 'dir', undefined, undefined],
      ['dev/big', 'char', 4000, 70000],
      ['dev/console', 'char', 5, 1],
      ['dev/vda', 'block', 254, 0],
    ]);
  });

  it('readNewc reads our archive back to the same entries', async () => {
    const back = await readNewc(archive);
    expect(back.map((e) => e.path)).to.deep.equal(treePaths);
    const byPath = new Map(back.map((e) => [e.path, e]));
    for (const e of tree) {
      const r = byPath.get(archivePath(e.path))!;
      expect(r.mtime).to.equal(1_600_000_000);
      expect([r.uid, r.gid]).to.deep.equal([0, 0]);
      if (e.type === 'file') expect(r.data.equals(e.data!), e.path).to.equal(true);
      if (e.type === 'symlink') expect([r.type, r.target, r.mode]).to.deep.equal(['symlink', e.target, 0o777]);
      if (e.type === 'hardlink') {
        const t = byPath.get(archivePath(e.target))!;
        expect([r.type, r.ino, r.nlink, r.mode]).to.deep.equal(['file', t.ino, 3, 0o755]);
        expect(r.data.toString()).to.equal('#!fake busybox\n');
      }
    }
    expect(byPath.get('etc')!.nlink).to.equal(2);
    expect(byPath.get('long')!.nlink).to.equal(3);
  });
});

describe('cpio: layout', () => {
  it('counts name bytes (not characters), includes the NUL, pads header+name and data to 4', async () => {
    const buf = await packNewc(tree);
    const hs = rawHeaders(buf);
    for (const h of hs) {
      expect(h.offset % 4, `offset of ${h.name}`).to.equal(0);
      expect(h.namesize).to.equal(h.name.length + 1);
    }
    const cafe = hs.find((h) => h.name.toString() === 'bin/café')!;
    expect(cafe.namesize)
      .to.equal(Buffer.byteLength('bin/café') + 1)
      .and.equal(10);
    expect(hs.find((h) => h.name.toString() === longName)!.namesize).to.equal(longName.length + 1);
    for (const n of sizes) expect(hs.find((h) => h.name.toString() === `sizes/s${n}`)!.filesize).to.equal(n);
    // Every entry but the trailer has a distinct inode except the hard-link group.
    expect(hs[hs.length - 1].name.toString()).to.equal('TRAILER!!!');
    expect(hs[hs.length - 1].nlink).to.equal(1);
    expect(buf.length % 512).to.equal(0);
    expect(buf.subarray(hs[hs.length - 1].offset + 124).every((b) => b === 0)).to.equal(true);
  });

  it("stores a hard-link group's data once, on its last entry in archive order", async () => {
    const hs = rawHeaders(await packNewc(tree));
    const group = hs.filter((h) => ['bin/busybox', 'bin/cat', 'bin/ls'].includes(h.name.toString()));
    expect(group.map((h) => h.name.toString())).to.deep.equal(['bin/busybox', 'bin/cat', 'bin/ls']);
    expect(group.map((h) => h.filesize)).to.deep.equal([0, 0, 15]);
    expect(group.map((h) => h.nlink)).to.deep.equal([3, 3, 3]);
    expect(new Set(group.map((h) => h.ino)).size).to.equal(1);
    // Inodes 1..N in order, hard links not counted twice.
    const inos = hs.slice(0, -1).map((h) => h.ino);
    expect(Math.max(...inos)).to.equal(new Set(inos).size);
    expect(inos[0]).to.equal(1);
  });

  it('writes a deterministic gzip header (no name, mtime 0) and pads gzip segments to 4', async () => {
    const gz = await packNewc(tree, { compress: 'gzip' });
    expect([...gz.subarray(0, 4)]).to.deep.equal([0x1f, 0x8b, 8, 0]); // deflate, no FNAME/FEXTRA flags
    expect(gz.readUInt32LE(4)).to.equal(0);
    expect(gz.length % 4).to.equal(0);
  });
});

describe('cpio: determinism', () => {
  let saved: string | undefined;
  beforeEach(() => {
    saved = process.env.SOURCE_DATE_EPOCH;
  });
  afterEach(() => {
    if (saved === undefined) delete process.env.SOURCE_DATE_EPOCH;
    else process.env.SOURCE_DATE_EPOCH = saved;
  });

  it('same entries (in any order) give identical bytes, plain and gzip', async () => {
    const shuffled = [...tree].reverse();
    expect((await packNewc(tree)).equals(await packNewc(shuffled))).to.equal(true);
    const a = await packNewc(tree, { compress: 'gzip' });
    expect(a.equals(await packNewc(shuffled, { compress: 'gzip' }))).to.equal(true);
  });

  it('writes the same bytes as the writer before it streamed host files (pinned sha256)', async () => {
    // sha256 of this tree packed by the cpio-stream based writer (plain: gzip bytes may follow
    // the zlib build). Change it only with SEGMENT_FORMAT in harness/image/initramfs.ts.
    const sha = createHash('sha256')
      .update(await packNewc(tree, { mtime: 1_600_000_000 }))
      .digest('hex');
    expect(sha).to.equal('99dadc5488f441ee6d8d13c75de2eeaea7486d8779b94ed6f4ace5179726dbf6');
  });

  it('SOURCE_DATE_EPOCH sets the default mtime; opts.mtime and entry.mtime take precedence', async () => {
    process.env.SOURCE_DATE_EPOCH = '1000';
    const a = await packNewc(tree);
    process.env.SOURCE_DATE_EPOCH = '2000';
    const b = await packNewc(tree);
    expect(a.equals(b)).to.equal(false);
    expect(new Set((await readNewc(b)).map((e) => e.mtime))).to.deep.equal(new Set([2000]));
    const c = await readNewc(
      await packNewc(
        [
          { type: 'file', path: 'a/x', data: Buffer.alloc(0), mtime: 7 },
          { type: 'dir', path: 'b' },
        ],
        { mtime: 5 },
      ),
    );
    expect(c.map((e) => [e.path, e.mtime])).to.deep.equal([
      ['a', 5],
      ['a/x', 7],
      ['b', 5],
    ]);
    delete process.env.SOURCE_DATE_EPOCH;
    expect(rawHeaders(await packNewc(tree)).every((h) => h.mtime === 0)).to.equal(true);
    process.env.SOURCE_DATE_EPOCH = 'yesterday';
    await expectReject(packNewc(tree), UsageError, 'SOURCE_DATE_EPOCH');
  });

  it('writeNewcFile writes the same bytes as packNewc, from an array or an async iterable', async () => {
    const d = tmpDir();
    const big = Buffer.alloc(3 * 1024 * 1024 + 1, 7);
    const entries: CpioEntry[] = [...tree, { type: 'file', path: 'big', data: big }, { type: 'hardlink', path: 'big2', target: 'big' }];
    async function* gen() {
      for (const e of entries) yield e;
    }
    const spillsBefore = fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith('rootprobe-cpio-') && !n.includes('test')).length;
    for (const compress of ['none', 'gzip'] as const) {
      const want = await packNewc(entries, { compress });
      await writeNewcFile(entries, path.join(d, `a-${compress}`), { compress });
      await writeNewcFile(gen(), path.join(d, `b-${compress}`), { compress });
      expect(fs.readFileSync(path.join(d, `a-${compress}`)).equals(want), `array, ${compress}`).to.equal(true);
      expect(fs.readFileSync(path.join(d, `b-${compress}`)).equals(want), `iterable, ${compress}`).to.equal(true);
    }
    expect(fs.readdirSync(d).sort()).to.deep.equal(['a-gzip', 'a-none', 'b-gzip', 'b-none']); // no temp files left
    const spillsAfter = fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith('rootprobe-cpio-') && !n.includes('test')).length;
    expect(spillsAfter).to.equal(spillsBefore);
  });
});

async function expectReject(p: Promise<unknown>, type: new (...a: never[]) => Error, text: string): Promise<Error> {
  try {
    await p;
  } catch (err) {
    expect(err).to.be.instanceOf(type);
    expect((err as Error).message).to.include(text);
    return err as Error;
  }
  throw new Error(`expected a ${type.name} mentioning ${JSON.stringify(text)}, but it resolved`);
}

describe('cpio: bad entries', () => {
  const f = (p: string): CpioEntry => ({ type: 'file', path: p, data: Buffer.from('x') });
  it('rejects duplicate paths, naming them', async () => {
    await expectReject(packNewc([f('a/b'), f('/a//b')]), UsageError, '"a/b" appears twice');
  });
  it('rejects a hard link whose target is missing or not a file', async () => {
    await expectReject(packNewc([{ type: 'hardlink', path: 'l', target: 'nope' }]), UsageError, '"nope", which is not in the archive');
    await expectReject(
      packNewc([
        { type: 'dir', path: 'd' },
        { type: 'hardlink', path: 'l', target: 'd' },
      ]),
      UsageError,
      'which is a dir',
    );
  });
  it('rejects an entry inside a non-folder, the TRAILER!!! name, type bits in mode, and out-of-range numbers', async () => {
    await expectReject(packNewc([f('a'), f('a/b')]), UsageError, 'inside "a", which is a file');
    await expectReject(packNewc([f('TRAILER!!!')]), UsageError, 'TRAILER!!!');
    await expectReject(packNewc([{ type: 'file', path: 'm', data: Buffer.alloc(0), mode: 0o100644 }]), UsageError, 'mode 0o100644');
    await expectReject(packNewc([{ type: 'char', path: 'c', major: -1, minor: 0 }]), UsageError, 'major -1');
    await expectReject(packNewc([{ type: 'dir', path: 'u', uid: 2 ** 32 }]), UsageError, 'uid 4294967296');
    await expectReject(packNewc([f('../etc/x')]), UsageError, '"../etc/x"');
    await expectReject(packNewc([{ type: 'symlink', path: 's', target: '' }]), UsageError, 'symlink target');
  });
  it('rejects a hostPath that is missing, not a regular file, or given with data, naming the entry', async () => {
    const d = tmpDir();
    const missing = path.join(d, 'missing');
    await expectReject(
      packNewc([{ type: 'file', path: 'm', hostPath: missing }]),
      Error,
      `cpio entry "m": cannot open its host file: ENOENT`,
    );
    await expectReject(
      packNewc([{ type: 'file', path: 'd', hostPath: d }]),
      UsageError,
      `cpio entry "d": its host file ${d} is not a regular file`,
    );
    const both = { type: 'file', path: 'b', hostPath: missing, data: Buffer.from('x') } as unknown as CpioEntry;
    await expectReject(packNewc([both]), UsageError, 'give data or hostPath, not both');
    const out = path.join(d, 'out.cpio');
    await expectReject(writeNewcFile([{ type: 'file', path: 'm', hostPath: missing }], out), Error, 'cannot open');
    expect(fs.readdirSync(d)).to.deep.equal([]); // no output, no temporary file
  });
});

describe('cpio: reading GNU cpio output', () => {
  it('reads find . | cpio -o -H newc of a real tree', async () => {
    const d = tmpDir();
    const t = path.join(d, 'tree');
    fs.mkdirSync(path.join(t, 'emptydir'), { recursive: true });
    fs.writeFileSync(path.join(t, 'café'), 'crème\n');
    fs.writeFileSync(path.join(t, 'empty'), '');
    fs.writeFileSync(path.join(t, 'one'), 'linked data');
    fs.linkSync(path.join(t, 'one'), path.join(t, 'two'));
    fs.symlinkSync('café', path.join(t, 'sym'));
    fs.chmodSync(path.join(t, 'empty'), 0o640);
    const list = execFileSync('find', ['.'], { cwd: t });
    const archive = execFileSync(cpio, ['-o', '-H', 'newc', '--quiet'], { cwd: t, input: list });
    const back = await readNewc(archive);
    const byPath = new Map(back.map((e) => [e.path, e]));
    expect([...byPath.keys()].sort()).to.deep.equal(['.', 'café', 'empty', 'emptydir', 'one', 'sym', 'two']);
    expect(byPath.get('.')!.type).to.equal('dir');
    expect(byPath.get('café')!.data.toString()).to.equal('crème\n');
    expect(byPath.get('empty')!.data.length).to.equal(0);
    expect(byPath.get('empty')!.mode).to.equal(0o640);
    expect(byPath.get('emptydir')!.type).to.equal('dir');
    expect(byPath.get('sym')).to.include({ type: 'symlink', target: 'café' });
    const one = byPath.get('one')!;
    const two = byPath.get('two')!;
    expect([one.nlink, two.nlink, one.ino]).to.deep.equal([2, 2, two.ino]);
    expect(one.data.toString()).to.equal('linked data');
    expect(two.data.toString()).to.equal('linked data');
    expect(one.mtime).to.equal(Math.floor(fs.statSync(path.join(t, 'one')).mtimeMs / 1000));
  });
  it('reads busybox cpio -o -H newc (what the guest snapshots use; no 512-byte padding)', async () => {
    const busybox = requireTool('busybox', 'to cross-check busybox cpio output');
    const d = tmpDir();
    fs.mkdirSync(path.join(d, 'sub'));
    fs.writeFileSync(path.join(d, 'a'), 'hello');
    fs.linkSync(path.join(d, 'a'), path.join(d, 'sub/b'));
    fs.writeFileSync(path.join(d, 'café'), 'é\n');
    const list = execFileSync('find', ['.'], { cwd: d });
    const archive = execFileSync(busybox, ['cpio', '-o', '-H', 'newc'], { cwd: d, input: list, stdio: ['pipe', 'pipe', 'ignore'] });
    const back = await readNewc(archive);
    const data = Object.fromEntries(back.filter((e) => e.type === 'file').map((e) => [e.path, e.data.toString()]));
    expect(data).to.deep.equal({ a: 'hello', 'sub/b': 'hello', café: 'é\n' });
  });
});

describe('cpio: concatenated segments', () => {
  const seg = (name: string, compress: 'none' | 'gzip') =>
    packNewc([{ type: 'file', path: `${name}/f`, data: Buffer.from(name) }], { compress });

  it('reads plain + gzip + plain, with kernel-style zero padding between them, as the union', async () => {
    const whole = Buffer.concat([
      await seg('p1', 'none'),
      await seg('g1', 'gzip'),
      Buffer.alloc(8),
      await seg('g2', 'gzip'),
      await seg('p2', 'none'),
      Buffer.alloc(512),
    ]);
    const back = await readNewc(whole);
    expect(back.map((e) => e.path)).to.deep.equal(['p1', 'p1/f', 'g1', 'g1/f', 'g2', 'g2/f', 'p2', 'p2/f']);
    expect(back.find((e) => e.path === 'g2/f')!.data.toString()).to.equal('g2');
  });

  it('rejects a plain segment that does not start 4-byte aligned', async () => {
    const whole = Buffer.concat([await seg('a', 'none'), Buffer.alloc(2), await seg('b', 'none')]);
    await expectReject(readNewc(whole), Error, 'offset 514 does not start on a 4-byte boundary');
  });

  it('gives each hard-link group its data within its own segment', async () => {
    const a = await packNewc([
      { type: 'file', path: 'x', data: Buffer.from('data') },
      { type: 'hardlink', path: 'y', target: 'x' },
    ]);
    const back = await readNewc(Buffer.concat([a, a]));
    expect(back.map((e) => e.data.toString())).to.deep.equal(['data', 'data', 'data', 'data']);
  });
});

describe('cpio: damaged archives', () => {
  let good: Buffer;
  before(async () => {
    good = await packNewc([
      { type: 'file', path: 'first', data: Buffer.from('hello') },
      { type: 'file', path: 'second', data: Buffer.alloc(100, 1) },
    ]);
  });
  it('a truncated archive names the entry', async () => {
    const hs = rawHeaders(good);
    const second = hs.find((h) => h.name.toString() === 'second')!;
    await expectReject(readNewc(good.subarray(0, second.offset + 120 + 50)), Error, 'truncated entry "second"');
    await expectReject(readNewc(good.subarray(0, second.offset + 50)), Error, 'truncated newc header at offset');
    const third = hs[hs.length - 1].offset;
    await expectReject(readNewc(good.subarray(0, third)), Error, `ends at offset ${third} after entry "second" without a TRAILER!!!`);
  });
  it('bad magic names the offset', async () => {
    const hs = rawHeaders(good);
    const bad = Buffer.from(good);
    bad.write('070707', hs[1].offset, 'latin1');
    await expectReject(readNewc(bad), Error, `bad magic at offset ${hs[1].offset}`);
    await expectReject(readNewc(Buffer.from('hello world, not cpio')), Error, 'bad magic at offset 0');
  });
  it('a truncated gzip segment is reported as such', async () => {
    const gz = await packNewc([{ type: 'file', path: 'f', data: Buffer.alloc(10000, 3) }], { compress: 'gzip' });
    await expectReject(readNewc(gz.subarray(0, gz.length - 10)), Error, 'gzip segment at offset 0 is damaged or truncated');
  });
  it('an all-zero buffer is not an archive', async () => {
    await expectReject(readNewc(Buffer.alloc(512)), Error, 'No newc archive');
  });
});

describe('cpio: the kernel unpacks our archives @boot', function () {
  this.timeout(180_000);
  // A kernel with gzip initramfs support and 8250/ttyS0 built in; override with ROOTPROBE_TEST_KERNEL.
  const kernel = TEST_KERNEL;

  it('unpacks plain + gzip + plain segments: names, modes, links, devices, fifos', async () => {
    const qemu = requireTool('qemu-system-x86_64', 'to boot the test kernel');
    const busybox = fs.readFileSync(requireTool('busybox', 'as the guest shell'));
    const init = [
      '#!/bin/busybox sh',
      'B=/bin/busybox',
      'echo "@@BEGIN"',
      'for p in /bin/busybox /bin/sh /bin/ls /data/café /long/* /long/*/* /data/h1 /data/h2 /data/h3 /dev/console /dev/vda /run/fifo /gz/z /late/l /etc; do',
      '  $B stat -c "@@S %n|%i|%h|%F|%a|%t,%T|%s|%Y" "$p"',
      'done',
      'echo "@@C $($B cat /data/h1)|$($B cat /data/h3)|$($B cat /data/café)|$($B cat /gz/z)|$($B cat /late/l)|$($B readlink /bin/ls)"',
      'echo "@@END"',
      '$B reboot -f',
    ].join('\n');
    const longDir = `long/${'d'.repeat(150)}`;
    const first = await packNewc(
      [
        { type: 'file', path: 'init', data: Buffer.from(init + '\n'), mode: 0o755 },
        { type: 'file', path: 'bin/busybox', data: busybox, mode: 0o755 },
        { type: 'hardlink', path: 'bin/sh', target: 'bin/busybox' },
        { type: 'symlink', path: 'bin/ls', target: 'busybox' },
        { type: 'char', path: 'dev/console', major: 5, minor: 1 },
        { type: 'block', path: 'dev/vda', major: 254, minor: 3, mode: 0o660 },
        { type: 'fifo', path: 'run/fifo', mode: 0o620 },
        { type: 'file', path: 'data/café', data: Buffer.from('crème') },
        { type: 'file', path: 'data/h2', data: Buffer.from('shared'), mode: 0o640 },
        { type: 'hardlink', path: 'data/h1', target: 'data/h2' },
        { type: 'hardlink', path: 'data/h3', target: 'data/h2' },
        { type: 'file', path: `${longDir}/${'f'.repeat(150)}`, data: Buffer.from('abc') },
        { type: 'dir', path: 'etc', mode: 0o700 },
      ],
      { mtime: 1_234_567_890 },
    );
    const initrd = Buffer.concat([
      first,
      await packNewc([{ type: 'file', path: 'gz/z', data: Buffer.from('zipped') }], { compress: 'gzip' }),
      await packNewc([{ type: 'file', path: 'late/l', data: Buffer.from('x') }]),
    ]);
    const dir = tmpDir();
    fs.writeFileSync(path.join(dir, 'initrd'), initrd);
    const { spawn } = await import('node:child_process');
    const child = spawn(
      qemu,
      [
        '-nodefaults',
        '-no-reboot',
        '-display',
        'none',
        '-M',
        'pc',
        '-accel',
        'tcg',
        '-cpu',
        'max',
        '-m',
        '256',
        '-kernel',
        kernel,
        '-initrd',
        path.join(dir, 'initrd'),
        '-append',
        'console=ttyS0 panic=-1 quiet',
        '-chardev',
        'stdio,id=c0,signal=off',
        '-serial',
        'chardev:c0',
        '-nic',
        'none',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    // Collect bytes, decode once: a chunk boundary may split a UTF-8 character ("café").
    const chunks: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => chunks.push(d));
    child.stderr.on('data', (d: Buffer) => chunks.push(d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    try {
      await new Promise((resolve) => child.on('exit', resolve));
    } finally {
      clearTimeout(timer);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    const out = Buffer.concat(chunks).toString('utf8');
    expect(out, out).to.include('@@END');
    const stat = new Map([...out.matchAll(/^@@S ([^|]+)\|(.*?)\r?$/gm)].map((m) => [m[1], m[2].split('|')] as [string, string[]]));
    // fields: inode | links | type | mode | major,minor (hex) | size | mtime
    const s = (p: string) => stat.get(p) ?? expect.fail(`no stat line for ${p} in:\n${out}`);
    expect(s('/data/h1')[0]).to.equal(s('/data/h2')[0]);
    expect(s('/data/h3')[0]).to.equal(s('/data/h2')[0]);
    expect(s('/data/h2').slice(1, 4)).to.deep.equal(['3', 'regular file', '640']);
    expect(s('/data/h2')[5]).to.equal('6');
    expect(s('/bin/sh')[0]).to.equal(s('/bin/busybox')[0]);
    expect(s('/bin/sh').slice(1, 3)).to.deep.equal(['2', 'regular file']);
    expect(s('/bin/ls')[2]).to.equal('symbolic link');
    expect(s('/dev/console').slice(2, 5)).to.deep.equal(['character special file', '600', '5,1']);
    expect(s('/dev/vda').slice(2, 5)).to.deep.equal(['block special file', '660', 'fe,3']);
    expect(s('/run/fifo').slice(2, 4)).to.deep.equal(['fifo', '620']);
    expect(s('/etc').slice(2, 4)).to.deep.equal(['directory', '700']);
    expect(s('/data/café')[6]).to.equal('1234567890');
    expect(s(`/${longDir}/${'f'.repeat(150)}`)[5]).to.equal('3');
    expect(s('/gz/z')[5]).to.equal('6');
    expect(s('/late/l')[5]).to.equal('1');
    expect(out).to.match(/@@C shared\|shared\|crème\|zipped\|x\|busybox\r?\n/);
  });
});

describe('cpio: host files are streamed, not read whole', () => {
  it('writes a 128 MiB host file correctly with far less than 128 MiB of extra memory', async function () {
    this.timeout(120_000);
    const d = tmpDir();
    const big = path.join(d, 'big');
    const small = path.join(d, 'small');
    const out = path.join(d, 'out.cpio');
    const size = 128 * 2 ** 20 + 3;
    const want = createHash('sha256');
    const fd = fs.openSync(big, 'w');
    const block = Buffer.alloc(2 ** 20);
    for (let off = 0; off < size; off += block.length) {
      const piece = pattern(Math.min(block.length, size - off), off >>> 20);
      fs.writeSync(fd, piece);
      want.update(piece);
    }
    fs.closeSync(fd);
    fs.writeFileSync(small, 'small\n');
    want.update('small\n');

    // A fresh process, so that its peak RSS (getrusage ru_maxrss) is this write's alone: the
    // tree's entries() and writeNewcFile as buildCpioSegment uses them, after a warm-up write.
    const child = `
      const [treeUrl, cpioUrl, big, small, out] = process.argv.slice(1);
      const { ImageTree } = await import(treeUrl);
      const { writeNewcFile } = await import(cpioUrl);
      await writeNewcFile(await new ImageTree('warm').copy('/s', small).file('/f', 'f').entries(), out);
      const before = process.resourceUsage().maxRSS;
      await writeNewcFile(await new ImageTree('big').copy('/big', big).copy('/s', small).entries(), out);
      process.stdout.write(JSON.stringify({ before, after: process.resourceUsage().maxRSS }));
    `;
    const url = (p: string): string => pathToFileURL(path.join(import.meta.dirname, '..', p)).href;
    const res = JSON.parse(
      execFileSync(
        process.execPath,
        [
          '--import',
          'tsx',
          '--input-type=module',
          '-e',
          child,
          url('harness/image/tree.ts'),
          url('harness/cpio/index.ts'),
          big,
          small,
          out,
        ],
        {
          encoding: 'utf8',
        },
      ),
    ) as { before: number; after: number };
    const grewMiB = (res.after - res.before) / 1024; // maxRSS is in KiB
    expect(grewMiB, `peak RSS grew by ${grewMiB.toFixed(1)} MiB writing a 128 MiB file`).to.be.below(32);

    // What GNU cpio reads out of it: the two files' bytes, in archive order, and no complaint.
    const header = (name: string): number => (110 + name.length + 1 + 3) & ~3;
    expect(fs.statSync(out).size).to.equal(
      Math.ceil((header('big') + ((size + 3) & ~3) + header('s') + 8 + header('TRAILER!!!')) / 512) * 512,
    );
    const got = createHash('sha256');
    const input = fs.openSync(out, 'r');
    let stderr = '';
    let code: unknown;
    try {
      const p = spawn(cpio, ['-i', '--to-stdout', '--quiet'], { stdio: [input, 'pipe', 'pipe'] });
      p.stdout!.on('data', (c: Buffer) => got.update(c));
      p.stderr!.on('data', (c: Buffer) => (stderr += c));
      code = await new Promise((resolve, reject) => p.on('error', reject).on('close', resolve));
    } finally {
      fs.closeSync(input);
    }
    expect([code, stderr]).to.deep.equal([0, '']);
    expect(got.digest('hex')).to.equal(want.digest('hex'));
  });

  it('headers, names and bodies across a chunk boundary come out right, from host files and from memory', async () => {
    const d = tmpDir();
    const longB = `b${'n'.repeat(300)}`;
    for (const before of [0, 4, 48, 108, 112, 116, 300, 420]) {
      // 'a' (header 112 bytes) ends `before` bytes short of the first chunk boundary, so the
      // boundary falls in the padding, the header or the long name of the next entry, or just after.
      const a = pattern(CHUNK - 112 - before, before);
      const b = pattern(CHUNK + 13, before + 1);
      const c = Buffer.from('c\n');
      const files: Array<[string, Buffer]> = [
        ['a', a],
        [longB, b],
        ['c', c],
      ];
      files.forEach(([, data], i) => fs.writeFileSync(path.join(d, `h${i}`), data));
      const fromHost = await packNewc(files.map(([name], i) => ({ type: 'file', path: name, hostPath: path.join(d, `h${i}`) })));
      const fromMemory = await packNewc(files.map(([name, data]) => ({ type: 'file', path: name, data })));
      expect(fromHost.equals(fromMemory), `host = memory, ${before} bytes before the boundary`).to.equal(true);
      expect(rawHeaders(fromHost).map((h) => h.name.toString())).to.deep.equal(['a', longB, 'c', 'TRAILER!!!']);
      expect(
        execFileSync(cpio, ['-i', '--to-stdout', '--quiet'], { input: fromHost, maxBuffer: 8 * CHUNK }).equals(Buffer.concat([a, b, c])),
        `GNU cpio, ${before}`,
      ).to.equal(true);
    }
  });

  it('reads a host file that reports size 0 (as /proc files do) whole', async () => {
    const back = await readNewc(await packNewc([{ type: 'file', path: 'version', hostPath: '/proc/version' }]));
    expect(back[0].data.toString()).to.equal(fs.readFileSync('/proc/version', 'utf8')).and.not.equal('');
  });
});

describe('cpio: edge cases', () => {
  it('an empty entry list gives a lone trailer that GNU cpio and readNewc accept', async () => {
    const empty = await packNewc([]);
    expect(empty.length).to.equal(512);
    expect(rawHeaders(empty).map((h) => h.name.toString())).to.deep.equal(['TRAILER!!!']);
    expect(gnu(['-it', '--quiet'], empty)).to.equal('');
    expect(await readNewc(empty)).to.deep.equal([]);
  });

  it('sorts by path components in byte order, parents before children', async () => {
    const names = ['a-b', 'a/b', 'a.c', 'B', 'a/Z/y', 'é', 'z'];
    const back = await readNewc(await packNewc(names.map((p) => ({ type: 'file', path: `${p}x`, data: Buffer.alloc(0) }))));
    // 'a/Zx/y' is not a child of 'ax': each name gets an 'x' so a/b's parent is 'a' (synthesised).
    expect(back.map((e) => e.path)).to.deep.equal(['Bx', 'a', 'a/Z', 'a/Z/yx', 'a/bx', 'a-bx', 'a.cx', 'zx', 'éx']);
  });
});
