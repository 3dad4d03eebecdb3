import { expect } from 'chai';
import { usePrivateCache } from './support/cache.ts';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, promises as fs, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import * as tar from 'tar-stream';
import { readNewc } from '../harness/cpio/index.ts';
import { UsageError } from '../harness/errors.ts';
import { buildExt4 } from '../harness/image/disk.ts';
import { buildCpioSegment } from '../harness/image/initramfs.ts';
import { importTar, tarEntryPath } from '../harness/image/tar.ts';
import { ImageTree, type TreeEntry } from '../harness/image/tree.ts';

// The cache is the suite's own only while these tests run: root-level hooks would give every
// other test file of the run this temporary cache too (and make CI build everything anew).
describe('tar import (with a cache of its own)', () => {
  let work: string;
  usePrivateCache('rootprobe-tar-cache-');

  before(() => {
    work = mkdtempSync(path.join(os.tmpdir(), 'rootprobe-tar-work-'));
  });

  after(() => {
    rmSync(work, { recursive: true, force: true });
  });

  /** A tar archive made by tar-stream's packer (for what GNU tar cannot make without root). */
  async function packed(entries: Array<Partial<tar.Header> & { name: string; data?: string }>): Promise<Buffer> {
    const pack = tar.pack();
    const chunks: Buffer[] = [];
    const collected = (async () => {
      for await (const c of pack) chunks.push(c as Buffer);
    })();
    for (const { data, ...h } of entries) {
      await new Promise<void>((resolve, reject) => pack.entry(h, data ?? '', (e) => (e ? reject(e) : resolve())));
    }
    pack.finalize();
    await collected;
    return Buffer.concat(chunks);
  }

  async function rejection(p: Promise<unknown>): Promise<Error> {
    try {
      await p;
    } catch (e) {
      return e as Error;
    }
    throw new Error('expected a rejection');
  }

  function byPath(list: TreeEntry[]): Map<string, TreeEntry> {
    return new Map(list.map((e) => [e.path, e]));
  }

  /** A folder made on the host, archived by GNU tar with numeric owners set. */
  async function gnuTarFixture(): Promise<string> {
    const src = path.join(work, 'src');
    await fs.rm(src, { recursive: true, force: true });
    await fs.mkdir(path.join(src, 'usr/bin'), { recursive: true });
    await fs.mkdir(path.join(src, 'etc'), { recursive: true });
    await fs.mkdir(path.join(src, 'home/user'), { recursive: true });
    await fs.writeFile(path.join(src, 'usr/bin/tool'), '#!/bin/sh\necho tool\n', { mode: 0o755 });
    await fs.chmod(path.join(src, 'usr/bin/tool'), 0o4755);
    await fs.writeFile(path.join(src, 'etc/hostname'), 'rootprobe\n');
    await fs.link(path.join(src, 'usr/bin/tool'), path.join(src, 'usr/bin/tool2'));
    await fs.symlink('usr/bin', path.join(src, 'bin'));
    await fs.symlink('/etc/hostname', path.join(src, 'etc/name-abs'));
    await fs.writeFile(path.join(src, 'home/user/notes'), 'x'.repeat(100000));
    const out = path.join(work, 'gnu.tar');
    execFileSync('tar', ['--numeric-owner', '--owner=0', '--group=0', '-C', src, '-cf', out, '.']);
    // home/user owned by 1000:1000 in the archive (GNU tar can set owners without root).
    const out2 = path.join(work, 'gnu-home.tar');
    execFileSync('tar', ['--numeric-owner', '--owner=1000', '--group=1000', '-C', src, '-cf', out2, 'home/user']);
    execFileSync('tar', ['-A', '-f', out, out2]);
    return out;
  }

  describe('tar import (harness/image/tar.ts)', () => {
    it('maps entry names into the tree and rejects names with ..', () => {
      expect(tarEntryPath('./etc/passwd', 'a.tar')).to.equal('/etc/passwd');
      expect(tarEntryPath('/etc/passwd', 'a.tar')).to.equal('/etc/passwd');
      expect(tarEntryPath('./', 'a.tar')).to.equal('/');
      expect(tarEntryPath('etc//x/', 'a.tar', '/root')).to.equal('/root/etc/x');
      expect(() => tarEntryPath('etc/../../x', 'a.tar')).to.throw(UsageError, /"etc\/..\/..\/x" escapes the root/);
    });

    it('reads a GNU tar archive: modes (setuid), numeric owners, symlinks, hard links, big files', async () => {
      const file = await gnuTarFixture();
      const t = new ImageTree('gnu');
      const sum = await importTar(t, file);
      expect(sum.hardlinks).to.equal(1);
      expect(sum.symlinks).to.equal(2);
      const m = byPath(await t.list());
      // GNU tar stores the first name it meets as the file, the other as a link to it.
      const [a, b] = ['/usr/bin/tool', '/usr/bin/tool2'].map((p) => m.get(p)!);
      const [reg, link] = a.type === 'file' ? [a, b] : [b, a];
      expect(reg).to.include({ type: 'file', mode: 0o4755, uid: 0, gid: 0 });
      expect(link).to.deep.include({ type: 'hardlink', target: reg === a ? '/usr/bin/tool' : '/usr/bin/tool2' });
      expect(m.get('/bin')).to.deep.include({ type: 'symlink', target: 'usr/bin' });
      expect(m.get('/etc/name-abs')).to.deep.include({ type: 'symlink', target: '/etc/hostname' });
      expect(m.get('/home/user')).to.include({ type: 'dir', uid: 1000, gid: 1000 });
      expect(m.get('/home/user/notes')).to.include({ type: 'file', uid: 1000, gid: 1000 });
    });

    it('reads gzip, xz and zstd compressed archives (by magic, not by name)', async () => {
      const file = await gnuTarFixture();
      for (const [tool, args] of [
        ['gzip', ['-c']],
        ['xz', ['-c']],
        ['zstd', ['-q', '-c']],
      ] as const) {
        const out = path.join(work, `c.${tool}`);
        execFileSync('sh', ['-c', `${tool} ${args.join(' ')} "$1" > "$2"`, 'sh', file, out]);
        const t = new ImageTree(tool);
        const sum = await importTar(t, out);
        expect(sum.files, tool).to.equal(4);
        const m = byPath(await t.list());
        expect(m.get('/etc/hostname'), tool).to.include({ type: 'file' });
      }
    });

    it('keeps device nodes and fifos from a crafted archive, into a cpio segment and an ext4 image, without root', async () => {
      const buf = await packed([
        { name: 'dev/', type: 'directory', mode: 0o755 },
        { name: 'dev/console', type: 'character-device', devmajor: 5, devminor: 1, mode: 0o600 },
        { name: 'dev/vda', type: 'block-device', devmajor: 254, devminor: 0, mode: 0o660, uid: 0, gid: 6 },
        { name: 'run/initctl', type: 'fifo', mode: 0o600 },
        { name: 'etc/shadow', type: 'file', mode: 0o640, uid: 0, gid: 42, data: 'root:*:1::::::\n' },
      ]);
      const t = new ImageTree('crafted');
      await importTar(t, Readable.from([buf]));
      const m = byPath(await t.list());
      expect(m.get('/dev/console')).to.include({ type: 'char', major: 5, minor: 1, mode: 0o600 });
      expect(m.get('/dev/vda')).to.include({ type: 'block', major: 254, minor: 0, gid: 6 });
      expect(m.get('/run/initctl')).to.include({ type: 'fifo' });

      const seg = await buildCpioSegment(t);
      const entries = new Map((await readNewc(await fs.readFile(seg))).map((e) => [e.path, e]));
      expect(entries.get('dev/vda')).to.include({ type: 'block', major: 254, minor: 0, gid: 6, mode: 0o660 });
      expect(entries.get('etc/shadow')).to.include({ gid: 42, mode: 0o640 });

      const img = await buildExt4(t, { sizeMiB: 8 });
      const stat = execFileSync('debugfs', ['-R', 'stat /dev/vda', img], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      expect(stat).to.match(/Type: block special/);
      expect(stat).to.match(/Group:\s+6/);
      expect(stat).to.match(/Device major\/minor number: 254:0/);
    });

    it('rejects entries that escape the root, naming the entry', async () => {
      const dotdot = await packed([{ name: 'etc/../../evil', type: 'file', data: 'x' }]);
      const e1 = await rejection(importTar(new ImageTree('a'), Readable.from([dotdot]), { name: 'dotdot.tar' }));
      expect(e1).to.be.instanceOf(UsageError);
      expect(e1.message).to.match(/dotdot\.tar: entry "etc\/..\/..\/evil" escapes the root/);

      const absLink = await packed([
        { name: 'etc/passwd', type: 'file', data: 'x' },
        { name: 'etc/hosts', type: 'link', linkname: '/etc/passwd' },
      ]);
      const e2 = await rejection(importTar(new ImageTree('b'), Readable.from([absLink]), { name: 'abs.tar' }));
      expect(e2.message).to.match(/hard link "etc\/hosts" -> "\/etc\/passwd" escapes the root/);

      const upLink = await packed([{ name: 'x', type: 'link', linkname: '../etc/shadow' }]);
      const e3 = await rejection(importTar(new ImageTree('c'), Readable.from([upLink]), { name: 'up.tar' }));
      expect(e3.message).to.match(/hard link "x" -> "..\/etc\/shadow" escapes the root/);

      const dangling = await packed([{ name: 'x', type: 'link', linkname: 'nothere' }]);
      const e4 = await rejection(importTar(new ImageTree('d'), Readable.from([dangling]), { name: 'd.tar' }));
      expect(e4.message).to.match(/not an earlier entry/);

      // A symlinked folder is never followed: an entry below it cannot land outside.
      const through = await packed([
        { name: 'lnk', type: 'symlink', linkname: '/etc' },
        { name: 'lnk/passwd', type: 'file', data: 'x' },
      ]);
      const t = new ImageTree('through');
      await importTar(t, Readable.from([through]));
      const e5 = await rejection(t.list());
      expect(e5.message).to.match(/\/lnk is a symlink, not a folder/);
    });

    it('rejects what is not a tar archive', async () => {
      const e = await rejection(
        importTar(new ImageTree('x'), Readable.from([Buffer.from('hello, this is not tar'.repeat(40))]), { name: 'junk' }),
      );
      expect(e).to.be.instanceOf(UsageError);
      expect(e.message).to.match(/junk/);
      const e2 = await rejection(importTar(new ImageTree('x'), path.join(work, 'missing.tar')));
      expect(e2.message).to.match(/cannot read the tar archive/);
    });
  });

  describe('tar import: sparse files and big entries (GNU tar --sparse, --format=pax/gnu)', function () {
    this.timeout(180_000);
    const FIX = path.join(path.dirname(new URL(import.meta.url).pathname), 'fixtures/tar/import-rss.ts');
    const GiB = 1024 ** 3;
    // Data at three places of a 3 GiB file; the rest holes.
    const marks: Array<[number, string]> = [
      [0, 'head of the file\n'],
      [1 * GiB + 12345, 'in the middle, at an odd offset\n'],
      [3 * GiB - 4096, 'x'.repeat(4000) + 'the tail\n'],
    ];
    let src: string;

    before(async () => {
      src = path.join(work, 'sparse-src');
      await fs.mkdir(src, { recursive: true });
      const fh = await fs.open(path.join(src, 'big.img'), 'w');
      for (const [off, text] of marks) await fh.write(Buffer.from(text), 0, Buffer.byteLength(text), off);
      await fh.truncate(3 * GiB);
      await fh.close();
      await fs.writeFile(path.join(src, 'small'), 'small file\n');
    });

    function importInChild(arg: string): {
      summary: { files: number; bytes: number };
      maxRssMiB: number;
      files: Array<{ path: string; hostPath?: string; size?: number; blocks?: number }>;
    } {
      const out = execFileSync(process.execPath, ['--import', 'tsx', FIX, arg], {
        encoding: 'utf8',
        maxBuffer: 1 << 20,
        env: { ...process.env, ROOTPROBE_KEEP_TMP: '1' },
        stdio: ['ignore', 'pipe', 'ignore'],
      });
      return JSON.parse(out.trim().split('\n').pop()!);
    }

    async function checkSparseImport(archive: string): Promise<void> {
      const r = importInChild(archive);
      const big = r.files.find((f) => f.path === '/big.img')!;
      expect(big, JSON.stringify(r.files)).to.not.equal(undefined);
      expect(r.files.map((f) => f.path)).to.not.include.members(
        r.files
          .filter((f) => /GNUSparseFile/.test(f.path))
          .map((f) => f.path)
          .concat(['/GNUSparseFile.0/big.img']),
      );
      expect(big.size).to.equal(3 * GiB);
      // Kept sparse: a few blocks, not 3 GiB.
      expect(big.blocks! * 512).to.be.below(1 << 20);
      const fh = await fs.open(big.hostPath!, 'r');
      try {
        for (const [off, text] of marks) {
          const b = Buffer.alloc(Buffer.byteLength(text));
          await fh.read(b, 0, b.length, off);
          expect(b.toString(), `at ${off}`).to.equal(text);
        }
        const gap = Buffer.alloc(4096);
        await fh.read(gap, 0, gap.length, 2 * GiB);
        expect(gap.every((x) => x === 0)).to.equal(true);
      } finally {
        await fh.close();
        await fs.rm(path.dirname(big.hostPath!), { recursive: true, force: true });
      }
      expect(r.maxRssMiB).to.be.below(400);
      expect(r.files.find((f) => f.path === '/small')).to.not.equal(undefined);
    }

    for (const [title, args] of [
      ['PAX sparse 1.0 (tar --sparse --format=pax)', ['--sparse', '--format=pax']],
      ['PAX sparse 0.1 (--sparse-version=0.1)', ['--sparse', '--format=pax', '--sparse-version=0.1']],
      ['PAX sparse 0.0 (--sparse-version=0.0)', ['--sparse', '--format=pax', '--sparse-version=0.0']],
      ['old GNU sparse, tar type S (tar --sparse --format=gnu)', ['--sparse', '--format=gnu']],
    ] as const) {
      it(`${title}: imported sparse, 3 GiB real size, the data where it was`, async () => {
        const archive = path.join(work, `sparse-${args.join('')}.tar`);
        execFileSync('tar', [...args, '-C', src, '-cf', archive, 'big.img', 'small']);
        expect((await fs.stat(archive)).size).to.be.below(1 << 20);
        await checkSparseImport(archive);
      });
    }

    it('a 2.5 GiB entry stored whole (no sparse map) is streamed, not buffered: little memory, a sparse spill', async () => {
      const r = importInChild(`zeros:${2.5 * GiB}`);
      const big = r.files.find((f) => f.path === '/big.img')!;
      expect(big.size).to.equal(2.5 * GiB);
      expect(big.blocks! * 512).to.be.below(1 << 20);
      expect(r.maxRssMiB).to.be.below(400);
      await fs.rm(path.dirname(big.hostPath!), { recursive: true, force: true });
    });

    it('a sparse file reaches an ext4 image with its holes and its data', async () => {
      const s2 = path.join(work, 'sparse-small');
      await fs.mkdir(s2, { recursive: true });
      const fh = await fs.open(path.join(s2, 'disk.img'), 'w');
      await fh.write(Buffer.from('begin\n'), 0, 6, 0);
      await fh.write(Buffer.from('end\n'), 0, 4, 40 * 1024 * 1024 - 4);
      await fh.close();
      const archive = path.join(work, 'sparse-small.tar');
      execFileSync('tar', ['--sparse', '--format=pax', '-C', s2, '-cf', archive, 'disk.img']);
      const t = new ImageTree('sparse-ext4');
      await importTar(t, archive);
      const img = await buildExt4(t, { sizeMiB: 16 });
      expect((await fs.stat(img)).size).to.equal(16 * 1024 * 1024);
      const stat = execFileSync('debugfs', ['-R', 'stat /disk.img', img], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      expect(stat).to.match(/Size: 41943040/);
      const dumped = path.join(work, 'dumped.img');
      execFileSync('debugfs', ['-R', `dump /disk.img ${dumped}`, img], { stdio: 'ignore' });
      const d = await fs.readFile(dumped);
      expect(d.subarray(0, 6).toString()).to.equal('begin\n');
      expect(d.subarray(d.length - 4).toString()).to.equal('end\n');
    });

    it('refuses another tar type by name and kind: a GNU volume label', async () => {
      const f = path.join(work, 'label-src');
      await fs.mkdir(f, { recursive: true });
      await fs.writeFile(path.join(f, 'a'), 'a');
      const archive = path.join(work, 'label.tar');
      execFileSync('tar', ['--format=gnu', '-V', 'MYLABEL', '-C', f, '-cf', archive, 'a']);
      const e = await rejection(importTar(new ImageTree('label'), archive, { name: 'label.tar' }));
      expect(e).to.be.instanceOf(UsageError);
      expect(e.message).to.match(/label\.tar: entry "MYLABEL" has tar type 'V' \(a GNU volume label\)/);
    });
  });
});
