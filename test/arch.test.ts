/**
 * arm64 and riscv64 guests without booting: kernel specs name the architecture, kernel images
 * are told apart, the QEMU command line has the virt machine, its firmware and the virtio
 * result port, KVM is never tried for a foreign guest, and a soft dependency naming an alias
 * (riscv64's ext4 → crc32c) is resolved to the module carrying it. The boots are in
 * arch-boot.test.ts.
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import { archByName, archOf } from '../harness/arch/index.ts';
import { UsageError } from '../harness/errors.ts';
import { detectAccel, timeoutFactor } from '../harness/qemu/accel.ts';
import { baseCmdline, qemuArgs } from '../harness/qemu/command.ts';
import { flavourArch, metapackageName } from '../kernels/debian.ts';
import { kernelImageInfo } from '../kernels/image-format.ts';
import { kernelsForArch, parseKernelSpec } from '../kernels/index.ts';
import { moduleClosure } from '../kernels/modules.ts';
import { kcidbArch } from '../harness/report/kcidb.ts';
import { gdbCommand, shellLine } from '../harness/qemu/command.ts';

const arm64 = archByName('arm64');
const riscv64 = archByName('riscv64');

function valuesOf(argv: string[], flag: string): string[] {
  return argv.flatMap((a, i) => (a === flag ? [argv[i + 1]] : []));
}

describe('arm64 and riscv64: kernel specs', () => {
  it('a Debian flavour ending in an architecture is a kernel of that architecture', () => {
    expect(parseKernelSpec('debian/bookworm:cloud-arm64')).to.deep.include({
      id: 'debian/bookworm:cloud-arm64',
      flavour: 'cloud-arm64',
      arch: 'arm64',
    });
    expect(parseKernelSpec('debian/trixie:arm64')).to.deep.include({ arch: 'arm64' });
    expect(parseKernelSpec('debian/sid:riscv64')).to.deep.include({ arch: 'riscv64' });
    expect(parseKernelSpec('debian/trixie:rt')).to.deep.include({ arch: 'x86_64' });
    expect(metapackageName('cloud-arm64')).to.equal('linux-image-cloud-arm64');
    expect(metapackageName('riscv64')).to.equal('linux-image-riscv64');
    expect(metapackageName('cloud')).to.equal('linux-image-cloud-amd64');
    expect(metapackageName('generic')).to.equal('linux-image-amd64');
    expect(flavourArch('rt-arm64').name).to.equal('arm64');
  });

  it('riscv64 before trixie is a usage error saying where the architecture starts', () => {
    expect(() => parseKernelSpec('debian/bookworm:riscv64')).to.throw(UsageError, /bookworm has no riscv64 kernels.*trixie and later/);
  });

  it("--arch makes each named kernel (or the default one) that architecture's, or says why it cannot", () => {
    const k = (given: string[] | undefined, arch: string | undefined): string[] => kernelsForArch(given, arch, 'debian/bookworm');
    expect(k(undefined, undefined)).to.deep.equal(['debian/bookworm']);
    expect(k(undefined, 'arm64')).to.deep.equal(['debian/bookworm:cloud-arm64']);
    // the default kernel moves to the first suite that has the architecture; a named one does not
    expect(k(undefined, 'riscv64')).to.deep.equal(['debian/trixie:riscv64']);
    expect(() => k(['debian/bookworm'], 'riscv64')).to.throw(UsageError, /bookworm has no riscv64 kernels/);
    expect(k(['debian/sid', 'debian/trixie:arm64'], 'arm64')).to.deep.equal(['debian/sid:cloud-arm64', 'debian/trixie:arm64']);
    expect(k(['debian/bookworm'], 'x86_64')).to.deep.equal(['debian/bookworm']);
    expect(() => k(['debian/bookworm:rt'], 'arm64')).to.throw(UsageError, /kernel for x86_64, not for arm64/);
    expect(k(['build/nonroot-6.1,config-add=CONFIG_LKDTM=y', 'git:/src/linux@v6.1'], 'riscv64')).to.deep.equal([
      'build/nonroot-6.1,arch=riscv64,config-add=CONFIG_LKDTM=y',
      'git:/src/linux@v6.1,arch=riscv64',
    ]);
    expect(() => k(['build/nonroot-6.1,arch=arm64'], 'riscv64')).to.throw(UsageError, /built for arm64, not for riscv64/);
    expect(k(['file:/boot/vmlinuz'], 'arm64')).to.deep.equal(['file:/boot/vmlinuz']); // the image says
    expect(() => k(undefined, 'sparc')).to.throw(UsageError, /unknown architecture 'sparc'; known: x86_64, arm64, riscv64/);
  });

  it('a kernel without an arch field is x86_64 (kernels cached before the field existed)', () => {
    expect(archOf({}).name).to.equal('x86_64');
    expect(archOf({ arch: 'riscv64' }).name).to.equal('riscv64');
  });
});

describe('arm64 and riscv64: kernel images', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'rp-arch-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** An `Image`: the 64-byte header with the architecture's magic at 0x38, then a banner. */
  function image(magic: string, release: string): Buffer {
    const header = Buffer.alloc(64);
    header.write(magic, 0x38, 'latin1');
    return Buffer.concat([header, Buffer.alloc(4000), Buffer.from(`Linux version ${release} (builder@host) #1 SMP\n\0`, 'latin1')]);
  }
  const write = (name: string, bytes: Buffer): string => {
    const f = path.join(dir, name);
    writeFileSync(f, bytes);
    return f;
  };

  it('reads the release of an arm64 Image, plain or gzip-compressed, and of a riscv64 Image', async () => {
    expect(await kernelImageInfo(write('a', image('ARM\x64', '6.1.0-50-cloud-arm64')), arm64)).to.include({
      release: '6.1.0-50-cloud-arm64',
    });
    expect(await kernelImageInfo(write('a.gz', gzipSync(image('ARM\x64', '6.12.1-arm64'))), arm64)).to.include({
      release: '6.12.1-arm64',
      compression: 'gzip',
    });
    expect(await kernelImageInfo(write('r', image('RSC\x05', '6.12.117-riscv64')), riscv64)).to.include({ release: '6.12.117-riscv64' });
  });

  it('an image of another architecture is named as such', async () => {
    const a = write('arm', image('ARM\x64', '6.1.0'));
    expect(await kernelImageInfo(a, riscv64))
      .to.have.property('problem')
      .that.matches(/not an riscv64 Image.*it is an arm64 Image/);
    const bz = Buffer.alloc(0x400);
    bz.write('HdrS', 0x202, 'latin1');
    expect(await kernelImageInfo(write('bz', bz), arm64))
      .to.have.property('problem')
      .that.matches(/it is an x86 bzImage/);
    expect(await kernelImageInfo(a, archByName('x86_64')))
      .to.have.property('problem')
      .that.matches(/not a bzImage.*arm64 Image/);
    const elf = Buffer.alloc(128);
    elf.write('\x7fELF', 0, 'latin1');
    expect(await kernelImageInfo(write('vmlinux', elf), arm64))
      .to.have.property('problem')
      .that.matches(/ELF file \(vmlinux\?\)/);
    expect(await kernelImageInfo(write('r.gz', gzipSync(image('RSC\x05', '6.12'))), riscv64))
      .to.have.property('problem')
      .that.matches(/gzip-compressed; QEMU boots an uncompressed Image on riscv64/);
    expect(await kernelImageInfo(write('cut.gz', gzipSync(image('ARM\x64', '6.1')).subarray(0, -12)), arm64))
      .to.have.property('problem')
      .that.matches(/does not unpack/);
  });
});

