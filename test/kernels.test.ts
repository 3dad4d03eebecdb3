import { expect } from 'chai';
import { promises as fs, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { SetupError, UsageError, DefinitionError } from '../harness/errors.ts';
import {
  checkFeatures,
  listKernels,
  moduleClosure,
  parseKernelConfig,
  parseKernelSpec,
  readModule,
  resolveKernel,
  KNOWN_KERNELS,
  type Kernel,
  type Feature,
} from '../kernels/index.ts';
import { FEATURES } from '../kernels/features.ts';
import {
  debianArchive,
  formatDeb822Source,
  parseDeb822Sources,
  parseOneLineSources,
  pickDebianArchive,
  readHostAptSources,
  DEFAULT_KEYRING,
  MIRROR_ENV,
} from '../kernels/apt-sources.ts';
import { parseDepends } from '../kernels/apt.ts';
import { bzImageSizeProblem, parseBzImageHeader, readBzImageHeader } from '../kernels/bzimage.ts';
import { MODULE_INDEX_FILE, parseModinfo } from '../kernels/modules.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const fixtures = path.join(here, 'fixtures/kernels');
const ALL: Feature[] = Object.keys(FEATURES) as Feature[];

async function tempDir(prefix: string): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), `rootprobe-kernels-${prefix}-`));
}

function fakeKernel(over: Partial<Kernel>): Kernel {
  return { id: 'file:/fake/bzImage', release: '9.9.9-test', vmlinuz: '/fake/bzImage', description: 'fake', sha256: '0', ...over };
}

async function expectReject(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a rejection');
}

describe('kernels: .config parsing', () => {
  const config = parseKernelConfig(readFileSync(path.join(fixtures, 'minimal.config'), 'utf8'));

  it('keeps y, m, strings and numbers as written', () => {
    expect(config.get('CONFIG_BLK_DEV_INITRD')).to.equal('y');
    expect(config.get('CONFIG_VIRTIO_BLK')).to.equal('m');
    expect(config.get('CONFIG_CC_VERSION_TEXT')).to.equal('"gcc (Debian 12.2.0-14) 12.2.0"');
    expect(config.get('CONFIG_LOG_BUF_SHIFT')).to.equal('17');
  });

  it('leaves "is not set" and =n options absent', () => {
    expect(config.has('CONFIG_BLK_DEV_LOOP')).to.equal(false);
    expect(config.has('CONFIG_DEBUG_INFO')).to.equal(false);
    expect(config.size).to.equal(14);
  });
});

