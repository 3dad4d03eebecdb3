import { expect } from 'chai';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, promises as fs, readFileSync, realpathSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readNewc, type CpioReadEntry } from '../harness/cpio/index.ts';
import { DefinitionError, SetupError, UsageError } from '../harness/errors.ts';
import { buildExt4, copyForRun, fsck, imageInfo, rawImage } from '../harness/image/disk.ts';
import { readElf } from '../harness/image/elf.ts';
import { buildCpioSegment, concatSegments } from '../harness/image/initramfs.ts';
import { ImageTree, MODULES_LOAD_FILE, modulesDep } from '../harness/image/tree.ts';
import { baseInitramfs, baseRootDisk } from '../images/base.ts';

import { testKernel, TEST_KERNEL_ROOT } from './support/kernel.ts';

const KROOT = TEST_KERNEL_ROOT;
const KREL = testKernel.release;
const KERNEL = testKernel;

async function rejects(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a rejection');
}

function throws(fn: () => unknown): Error {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected an exception');
}

function byPath(es: CpioReadEntry[]): Map<string, CpioReadEntry> {
  return new Map(es.map((e) => [e.path, e]));
}

function debugfs(img: string, req: string): string {
  return execFileSync('debugfs', ['-R', req, img], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

// The cache is the suite's own only while these tests run: root-level hooks would give every
// other test file of the run this temporary cache too (and make CI build everything anew).
describe('image building (with a cache of its own)', () => {
  let cacheDir: string;
  let work: string;
  let savedCache: string | undefined;

  before(() => {
    savedCache = process.env.ROOTPROBE_CACHE;
    cacheDir = mkdtempSync(path.join(os.tmpdir(), 'rootprobe-image-cache-'));
    work = mkdtempSync(path.join(os.tmpdir(), 'rootprobe-image-work-'));
    process.env.ROOTPROBE_CACHE = cacheDir;
  });

  after(() => {
    if (savedCache === undefined) delete process.env.ROOTPROBE_CACHE;
    else process.env.ROOTPROBE_CACHE = savedCache;
    rmSync(cacheDir, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
  });

  describe('ImageTree', () => {
    it('normalises paths and makes parents', async () => {
      const t = new ImageTree('norm').file('//etc/./x//y', 'hi');
      const list = await t.list();
      expect(list.map((e) => `${e.type} ${e.path}`)).to.deep.equal(['dir /etc', 'dir /etc/x', 'file /etc/x/y']);
      expect(await t.has('/etc/x/y/')).to.equal(true);
      expect(await t.has('/etc/y')).to.equal(false);
    });

    it('rejects .. and relative paths at once, naming the path and the image', () => {
      const e = throws(() => new ImageTree('evil').file('/etc/../../x', 'a'));
      expect(e).to.be.instanceOf(UsageError);
      expect(e.message).to.include('/etc/../../x').and.include('evil');
      expect(throws(() => new ImageTree('rel').dir('etc'))).to.be.instanceOf(UsageError);
      expect(throws(() => new ImageTree('h').hardlink('/a', '/b/../../c'))).to.be.instanceOf(UsageError);
    });

    it('lets a later call win and never lets busybox links replace anything', async () => {
      const t = new ImageTree('order').file('/bin/sh', 'mine', 0o755).busybox().file('/sbin/init', '#!/bin/sh\n', 0o755);
      const m = new Map((await t.list()).map((e) => [e.path, e]));
      expect(m.get('/bin/sh')?.type).to.equal('file');
      expect(m.get('/sbin/init')?.type).to.equal('file');
      expect(m.get('/bin/mount')).to.deep.include({ type: 'symlink', target: '/bin/busybox' });
      const t2 = new ImageTree('later').busybox().dir('/bin', 0o711);
      expect((await t2.list()).find((e) => e.path === '/bin')).to.deep.include({ type: 'dir', mode: 0o711 });
    });

    it('refuses to replace a folder that has content, and a hard link to nothing', async () => {
      const e = await rejects(new ImageTree('clash').file('/a/b', 'x').file('/a', 'y').validate());
      expect(e).to.be.instanceOf(UsageError);
      expect(e.message).to.include('/a').and.include('/a/b');
      const h = await rejects(new ImageTree('hl').hardlink('/x', '/nothing').validate());
      expect(h).to.be.instanceOf(UsageError);
      expect(h.message).to.include('/nothing');
    });

    it("says so at once when a script's text is given where its host path goes", () => {
      const t = new ImageTree('t');
      expect(() => t.script('/init', '#!/bin/sh\nprobe one\n')).to.throw(
        UsageError,
        /\/init: copy\(\) and script\(\) take the path of a file on this machine, and this is a file's text \("#!\/bin\/sh\\nprobe one\\n"…\); give the text with file\("\/init", text, 0o755\)/,
      );
      expect(() => t.copy('/etc/x', 'line one\nline two')).to.throw(UsageError, /copy\(\) and script\(\)/);
      expect(() => t.script('/init', 'scenarios/x/init.sh')).to.not.throw();
    });

    it('reports a missing host file from validate(), before any build', async () => {
      const t = new ImageTree('missing').copy('/etc/thing', '/nonexistent/rootprobe-file');
      const e = await rejects(t.validate());
      expect(e).to.be.instanceOf(SetupError);
      expect(e.message).to.include('/nonexistent/rootprobe-file').and.include('/etc/thing');
      const before = await fs.readdir(path.join(cacheDir, 'images')).catch(() => [] as string[]);
      expect(await rejects(buildCpioSegment(t))).to.be.instanceOf(SetupError);
      const after = await fs.readdir(path.join(cacheDir, 'images')).catch(() => [] as string[]);
      expect(after).to.deep.equal(before);
    });

    it('fingerprints content, including host file bytes', async () => {
      const f = path.join(work, 'fp.txt');
      await fs.writeFile(f, 'one');
      const t = new ImageTree('fp').copy('/f', f);
      const a = await t.fingerprint();
      expect(await new ImageTree('fp2').copy('/f', f).fingerprint()).to.equal(a);
      await fs.writeFile(f, 'two');
      expect(await t.fingerprint()).to.not.equal(a);
      expect(await new ImageTree('fp3').copy('/f', f, 0o600).fingerprint()).to.not.equal(await t.fingerprint());
    });
  });

  describe('busybox and the base images', () => {
    it('packs busybox with a link for every applet', async () => {
      const seg = await buildCpioSegment(baseInitramfs());
      const m = byPath(await readNewc(await fs.readFile(seg)));
      const bb = m.get('bin/busybox')!;
      expect(bb.type).to.equal('file');
      expect(bb.mode).to.equal(0o755);
      expect(bb.data.subarray(0, 4).toString('latin1')).to.equal('\x7fELF');
      const applets = execFileSync('busybox', ['--list-full'], { encoding: 'utf8' })
        .split('\n')
        .filter((l) => l.includes('/'));
      let links = 0;
      for (const a of applets) {
        if (a === 'bin/busybox') continue;
        expect(m.get(a), a).to.deep.include({ type: 'symlink', target: '/bin/busybox' });
        links++;
      }
      expect(links).to.be.greaterThan(100);
      expect(m.get('sbin/switch_root')?.target).to.equal('/bin/busybox');
      expect(m.get('tmp')).to.deep.include({ type: 'dir', mode: 0o1777 });
      expect(m.get('var/run')?.type).to.equal('dir');
      expect(m.get('dev/console')).to.deep.include({ type: 'char', major: 5, minor: 1, uid: 0, gid: 0 });
      expect(m.get('dev/ttyS1')).to.deep.include({ type: 'char', major: 4, minor: 65 });
      expect(m.has('linuxrc')).to.equal(false);
      // GNU cpio reads it too.
      const listing = execFileSync('cpio', ['-itv', '--quiet'], { input: await fs.readFile(seg), encoding: 'utf8' });
      expect(listing).to.match(/^crw------- .* 5,\s+1 .*dev\/console$/m);
      expect(listing).to.match(/^lrwxrwxrwx .* sbin\/switch_root -> \/bin\/busybox$/m);
    });

    it('baseRootDisk leaves /sbin/init to the scenario', async () => {
      const t = baseRootDisk();
      expect(await t.has('/sbin/init')).to.equal(false);
      expect(await t.has('/sbin/switch_root')).to.equal(true);
      expect(await baseInitramfs().has('/sbin/init')).to.equal(true);
    });
  });

  describe('hostBinary', () => {
    it('pulls the interpreter, libc and the libraries of libraries (like ldd)', async () => {
      const t = new ImageTree('ls').hostBinary('/bin/ls');
      const m = new Map((await t.list()).map((e) => [e.path, e]));
      expect(m.get('/bin/ls')?.type).to.equal('file');
      expect(m.get('/lib64/ld-linux-x86-64.so.2')?.type).to.equal('file');
      const ls = await readElf('/bin/ls');
      const libc = [...m.keys()].find((p) => p.endsWith('/libc.so.6'));
      expect(libc, 'libc.so.6').to.be.a('string');
      // The guest name is the soname; the bytes are the real file's.
      const libcEntry = m.get(libc!)!;
      expect(libcEntry.type === 'file' && libcEntry.source.kind === 'host' && libcEntry.source.hostPath).to.equal(realpathSync(libc!));
      // Cross-check against ldd: every library it lists is in the tree (by name).
      const ldd = execFileSync('ldd', ['/bin/ls'], { encoding: 'utf8' });
      const names = [...ldd.matchAll(/^\s*(\S+\.so[^\s]*)\s+=>\s+(\S+)/gm)].map((x) => path.basename(x[1]));
      expect(names.length).to.be.greaterThan(0);
      const ours = new Set([...m.keys()].map((p) => path.basename(p)));
      for (const n of names) expect(ours.has(n), n).to.equal(true);
      // A library only a library needs (e.g. libpcre2 for libselinux) when ls has one.
      const indirect = names.filter((n) => !ls.needed.includes(n));
      if (ls.needed.includes('libselinux.so.1')) expect(indirect.length).to.be.greaterThan(0);
      for (const n of indirect) expect(ours.has(n), n).to.equal(true);
    });

    it('places util-linux switch_root at a chosen guest path', async () => {
      const t = new ImageTree('sr').hostBinary('/usr/sbin/switch_root', '/usr/local/sbin/switch_root');
      const paths = (await t.list()).map((e) => e.path);
      expect(paths).to.include('/usr/local/sbin/switch_root');
      expect(paths).to.include('/lib64/ld-linux-x86-64.so.2');
      expect(paths.some((p) => p.endsWith('/libc.so.6'))).to.equal(true);
    });

    it('names the binary and the library when a library is missing', async () => {
      const bin = path.join(work, 'ls-broken');
      const bytes = await fs.readFile('/bin/ls');
      const at = bytes.indexOf(Buffer.from('libc.so.6\0'));
      expect(at).to.be.greaterThan(0);
      Buffer.from('libq.so.9\0').copy(bytes, at);
      await fs.writeFile(bin, bytes, { mode: 0o755 });
      const e = await rejects(new ImageTree('broken').hostBinary(bin).validate());
      expect(e).to.be.instanceOf(SetupError);
      expect(e.message).to.include(bin).and.include('libq.so.9');
    });

    it('refuses a script and a missing file', async () => {
      const sh = path.join(work, 'script.sh');
      await fs.writeFile(sh, '#!/bin/sh\necho hi\n', { mode: 0o755 });
      expect(await rejects(new ImageTree('s').hostBinary(sh).validate())).to.be.instanceOf(UsageError);
      const e = await rejects(new ImageTree('s').hostBinary('/nonexistent/bin').validate());
      expect(e).to.be.instanceOf(SetupError);
      expect(e.message).to.include('/nonexistent/bin');
    });
  });

  describe('cpio segments', () => {
    it('caches a segment: the second build is a hit; a damaged entry is rebuilt', async () => {
      const t = () => baseInitramfs().file('/init', '#!/bin/sh\necho hi\n', 0o755);
      let t0 = process.hrtime.bigint();
      const a = await buildCpioSegment(t());
      const first = Number(process.hrtime.bigint() - t0) / 1e6;
      const size = (await fs.stat(a)).size;
      const mtime = (await fs.stat(a)).mtimeMs;
      t0 = process.hrtime.bigint();
      const b = await buildCpioSegment(t());
      const second = Number(process.hrtime.bigint() - t0) / 1e6;
      console.log(`      segment: first build ${first.toFixed(0)} ms, cached ${second.toFixed(0)} ms`);
      expect(b).to.equal(a);
      expect((await fs.stat(b)).mtimeMs).to.equal(mtime);
      await fs.truncate(a, 100);
      const c = await buildCpioSegment(t());
      expect(c).to.equal(a);
      expect((await fs.stat(c)).size).to.equal(size);
      expect(
        byPath(await readNewc(await fs.readFile(c)))
          .get('init')
          ?.data.toString(),
      ).to.equal('#!/bin/sh\necho hi\n');
      const gz = await buildCpioSegment(t(), { compress: 'gzip' });
      expect(gz).to.not.equal(a);
      expect((await fs.readFile(gz)).subarray(0, 2).toString('hex')).to.equal('1f8b');
    });

    it('concatenates segments at 4-byte boundaries', async () => {
      const a = await buildCpioSegment(new ImageTree('a').file('/a', 'a'));
      const b = await buildCpioSegment(new ImageTree('b').file('/b', 'bb'), { compress: 'gzip' });
      const out = path.join(work, 'initrd.img');
      await concatSegments([a, b], out);
      const la = (await fs.stat(a)).size;
      const joined = await fs.readFile(out);
      const start = Math.ceil(la / 4) * 4;
      expect(joined.length).to.equal(start + (await fs.stat(b)).size);
      expect(joined.subarray(start, start + 2).toString('hex')).to.equal('1f8b');
      const m = byPath(await readNewc(joined));
      expect(m.get('a')?.data.toString()).to.equal('a');
      expect(m.get('b')?.data.toString()).to.equal('bb');
    });
  });

  describe('kernelModules', () => {
    before(() => {});

    it('adds virtio_blk with its dependencies, decompressed, with modules.dep and the load list', async () => {
      const t = new ImageTree('mods').kernelModules(KERNEL, ['virtio_blk']);
      const m = byPath(await readNewc(await fs.readFile(await buildCpioSegment(t))));
      const base = `lib/modules/${KREL}`;
      const mods = [...m.keys()].filter((p) => p.endsWith('.ko'));
      expect(mods.map((p) => path.basename(p)).sort()).to.include.members(['virtio.ko', 'virtio_blk.ko', 'virtio_ring.ko']);
      for (const p of mods) expect(m.get(p)!.data.subarray(0, 4).toString('latin1'), p).to.equal('\x7fELF');
      const load = m.get(MODULES_LOAD_FILE.slice(1))!.data.toString().trim().split('\n');
      expect(load[load.length - 1]).to.equal(`/${base}/kernel/drivers/block/virtio_blk.ko`);
      expect(load.length).to.equal(mods.length);
      // modules.dep agrees with busybox depmod on the same modules folder (order aside).
      const dep = m.get(`${base}/modules.dep`)!.data.toString();
      const ours = dep.split('\n').find((l) => l.startsWith('kernel/drivers/block/virtio_blk.ko:'))!;
      const real = execFileSync('busybox', ['depmod', '-n', '-b', KROOT, KREL], { encoding: 'utf8', maxBuffer: 1 << 28 })
        .split('\n')
        .find((l) => l.startsWith('kernel/drivers/block/virtio_blk.ko:'))!;
      const deps = (l: string) => l.split(':')[1].trim().split(/\s+/).filter(Boolean).sort();
      expect(deps(ours)).to.deep.equal(deps(real));
    });

    it('writes modules.dep with the dependency loaded last first', () => {
      const dep = modulesDep([
        { name: 'a', relPath: 'k/a.ko', depends: [] },
        { name: 'b', relPath: 'k/b.ko', depends: ['a'] },
        { name: 'c', relPath: 'k/c.ko', depends: ['b', 'builtin_one'] },
      ]);
      expect(dep).to.equal('k/a.ko:\nk/b.ko: k/a.ko\nk/c.ko: k/b.ko k/a.ko\n');
    });

    it('says so when the kernel has no modules folder', async () => {
      const e = await rejects(new ImageTree('nomods').kernelModules({ id: 'plain', release: '1.0' }, ['loop']).validate());
      expect(e).to.be.instanceOf(SetupError);
      expect(e.message).to.include('plain').and.include('loop');
    });
  });

  describe('ext4 images', () => {
    it('builds an image with a file, symlink, hard link, device node and fifo, all root-owned', async () => {
      const t = new ImageTree('disk')
        .file('/etc/hello', 'hello\n')
        .file('/bin/tool', 'x', 0o4755)
        .symlink('/etc/link', 'hello')
        .hardlink('/etc/hard', '/etc/hello')
        .device('/dev/console', 'char', 5, 1, 0o600)
        .device('/dev/vda', 'block', 254, 0, 0o660)
        .fifo('/run/fifo', 0o620)
        .dir('/secret', 0o700)
        .dir('/tmp', 0o1777)
        .file('/home/user/owned', 'u')
        .chown('/home/user/owned', 1000, 1000);
      const img = await buildExt4(t, { sizeMiB: 8, label: 'rootprobe' });
      const stat = (p: string) => debugfs(img, `stat ${p}`);
      expect(stat('/etc/hello'))
        .to.match(/Type: regular\s+Mode:\s+0644/)
        .and.match(/User:\s+0\s+Group:\s+0/)
        .and.match(/Links: 2/);
      expect(stat('/etc/hard')).to.match(/Links: 2/);
      expect(stat('/bin/tool'))
        .to.match(/Mode:\s+04755/)
        .and.match(/User:\s+0\s+Group:\s+0/);
      expect(stat('/etc/link'))
        .to.match(/Type: symlink/)
        .and.match(/Fast link dest: "hello"/);
      expect(stat('/dev/console'))
        .to.match(/Type: character special\s+Mode:\s+0600/)
        .and.match(/Device major\/minor number: 05:01/);
      expect(stat('/dev/vda'))
        .to.match(/Type: block special\s+Mode:\s+0660/)
        .and.match(/major\/minor number: 254:00/);
      expect(stat('/run/fifo'))
        .to.match(/Type: FIFO\s+Mode:\s+0620/)
        .and.match(/User:\s+0\s+Group:\s+0/);
      expect(stat('/secret')).to.match(/Mode:\s+0700/);
      expect(stat('/tmp')).to.match(/Mode:\s+01777/);
      expect(stat('/home/user/owned')).to.match(/User:\s+1000\s+Group:\s+1000/);
      expect(stat('/'))
        .to.match(/Mode:\s+0755/)
        .and.match(/User:\s+0\s+Group:\s+0/);
      expect(debugfs(img, 'cat /etc/hello')).to.equal('hello\n');
      const check = await fsck(img);
      expect(check.clean, check.output).to.equal(true);
      const info = await imageInfo(img);
      expect(info.label).to.equal('rootprobe');
      expect(info.clean).to.equal(true);
      expect(info.needsRecovery).to.equal(false);
      expect(info.features).to.include('has_journal');
      // Same tree, same bytes: a second cache gives an identical image.
      const other = mkdtempSync(path.join(os.tmpdir(), 'rootprobe-image-cache2-'));
      try {
        process.env.ROOTPROBE_CACHE = other;
        // Another second: host ctimes differ, and must not reach the image.
        await new Promise((r) => setTimeout(r, 1100));
        const img2 = await buildExt4(t, { sizeMiB: 8, label: 'rootprobe' });
        const sha = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');
        expect(sha(img2)).to.equal(sha(img));
      } finally {
        process.env.ROOTPROBE_CACHE = cacheDir;
        rmSync(other, { recursive: true, force: true });
      }
    });

    it('rejects a tree that does not fit, naming both sizes, before building', async () => {
      const big = path.join(work, 'big.bin');
      await fs.writeFile(big, Buffer.alloc(6 << 20, 1));
      const e = await rejects(buildExt4(new ImageTree('toobig').copy('/big', big), { sizeMiB: 4 }));
      expect(e).to.be.instanceOf(DefinitionError);
      expect(e.message).to.include('toobig').and.include('4 MiB').and.include('6.00 MiB');
      const left = await fs.readdir(path.join(cacheDir, 'images'));
      expect(left.filter((n) => n.startsWith('.tmp-'))).to.deep.equal([]);
    });

    it('stores a built image inside another one, streamed, and copies images for a run', async () => {
      const inner = await buildExt4(new ImageTree('inner').file('/marker', 'inner\n'), { sizeMiB: 16 });
      const outer = await buildExt4(new ImageTree('outer').copy('/images/root.img', inner), { sizeMiB: 32 });
      const out = path.join(work, 'extracted.img');
      execFileSync('debugfs', ['-R', `dump /images/root.img ${out}`, outer], { stdio: 'ignore' });
      const sha = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');
      expect(sha(out)).to.equal(sha(inner));
      expect(debugfs(out, 'cat /marker')).to.equal('inner\n');
      const run = path.join(work, 'run.img');
      await copyForRun(outer, run);
      expect(sha(run)).to.equal(sha(outer));
      expect((await fs.stat(run)).blocks * 512).to.be.lessThan((await fs.stat(run)).size);
      const raw = await rawImage({ sizeMiB: 3 });
      expect((await fs.stat(raw)).size).to.equal(3 << 20);
    });

    it('reports an unclean filesystem', async () => {
      const img = path.join(work, 'dirty.img');
      await copyForRun(await buildExt4(new ImageTree('dirty').file('/a', 'a'), { sizeMiB: 8 }), img);
      // Mark it as needing journal recovery and in error, as a crashed kernel would leave it.
      execFileSync('debugfs', ['-w', '-R', 'ssv state 2', img], { stdio: 'ignore' });
      execFileSync('debugfs', ['-w', '-R', 'feature needs_recovery', img], { stdio: 'ignore' });
      const info = await imageInfo(img);
      expect(info.needsRecovery).to.equal(true);
      expect(info.clean).to.equal(false);
    });
  });

  describe('image @boot', () => {
    before(() => {});

    it('boots the base initramfs, loads virtio_blk from modules.load and mounts a built ext4 disk', async () => {
      const init = [
        '#!/bin/sh',
        'mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev',
        'while read -r m; do insmod "$m" || echo "INSMOD-FAILED $m"; done < /etc/rootprobe/modules.load',
        'modprobe loop && echo MODPROBE-OK',
        'for i in 1 2 3 4 5 6 7 8 9 10; do [ -b /dev/vda ] && break; sleep 0.2; done',
        'mount -t ext4 -o ro /dev/vda /mnt && cat /mnt/etc/marker && ls -ln /mnt/dev/console',
        'echo RESULT-END',
        'poweroff -f',
        '',
      ].join('\n');
      const initrd = await buildCpioSegment(
        baseInitramfs().file('/init', init, 0o755).kernelModules(KERNEL, ['virtio_blk', 'virtio_pci']).kernelModules(KERNEL, ['loop']),
      );
      const disk = path.join(work, 'boot-disk.img');
      await copyForRun(await buildExt4(baseRootDisk().file('/etc/marker', 'MARKER-FROM-DISK\n'), { sizeMiB: 16 }), disk);
      const args = [
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
        KERNEL.vmlinuz,
        '-initrd',
        initrd,
        '-append',
        'console=ttyS0 panic=-1 quiet',
        '-chardev',
        'stdio,id=c0,signal=off',
        '-serial',
        'chardev:c0',
        '-nic',
        'none',
        '-drive',
        `file=${disk},format=raw,if=virtio`,
      ];
      const q = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      q.stdout.on('data', (d: Buffer) => (out += d.toString()));
      q.stderr.on('data', (d: Buffer) => (out += d.toString()));
      const timer = setTimeout(() => q.kill('SIGKILL'), 90_000);
      await new Promise((r) => q.on('exit', r));
      clearTimeout(timer);
      expect(out, out).to.include('MARKER-FROM-DISK');
      expect(out, out).to.include('MODPROBE-OK');
      expect(out, out).to.not.include('INSMOD-FAILED');
      expect(out, out).to.match(/crw-------\s+1 0\s+0\s+5,\s+1 .*\/mnt\/dev\/console/);
    });
  });
});