describe('arm64 and riscv64: what the architecture table says for the tools around a boot', () => {
  it("an Image is recognised by the table's magic and gzip rule, for an architecture added to it too", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'rootprobe-arch-table-'));
    try {
      const header = Buffer.alloc(64);
      header.write('NEW\x01', 0x38, 'latin1');
      const img = Buffer.concat([header, Buffer.from('Linux version 6.6.6-new (b@h) #1\n\0', 'latin1')]);
      const f = path.join(dir, 'Image.gz');
      writeFileSync(f, gzipSync(img));
      const added = { ...riscv64, name: 'newarch', imageMagic: 'NEW\x01', gzipImage: true };
      expect(await kernelImageInfo(f, added)).to.include({ release: '6.6.6-new', compression: 'gzip' });
      expect(await kernelImageInfo(f, { ...added, gzipImage: false }))
        .to.have.property('problem')
        .that.matches(/gzip-compressed; QEMU boots an uncompressed Image on newarch/);
      expect(await kernelImageInfo(f, arm64))
        .to.have.property('problem')
        .that.matches(/not an arm64 Image/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("KCIDB's and gdb's names of each architecture come from the table", () => {
    expect(['x86_64', 'arm64', 'riscv64'].map((a) => kcidbArch(a))).to.deep.equal(['x86_64', 'arm64', 'riscv']);
    expect(kcidbArch(undefined)).to.equal('x86_64');
    const gdb = (arch: string, vmlinux?: string): string =>
      shellLine(gdbCommand({ socket: '/tmp/g.sock', arch: archByName(arch), vmlinux, hostArch: 'x64' }));
    expect(gdb('arm64')).to.equal("gdb-multiarch -ex 'set architecture aarch64' -ex 'target remote /tmp/g.sock'");
    expect(gdb('x86_64')).to.equal("gdb -ex 'set architecture i386:x86-64' -ex 'target remote /tmp/g.sock'");
    expect(gdb('riscv64', '/k/vmlinux')).to.equal("gdb-multiarch /k/vmlinux -ex 'target remote /tmp/g.sock'");
  });

  it("debian/<suite> is each architecture's flavour, from the table", () => {
    expect(['x86_64', 'arm64', 'riscv64'].map((a) => kernelsForArch(undefined, a, 'debian/trixie')[0])).to.deep.equal([
      'debian/trixie',
      'debian/trixie:cloud-arm64',
      'debian/trixie:riscv64',
    ]);
  });
});

describe('arm64 and riscv64: the QEMU command line', () => {
  const ch = { resultSocket: '/tmp/rp-x/res.sock' };

  it('arm64: virt, cortex-a57 under TCG, the PL011 console, the result port on virtio-serial', () => {
    const a = qemuArgs({ kernel: '/k/Image', accel: 'tcg', runDir: '/r', arch: arm64, qemuBinary: '/usr/bin/qemu-system-aarch64' }, ch);
    expect(a[0]).to.equal('/usr/bin/qemu-system-aarch64');
    expect(valuesOf(a, '-M')).to.deep.equal(['virt']);
    expect(valuesOf(a, '-cpu')).to.deep.equal(['cortex-a57']);
    expect(valuesOf(a, '-bios')).to.deep.equal([]);
    // One UART (the console); the result channel is a named virtserialport on the socket.
    expect(valuesOf(a, '-serial')).to.deep.equal(['chardev:con']);
    expect(valuesOf(a, '-device')).to.include.members([
      'virtio-serial-pci,id=rpserial',
      'virtserialport,bus=rpserial.0,chardev=res,name=org.rootprobe.result',
    ]);
    expect(valuesOf(a, '-append')[0]).to.match(/^console=ttyAMA0 .*rootprobe\.port=vport:org\.rootprobe\.result/);
    expect(qemuArgs({ kernel: '/k/Image', accel: 'kvm', runDir: '/r', arch: arm64, qemuBinary: 'q' }, ch)).to.include('host');
  });

  it('riscv64: virt with OpenSBI as -bios, the 16550 console', () => {
    const a = qemuArgs({ kernel: '/k/Image', accel: 'tcg', runDir: '/r', arch: riscv64, qemuBinary: '/usr/bin/qemu-system-riscv64' }, ch);
    expect(valuesOf(a, '-bios')).to.deep.equal([riscv64.bios!.file]);
    expect(valuesOf(a, '-cpu')).to.deep.equal(['rv64']);
    expect(baseCmdline(riscv64)).to.match(/^console=ttyS0 .*rootprobe\.port=vport:org\.rootprobe\.result$/);
    expect(baseCmdline(archByName('x86_64'))).to.match(/rootprobe\.port=ttyS1$/);
  });

  it('arm64 and riscv64 boot without UEFI here: asking for it is a usage error', () => {
    expect(() =>
      qemuArgs(
        { kernel: '/k', accel: 'tcg', runDir: '/r', arch: riscv64, qemuBinary: 'q', firmware: 'uefi', uefi: { code: 'c', vars: 'v' } },
        ch,
      ),
    ).to.throw(UsageError, /riscv64 boots with bios, not uefi/);
  });
});

describe('arm64 and riscv64: the accelerator', () => {
  it('a guest of another architecture than the host runs under TCG, with the reason, and is never probed', async () => {
    const saved = process.env.ROOTPROBE_ACCEL;
    delete process.env.ROOTPROBE_ACCEL;
    try {
      // No kernel file at all: a probe would fail on it, so the answer came without one.
      const a = await detectAccel('/nonexistent/Image', { arch: process.arch === 'arm64' ? riscv64 : arm64 });
      expect(a.accel).to.equal('tcg');
      expect(a.reason).to.match(/guest on an? \S+ host \(KVM runs guests of the host's own architecture only\)/);
    } finally {
      if (saved !== undefined) process.env.ROOTPROBE_ACCEL = saved;
    }
  });

  it('deadlines under TCG grow by the architecture’s measured slowdown', () => {
    const saved = process.env.ROOTPROBE_TIMEOUT_FACTOR;
    delete process.env.ROOTPROBE_TIMEOUT_FACTOR;
    try {
      expect(timeoutFactor('tcg', archByName('x86_64'))).to.equal(5);
      expect(timeoutFactor('tcg', arm64)).to.equal(5 * arm64.tcgSlowdown!);
      expect(timeoutFactor('kvm', arm64)).to.equal(1);
    } finally {
      if (saved !== undefined) process.env.ROOTPROBE_TIMEOUT_FACTOR = saved;
    }
  });
});

describe('kernel modules: a soft dependency that names an alias', () => {
  let dir: string;
  before(function () {
    this.timeout(30_000);
    dir = mkdtempSync(path.join(os.tmpdir(), 'rp-mods-'));
    // Real ELF objects with a .modinfo section, as the kernel's modpost writes them.
    const mod = (rel: string, info: string[]): void => {
      const c = path.join(dir, 'src.c');
      writeFileSync(
        c,
        info
          .map((s, i) => `static const char m${i}[] __attribute__((section(".modinfo"), used, aligned(1))) = ${JSON.stringify(s)};`)
          .join('\n'),
      );
      mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
      execFileSync('gcc', ['-c', '-o', path.join(dir, rel), c]);
    };
    // riscv64 trixie: ext4 soft-depends on "crc32c", which crc32c_generic provides as an alias.
    mod('kernel/fs/ext4/ext4.ko', ['depends=jbd2', 'softdep=pre: crc32c']);
    mod('kernel/fs/jbd2/jbd2.ko', ['depends=']);
    mod('kernel/crypto/crc32c_generic.ko', ['alias=crypto-crc32c-generic', 'alias=crc32c', 'alias=crypto-crc32c', 'depends=']);
    mod('kernel/arch/crc32c_zzz.ko', ['alias=crc32c', 'depends=']);
    rmSync(path.join(dir, 'src.c'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('loads the generic module carrying the alias before the module that asks for it', async () => {
    const order = (await moduleClosure(dir, ['ext4'])).map((m) => m.name);
    expect(order).to.deep.equal(['crc32c_generic', 'jbd2', 'ext4']);
  });
});