describe('kernels: checkFeatures', () => {
  const config = parseKernelConfig(readFileSync(path.join(fixtures, 'minimal.config'), 'utf8'));

  it("refuses a riscv64 kernel without what Debian's rv64gc userland needs, before boot (it would die of SIGILL as PID 1)", () => {
    const riscv = parseKernelConfig(
      [
        'CONFIG_BLK_DEV_INITRD=y',
        'CONFIG_DEVTMPFS=y',
        'CONFIG_PROC_FS=y',
        'CONFIG_SYSFS=y',
        'CONFIG_SERIAL_8250=y',
        'CONFIG_SERIAL_8250_CONSOLE=y',
        'CONFIG_SERIAL_OF_PLATFORM=y',
        'CONFIG_VIRTIO_PCI=y',
        'CONFIG_VIRTIO_CONSOLE=y',
        'CONFIG_RISCV_ISA_C=y',
      ].join('\n'),
    );
    const k = fakeKernel({ config: riscv, arch: 'riscv64' });
    expect(() => checkFeatures(k, ['initrd', 'proc'], 's1')).to.throw(SetupError, /CONFIG_FPU is not set \(feature userland: .*rv64gc/);
    riscv.set('CONFIG_FPU', 'y');
    expect(checkFeatures(k, ['initrd', 'proc'], 's1').modules).to.deep.equal([]);
    riscv.set('CONFIG_FPU', 'm');
    expect(() => checkFeatures(k, ['initrd'], 's1')).to.throw(SetupError, /CONFIG_FPU=m but must be built in/);
  });

  it('passes and returns the modules of modular options only', () => {
    const r = checkFeatures(fakeKernel({ config }), ['initrd', 'devtmpfs', 'tmpfs', 'serial', 'proc', 'sysfs', 'virtio-blk', 'ext4'], 's1');
    // VIRTIO_PCI=y, VIRTIO_BLK=m, EXT4_FS=y
    expect(r.modules).to.deep.equal(['virtio_blk']);
    expect(r.warnings).to.deep.equal([]);
  });

  it('names the missing option, the feature and the scenario', () => {
    const k = fakeKernel({ config, configPath: '/fake/.config' });
    let err: unknown;
    try {
      checkFeatures(k, ['ext4', 'loop'], 'loop_root_shutdown');
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(SetupError);
    const msg = (err as Error).message;
    expect(msg).to.include('CONFIG_BLK_DEV_LOOP is not set');
    expect(msg).to.include('feature loop');
    expect(msg).to.include('loop_root_shutdown');
    expect(msg).to.include('/fake/.config');
    expect(msg).not.to.include('CONFIG_EXT4_FS');
  });

  it('refuses a module for a feature that must be built in', () => {
    const c = new Map(config);
    c.set('CONFIG_DEVTMPFS', 'm');
    expect(() => checkFeatures(fakeKernel({ config: c }), ['devtmpfs'], 'switch_root')).to.throw(
      SetupError,
      /CONFIG_DEVTMPFS=m but must be built in.*feature devtmpfs/,
    );
  });

  it('lists every module of a modular feature', () => {
    const c = new Map(config);
    c.set('CONFIG_VIRTIO_PCI', 'm');
    c.set('CONFIG_EXT4_FS', 'm');
    c.set('CONFIG_BLK_DEV_LOOP', 'm');
    expect(checkFeatures(fakeKernel({ config: c }), ALL, 's').modules).to.deep.equal(['ext4', 'loop', 'virtio_blk', 'virtio_pci']);
  });

  it('rejects an unknown feature name', () => {
    expect(() => checkFeatures(fakeKernel({ config }), ['floppy' as Feature], 'odd')).to.throw(DefinitionError, /floppy.*odd|odd.*floppy/);
  });

  it('without a config: probes the modules folder and warns', async () => {
    const dir = await tempDir('nocfg');
    try {
      await fs.mkdir(path.join(dir, 'kernel/drivers/block'), { recursive: true });
      await fs.writeFile(path.join(dir, 'kernel/drivers/block/loop.ko.xz'), '');
      await fs.writeFile(path.join(dir, 'modules.builtin'), 'kernel/fs/ext4/ext4.ko\nkernel/drivers/virtio/virtio_pci.ko\n');
      const r = checkFeatures(fakeKernel({ modulesDir: dir }), ['initrd', 'ext4', 'loop', 'virtio-blk'], 'nocfg');
      expect(r.modules).to.deep.equal(['loop']);
      expect(r.warnings.join('\n')).to.match(/no \.config.*initrd/);
      expect(r.warnings.join('\n')).to.match(/module virtio_blk.*assuming it is built in/);
      expect(r.warnings.join('\n')).not.to.include('module ext4');
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it('without config nor modules: warns that nothing was checked', () => {
    const r = checkFeatures(fakeKernel({}), ['loop'], 'bare');
    expect(r.modules).to.deep.equal([]);
    expect(r.warnings).to.have.length(1);
    expect(r.warnings[0]).to.match(/cannot check loop for bare/);
  });
});

describe('kernels: apt sources', () => {
  it('parses the one-line format with options and comments', () => {
    const s = parseOneLineSources(readFileSync(path.join(fixtures, 'oneline.list'), 'utf8'), 'x.list');
    expect(s).to.have.length(3);
    expect(s[0]).to.deep.include({ types: ['deb'], uris: ['http://mirror.example/debian'], suites: ['bookworm'] });
    expect(s[0].components).to.deep.equal(['main', 'contrib', 'non-free-firmware']);
    expect(s[0].signedBy).to.equal(undefined);
    expect(s[1]).to.deep.include({ uris: ['http://other.example/debian/'], suites: ['trixie'], signedBy: '/etc/keys/archive.gpg' });
    expect(s[1].components).to.deep.equal(['main']);
    expect(s[2].types).to.deep.equal(['deb-src']);
  });

  it('parses deb822 paragraphs, Enabled: no and an inline Signed-By key', () => {
    const text = readFileSync(path.join(fixtures, 'etc-apt/sources.list.d/30-debian.sources'), 'utf8');
    const s = parseDeb822Sources(text, '30-debian.sources');
    expect(s).to.have.length(2);
    expect(s[0].types).to.deep.equal(['deb', 'deb-src']);
    expect(s[0].suites).to.deep.equal(['bookworm', 'bookworm-updates']);
    expect(s[0].signedBy).to.equal(
      '-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQINBFake0123456789\n=abcd\n-----END PGP PUBLIC KEY BLOCK-----',
    );
    expect(s[1]).to.deep.include({ uris: ['http://second.example/debian'], suites: ['trixie'], signedBy: undefined });
    const off = parseDeb822Sources(readFileSync(path.join(fixtures, 'etc-apt/sources.list.d/20-disabled.sources'), 'utf8'));
    expect(off[0].enabled).to.equal(false);
  });

  it('picks the first Debian archive entry, skipping third-party, security, source-only and disabled ones', async () => {
    const all = await readHostAptSources(path.join(fixtures, 'etc-apt'));
    expect(all.map((s) => s.uris[0])).to.deep.equal([
      'https://apt.vendor.example/repo',
      'http://mirror.example/debian',
      'http://security.example/debian-security',
      'http://disabled.example/debian',
      'http://mirror.example/debian',
      'http://second.example/debian',
    ]);
    const a = pickDebianArchive(all)!;
    expect(a.uri).to.equal('http://mirror.example/debian');
    expect(a.signedBy).to.match(/^-----BEGIN PGP PUBLIC KEY BLOCK-----/);
    expect(a.from).to.match(/30-debian\.sources$/);
    // The inline key survives into our private deb822 file, the empty line as " .".
    expect(formatDeb822Source(a, 'sid')).to.include(
      'Suites: sid\nComponents: main\nSigned-By:\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n mQINBFake',
    );
  });

  it('takes an entry by its URI path, with the default keyring', () => {
    const a = pickDebianArchive(parseOneLineSources('deb http://m.example/pub/debian/ weird-suite main\n'));
    expect(a).to.deep.include({ uri: 'http://m.example/pub/debian/', signedBy: DEFAULT_KEYRING });
    expect(pickDebianArchive(parseOneLineSources('deb http://m.example/ubuntu jammy main\n'))).to.equal(undefined);
  });

  it('ROOTPROBE_DEBIAN_MIRROR overrides; no archive at all is a SetupError', async () => {
    const saved = process.env[MIRROR_ENV];
    try {
      process.env[MIRROR_ENV] = 'http://override.example/debian';
      expect(await debianArchive(path.join(fixtures, 'etc-apt'))).to.deep.include({
        uri: 'http://override.example/debian',
        signedBy: DEFAULT_KEYRING,
      });
      process.env[MIRROR_ENV] = 'not a uri';
      expect(await expectReject(debianArchive(path.join(fixtures, 'etc-apt')))).to.be.instanceOf(UsageError);
      delete process.env[MIRROR_ENV];
      const err = await expectReject(debianArchive(path.join(fixtures, 'no-such-etc-apt')));
      expect(err).to.be.instanceOf(SetupError);
      expect(err.message).to.include(MIRROR_ENV);
    } finally {
      if (saved === undefined) delete process.env[MIRROR_ENV];
      else process.env[MIRROR_ENV] = saved;
    }
  });

  it('parses Depends with alternatives, versions and architectures', () => {
    expect(parseDepends('dracut | initramfs-tools (>= 0.120), linux-base-7.2 (= 7.2-1), kmod:amd64')).to.deep.equal([
      ['dracut', 'initramfs-tools'],
      ['linux-base-7.2'],
      ['kmod'],
    ]);
  });
});

describe('kernels: spec parsing', () => {
  it('canonicalises debian specs (cloud is the default flavour)', () => {
    expect(parseKernelSpec('debian/bookworm')).to.deep.equal({
      kind: 'debian',
      id: 'debian/bookworm',
      suite: 'bookworm',
      flavour: 'cloud',
      arch: 'x86_64',
    });
    expect(parseKernelSpec('debian/sid:cloud').id).to.equal('debian/sid');
    expect(parseKernelSpec('debian/trixie:rt')).to.deep.include({ id: 'debian/trixie:rt', flavour: 'rt' });
    expect(KNOWN_KERNELS.filter((k) => k.startsWith('debian/'))).to.deep.equal([
      'debian/bookworm',
      'debian/trixie',
      'debian/sid',
      'debian/bookworm:cloud-arm64',
      'debian/trixie:riscv64',
    ]);
    expect(KNOWN_KERNELS).to.include('build/nonroot-6.1');
  });

  it('parses file specs with options, to absolute paths', () => {
    const s = parseKernelSpec('file:/k/bzImage,modules=/k/mods,config=/k/cfg');
    expect(s).to.deep.equal({
      kind: 'file',
      id: 'file:/k/bzImage,modules=/k/mods,config=/k/cfg',
      path: '/k/bzImage',
      modules: '/k/mods',
      config: '/k/cfg',
    });
    const rel = parseKernelSpec('file:bz');
    expect(rel).to.deep.include({ path: path.resolve('bz'), id: `file:${path.resolve('bz')}` });
  });

  for (const bad of ['debian/jessie', 'debian/', 'debian/sid:Bad_Flavour', 'ubuntu/jammy', 'file:', 'file:/k,modules=', '/boot/vmlinuz']) {
    it(`rejects ${JSON.stringify(bad)} listing the accepted forms`, () => {
      expect(() => parseKernelSpec(bad)).to.throw(UsageError, /Accepted forms: debian\/<suite>.*file:<path/);
    });
  }
});

describe('kernels: bzImage header and file: provider', () => {
  it('returns undefined for bytes without the HdrS magic', () => {
    expect(parseBzImageHeader(Buffer.alloc(0x1000))).to.equal(undefined);
    const b = Buffer.alloc(0x1000);
    b.write('HdrS', 0x202, 'latin1');
    b.writeUInt16LE(0x020f, 0x206);
    b.writeUInt16LE(0x300, 0x20e);
    b.write('1.2.3-test (me@host) #1\0', 0x500, 'latin1');
    expect(parseBzImageHeader(b)).to.deep.equal({
      protocol: '2.15',
      versionString: '1.2.3-test (me@host) #1',
      release: '1.2.3-test',
      setupSects: 4,
      kernelBytes: 0,
      minFileSize: 5 * 512,
    });
  });

  it("a truncated bzImage (its boot header's setup_sects and syssize against its size) is a UsageError before any boot", async () => {
    const { TEST_KERNEL } = await import('./support/kernel.ts');
    const dir = await tempDir('trunc');
    try {
      const whole = await fs.readFile(TEST_KERNEL);
      const h = parseBzImageHeader(whole)!;
      expect(h.minFileSize).to.be.a('number');
      expect(whole.length).to.be.at.least(h.minFileSize!);
      expect(bzImageSizeProblem(h, whole.length)).to.equal(undefined);
      const cut = path.join(dir, 'bzImage');
      // Half of it, and the last byte the header counts missing.
      for (const size of [Math.floor(whole.length / 2), h.minFileSize! - 1]) {
        await fs.writeFile(cut, whole.subarray(0, size));
        const e = await expectReject(resolveKernel(`file:${cut}`));
        expect(e).to.be.instanceOf(UsageError);
        expect(e.message).to.include(`${cut}: it is truncated`);
        expect(e.message).to.include(`but the file has ${size} (${h.minFileSize! - size} missing)`);
      }
      await fs.writeFile(cut, whole);
      const k = await resolveKernel(`file:${cut}`);
      expect(k.vmlinuz).to.equal(cut);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it('a non-kernel file or a missing one is a UsageError naming the path', async () => {
    const dir = await tempDir('file');
    try {
      const notKernel = path.join(dir, 'notes.txt');
      await fs.writeFile(notKernel, 'hello\n'.repeat(200));
      const e1 = await expectReject(resolveKernel(`file:${notKernel}`));
      expect(e1).to.be.instanceOf(UsageError);
      expect(e1.message).to.include(notKernel).and.include('not a bzImage');
      const e2 = await expectReject(resolveKernel(`file:${path.join(dir, 'gone')}`));
      expect(e2).to.be.instanceOf(UsageError);
      expect(e2.message).to.include(path.join(dir, 'gone')).and.include('does not exist');
      const e3 = await expectReject(resolveKernel(`file:${dir}`));
      expect(e3).to.be.instanceOf(UsageError);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});

/** Points the cache at a temp folder for a describe block. */
function withTempCache(prefix: string): { root: () => string } {
  let root = '';
  let saved: string | undefined;
  before(async () => {
    saved = process.env.ROOTPROBE_CACHE;
    root = await tempDir(prefix);
    process.env.ROOTPROBE_CACHE = root;
  });
  after(async () => {
    if (saved === undefined) delete process.env.ROOTPROBE_CACHE;
    else process.env.ROOTPROBE_CACHE = saved;
    if (root) await fs.rm(root, { recursive: true, force: true });
  });
  return { root: () => root };
}

describe('kernels: debian/bookworm end to end (downloads ~26 MB)', function () {
  this.timeout(300_000);
  const cache = withTempCache('bookworm');
  let kernel: Kernel;
  const progress: string[] = [];

  before(async () => {
    kernel = await resolveKernel('debian/bookworm', { onProgress: (m) => progress.push(m) });
  });

  it('resolves the cloud kernel with its modules and config, reporting progress', async () => {
    expect(kernel.id).to.equal('debian/bookworm');
    expect(kernel.release).to.match(/^6\.1\.\d+-\d+-cloud-amd64$/);
    expect(kernel.vmlinuz.startsWith(cache.root())).to.equal(true);
    expect(path.basename(kernel.vmlinuz)).to.equal(`vmlinuz-${kernel.release}`);
    expect(kernel.modulesDir && path.basename(kernel.modulesDir)).to.equal(kernel.release);
    expect(kernel.config?.get('CONFIG_EXT4_FS')).to.equal('y');
    expect(kernel.description).to.match(new RegExp(`^Debian bookworm linux-image-${kernel.release.replace(/\./g, '\\.')} \\S+$`));
    const actual = execFileSync('sha256sum', [kernel.vmlinuz], { encoding: 'utf8' }).split(' ')[0];
    expect(kernel.sha256).to.equal(actual);
    expect(progress[0]).to.equal('updating package lists for bookworm');
    expect(progress.some((p) => /^downloading linux-image-\S+ \S+ \(\d+ MB\)$/.test(p))).to.equal(true);
    expect(progress.some((p) => p.startsWith('unpacking'))).to.equal(true);
  });

  it('reads the release from the real bzImage header', async () => {
    const h = await readBzImageHeader(kernel.vmlinuz);
    expect(h?.release).to.equal(kernel.release);
    expect(h?.versionString).to.match(/#1 SMP/);
  });

  it('file: on the same bzImage finds .config beside it only when there is one', async () => {
    const k = await resolveKernel(`file:${kernel.vmlinuz},modules=${kernel.modulesDir}`);
    expect(k).to.deep.include({ release: kernel.release, sha256: kernel.sha256, modulesDir: kernel.modulesDir, configPath: undefined });
    const k2 = await resolveKernel(`file:${kernel.vmlinuz},config=${kernel.configPath}`);
    expect(k2.config?.get('CONFIG_VIRTIO_BLK')).to.equal('m');
  });

  it('the features of the bookworm cloud kernel: virtio and loop are modules', () => {
    const r = checkFeatures(kernel, ALL, 'all-features');
    expect(r.modules).to.deep.equal(['loop', 'virtio_blk', 'virtio_pci']);
  });

  it('moduleClosure gives the real dependencies first, from .modinfo', async () => {
    const c = await moduleClosure(kernel.modulesDir!, ['virtio_blk', 'virtio_pci', 'ext4']);
    const names = c.map((m) => m.name);
    // ext4 is built in: skipped. virtio_blk depends=virtio,virtio_ring.
    expect(names).to.deep.equal(['virtio', 'virtio_ring', 'virtio_blk', 'virtio_pci_modern_dev', 'virtio_pci_legacy_dev', 'virtio_pci']);
    expect(c[2]).to.deep.include({ relPath: 'kernel/drivers/block/virtio_blk.ko', depends: ['virtio', 'virtio_ring'] });
    expect(c[2].path).to.equal(path.join(kernel.modulesDir!, 'kernel/drivers/block/virtio_blk.ko'));
    for (const m of c) {
      for (const d of m.depends) expect(names.indexOf(d), `${d} before ${m.name}`).to.be.lessThan(names.indexOf(m.name));
    }
    // Written while the entry was built.
    const index = JSON.parse(await fs.readFile(path.join(kernel.modulesDir!, MODULE_INDEX_FILE), 'utf8'));
    expect(index.modules.virtio_blk.depends).to.deep.equal(['virtio', 'virtio_ring']);
  });

  it('moduleClosure: an unknown module is a SetupError naming it and the kernel', async () => {
    const e = await expectReject(moduleClosure(kernel.modulesDir!, ['no_such_module']));
    expect(e).to.be.instanceOf(SetupError);
    expect(e.message).to.include('no_such_module').and.include(kernel.release);
  });

  it('readModule and moduleClosure on compressed modules (.ko.xz, .ko.zst, .ko.gz)', async () => {
    const dir = await tempDir('xz');
    try {
      const src = (rel: string): string => path.join(kernel.modulesDir!, 'kernel/drivers', rel);
      const dst = path.join(dir, 'kernel');
      await fs.mkdir(dst, { recursive: true });
      await fs.copyFile(src('block/virtio_blk.ko'), path.join(dst, 'virtio_blk.ko'));
      await fs.copyFile(src('virtio/virtio.ko'), path.join(dst, 'virtio.ko'));
      await fs.copyFile(src('virtio/virtio_ring.ko'), path.join(dst, 'virtio_ring.ko'));
      execFileSync('xz', ['--check=crc32', path.join(dst, 'virtio_blk.ko')]);
      execFileSync('zstd', ['-q', '--rm', path.join(dst, 'virtio.ko')]);
      execFileSync('gzip', [path.join(dst, 'virtio_ring.ko')]);
      const c = await moduleClosure(dir, ['virtio-blk']);
      expect(c.map((m) => m.relPath)).to.deep.equal(['kernel/virtio.ko.zst', 'kernel/virtio_ring.ko.gz', 'kernel/virtio_blk.ko.xz']);
      const original = await fs.readFile(src('block/virtio_blk.ko'));
      const bytes = await readModule(c[2]);
      expect(bytes.equals(original)).to.equal(true);
      expect((await readModule(c[0])).equals(await fs.readFile(src('virtio/virtio.ko')))).to.equal(true);
      expect(parseModinfo(bytes).find(([k]) => k === 'name')?.[1]).to.equal('virtio_blk');
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it('a second resolve uses the cache and never runs apt', async () => {
    const bin = await tempDir('noapt');
    const marker = path.join(bin, 'apt-was-run');
    const savedPath = process.env.PATH;
    try {
      for (const tool of ['apt-get', 'apt-cache', 'dpkg-deb']) {
        await fs.writeFile(path.join(bin, tool), `#!/bin/sh\necho "$0" >> ${marker}\nexit 1\n`, { mode: 0o755 });
      }
      process.env.PATH = `${bin}:${savedPath}`;
      const again = await resolveKernel('debian/bookworm', { onProgress: (m) => expect.fail(`progress on a cached resolve: ${m}`) });
      expect(again).to.deep.equal(kernel);
      expect(
        await fs.stat(marker).then(
          () => true,
          () => false,
        ),
        'apt ran',
      ).to.equal(false);
      const list = await listKernels();
      expect(list.find((k) => k.id === 'debian/bookworm')).to.deep.equal({
        id: 'debian/bookworm',
        cached: true,
        release: kernel.release,
        description: kernel.description,
      });
      expect(list.find((k) => k.id === 'debian/sid')).to.deep.equal({ id: 'debian/sid', cached: false });
    } finally {
      process.env.PATH = savedPath;
      await fs.rm(bin, { recursive: true, force: true });
    }
  });

  it('with stale lists and an unreachable archive, the cached kernel is used with a note', async () => {
    const saved = process.env[MIRROR_ENV];
    try {
      // A different archive makes the lists stale for it; port 9 on loopback refuses at once.
      process.env[MIRROR_ENV] = 'http://127.0.0.1:9/debian';
      const notes: string[] = [];
      const k = await resolveKernel('debian/bookworm', { onProgress: (m) => notes.push(m) });
      expect(k.vmlinuz).to.equal(kernel.vmlinuz);
      expect(notes[0]).to.equal('updating package lists for bookworm');
      expect(notes[1]).to.match(/^could not update the package lists for bookworm .*; using the cached Debian bookworm/);
    } finally {
      if (saved === undefined) delete process.env[MIRROR_ENV];
      else process.env[MIRROR_ENV] = saved;
    }
    // Back on the real archive, with no pointer: the fresh lists still resolve the package
    // (the failed run must not have left its address in the tree), and nothing is fetched.
    await fs.rm(path.join(cache.root(), 'kernels', 'bookworm-cloud.current'), { force: true });
    const notes: string[] = [];
    const k = await resolveKernel('debian/bookworm', { onProgress: (m) => notes.push(m) });
    expect(k).to.deep.equal(kernel);
    expect(notes).to.deep.equal([]);
  });

  it('two resolves at once in one process share the work', async () => {
    await fs.rm(path.join(cache.root(), 'kernels', 'bookworm-cloud.current'), { force: true });
    const [a, b] = await Promise.all([resolveKernel('debian/bookworm'), resolveKernel('debian/bookworm')]);
    expect(a).to.deep.equal(kernel);
    expect(b).to.deep.equal(kernel);
  });
});

// trixie and sid take 8-14 s each here (lists ~10 MB + packages ~35 MB, into a temporary cache):
// the provider's two other layouts are worth that in every run.
describe('kernels: debian/trixie and debian/sid (downloads ~75 MB)', function () {
  this.timeout(600_000);
  withTempCache('suites');

  it('trixie: boot/vmlinuz, merged-/usr modules as .ko.xz, virtio_pci built in', async () => {
    const k = await resolveKernel('debian/trixie');
    expect(k.vmlinuz).to.match(/\/root\/boot\/vmlinuz-6\.\d+\.\d+\+deb13-cloud-amd64$/);
    expect(k.modulesDir).to.match(/\/root\/usr\/lib\/modules\/6\.\d+\.\d+\+deb13-cloud-amd64$/);
    expect((await readBzImageHeader(k.vmlinuz))?.release).to.equal(k.release);
    const r = checkFeatures(k, ALL, 'trixie');
    expect(r.modules).to.include('virtio_blk').and.not.include('virtio_pci');
    const c = await moduleClosure(k.modulesDir!, r.modules);
    expect(c.find((m) => m.name === 'virtio_blk')?.relPath).to.equal('kernel/drivers/block/virtio_blk.ko.xz');
    expect(
      parseModinfo(await readModule(c.find((m) => m.name === 'virtio_blk')!)).some(([key, v]) => key === 'name' && v === 'virtio_blk'),
    ).to.equal(true);
  });

  it('sid: image split into linux-binary/linux-modules/linux-base, everything under usr/lib/modules/<release>', async () => {
    const k = await resolveKernel('debian/sid');
    expect(path.basename(k.vmlinuz)).to.equal('vmlinuz');
    expect(path.dirname(k.vmlinuz)).to.equal(k.modulesDir);
    expect(k.configPath).to.equal(path.join(k.modulesDir!, 'config'));
    expect((await readBzImageHeader(k.vmlinuz))?.release).to.equal(k.release);
    const c = await moduleClosure(k.modulesDir!, checkFeatures(k, ALL, 'sid').modules);
    expect(c.length).to.be.greaterThan(0);
    for (const m of c) expect(m.relPath).to.match(/\.ko\.xz$/);
  });
});
