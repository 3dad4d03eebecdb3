/**
 * The pure parts of UEFI booting (QEMU's argv for OVMF and an ESP, the ESP's files, the BLS
 * entry, the UKI section layout, what the console says about the firmware), the real ESP
 * builder (mkfs.vfat + mtools, read back with mtools), the real UKI assembly (objcopy on
 * systemd's stub, read back with objdump), and the CLI's refusals before anything boots.
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { promises as fs, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { qemuArgs } from '../harness/qemu/command.ts';
import { x86_64 } from '../harness/arch/x86_64.ts';
import {
  blsEntryText,
  buildEsp,
  espFolders,
  espSizeKiB,
  fallbackPath,
  loaderConfText,
  systemdBootFiles,
  ukiFiles,
} from '../harness/firmware/esp.ts';
import { buildUki, objcopyArgs, readPe, ukiLayout, type PeInfo } from '../harness/firmware/uki.ts';
import {
  checkBoot,
  efiVarsEvidence,
  efiVarText,
  firmwareEvidence,
  firmwareFacts,
  guestFirmwareFacts,
  mergeFacts,
  parseBootPath,
  parseFirmware,
} from '../harness/firmware/uefi.ts';
import { UsageError } from '../harness/errors.ts';
import { cli } from './support/cli.ts';

const STUB = '/usr/lib/systemd/boot/efi/linuxx64.efi.stub';
const base = { kernel: '/k/bzImage', accel: 'tcg' as const, runDir: '/run/x', qemuBinary: '/usr/bin/qemu-system-x86_64', arch: x86_64 };
const channel = { resultSocket: '/tmp/r.sock' };

function valuesAfter(argv: string[], flag: string): string[] {
  return argv.flatMap((a, i) => (a === flag ? [argv[i + 1]] : []));
}

describe('qemuArgs for UEFI', () => {
  it('bios: no pflash, -kernel as before', () => {
    const argv = qemuArgs(base, channel);
    expect(argv.join(' ')).to.not.include('pflash');
    expect(valuesAfter(argv, '-kernel')).to.deep.equal(['/k/bzImage']);
  });

  it("uefi: the code read-only at unit 0, the run's variable store writable at unit 1, -kernel for the EFI stub", () => {
    const argv = qemuArgs(
      { ...base, firmware: 'uefi', uefi: { code: '/fw/CODE.fd', vars: '/run/x/efivars.fd' }, initrd: '/run/x/initrd.img' },
      channel,
    );
    const drives = valuesAfter(argv, '-drive');
    expect(drives[0]).to.equal('if=pflash,format=raw,unit=0,readonly=on,file=/fw/CODE.fd');
    expect(drives[1]).to.equal('if=pflash,format=raw,unit=1,file=/run/x/efivars.fd');
    expect(valuesAfter(argv, '-kernel')).to.deep.equal(['/k/bzImage']);
    expect(valuesAfter(argv, '-initrd')).to.deep.equal(['/run/x/initrd.img']);
    // The machine stays the architecture's: the same -M as BIOS.
    expect(valuesAfter(argv, '-M')).to.deep.equal([x86_64.machine]);
  });

  it('uefi from an ESP: no -kernel/-initrd/-append; the ESP after the disks, first in the boot order', () => {
    const argv = qemuArgs(
      {
        ...base,
        kernel: undefined,
        firmware: 'uefi',
        uefi: { code: '/c', vars: '/v' },
        disks: [{ path: '/d/root.img' }],
        esp: { path: '/run/x/esp.img', snapshot: true },
      },
      channel,
    );
    expect(argv).to.not.include('-kernel');
    expect(argv).to.not.include('-append');
    const devices = valuesAfter(argv, '-device');
    expect(devices).to.deep.equal(['virtio-blk-pci,drive=disk0', 'virtio-blk-pci,drive=esp,bootindex=0']);
    expect(valuesAfter(argv, '-drive').find((d) => d.includes('id=esp'))).to.match(/^file=\/run\/x\/esp\.img,.*snapshot=on/);
  });

  it('refuses an ESP under BIOS, a boot with neither kernel nor ESP, and uefi without its files', () => {
    expect(() => qemuArgs({ ...base, esp: { path: '/e' } }, channel)).to.throw(UsageError, /only with firmware uefi/);
    expect(() => qemuArgs({ ...base, kernel: undefined, firmware: 'uefi', uefi: { code: '/c', vars: '/v' } }, channel)).to.throw(
      /kernel image or an EFI system partition/,
    );
    expect(() => qemuArgs({ ...base, firmware: 'uefi' }, channel)).to.throw(/variable store/);
    expect(() => qemuArgs({ ...base, firmware: 'coreboot' as 'bios' }, channel)).to.throw(UsageError, /bios' or 'uefi/);
  });
});

describe('firmware and boot path options', () => {
  it('parses --firmware and --boot, and refuses bad values and a boot path BIOS cannot take', () => {
    expect(parseFirmware(undefined, x86_64)).to.equal('bios');
    expect(parseFirmware('uefi', x86_64)).to.equal('uefi');
    expect(() => parseFirmware('efi', x86_64)).to.throw(UsageError, /bios or uefi/);
    expect(() => parseFirmware('uefi', { ...x86_64, firmware: ['bios'] })).to.throw(UsageError, /boots with bios/);
    expect(parseBootPath(undefined)).to.equal('kernel');
    expect(() => parseBootPath('grub')).to.throw(UsageError, /kernel, systemd-boot, uki/);
    expect(() => checkBoot('bios', 'uki', x86_64)).to.throw(UsageError, /needs --firmware uefi/);
    expect(() => checkBoot('uefi', 'uki', x86_64)).to.not.throw();
  });

  it('a missing OVMF is a setup error naming the package', () => {
    const arch = { ...x86_64, uefi: { ...x86_64.uefi!, code: ['/nonexistent/CODE.fd'], vars: ['/nonexistent/VARS.fd'] } };
    expect(() => checkBoot('uefi', 'kernel', arch)).to.throw(/Debian's ovmf package.*doctor --install/);
  });

  it('the CLI exits 2 on them before anything boots', async () => {
    const a = await cli(['run', 'switch_root', '--firmware', 'efi']);
    expect(a.code).to.equal(2);
    expect(a.stderr).to.match(/--firmware is bios or uefi, not 'efi'/);
    const b = await cli(['run', 'switch_root', '--boot', 'systemd-boot']);
    expect(b.code).to.equal(2);
    expect(b.stderr).to.match(/--boot systemd-boot needs --firmware uefi/);
    const c = await cli(['build', 'switch_root', '--out', path.join(os.tmpdir(), 'never-made'), '--boot', 'grub']);
    expect(c.code).to.equal(2);
    expect(c.stderr).to.match(/--boot is kernel, systemd-boot, uki/);
  });
});

describe('the ESP and its Boot Loader Specification entry', () => {
  it('lays out systemd-boot at the fallback path, loader.conf and one entry naming the kernel, initrd and command line', () => {
    const files = systemdBootFiles({
      efiArch: 'x64',
      loader: '/sd/systemd-bootx64.efi',
      kernel: '/k/vmlinuz',
      initrd: '/r/initrd.img',
      cmdline: 'console=ttyS0 root=/dev/vda',
      title: 't',
    });
    expect(files.map((f) => f.path)).to.deep.equal([
      'EFI/BOOT/BOOTX64.EFI',
      'loader/loader.conf',
      'loader/entries/rootprobe.conf',
      'rootprobe/linux',
      'rootprobe/initrd',
    ]);
    expect(files[0].source).to.equal('/sd/systemd-bootx64.efi');
    expect(files[2].text).to.equal(
      'title t\nsort-key rootprobe\nlinux /rootprobe/linux\ninitrd /rootprobe/initrd\noptions console=ttyS0 root=/dev/vda\n',
    );
    expect(files[1].text).to.equal(loaderConfText('rootprobe'));
    expect(loaderConfText('rootprobe')).to.match(/^default rootprobe\.conf\ntimeout 0\n/);
    expect(espFolders(files)).to.deep.equal(['EFI', 'loader', 'rootprobe', 'EFI/BOOT', 'loader/entries']);
    expect(fallbackPath('aa64')).to.equal('EFI/BOOT/BOOTAA64.EFI');
    expect(ukiFiles('x64', '/u.efi')).to.deep.equal([{ path: 'EFI/BOOT/BOOTX64.EFI', source: '/u.efi' }]);
  });

  it('an entry without initramfs has no initrd line; a newline in the options is refused', () => {
    expect(blsEntryText({ id: 'a', title: 'a', linux: '/l', initrd: [], options: 'x' })).to.not.include('initrd');
    expect(() => blsEntryText({ id: 'a', title: 'a', linux: '/l', initrd: [], options: 'x\ny' })).to.throw(/newline/);
  });

  it('sizes the FAT image for its files (at least 34 MiB, whole MiB)', () => {
    expect(espSizeKiB(0)).to.equal(34 * 1024);
    const k = espSizeKiB(100 * 2 ** 20);
    expect(k % 1024).to.equal(0);
    expect(k * 1024).to.be.greaterThan(110 * 2 ** 20);
  });

  it('builds a real FAT image with mkfs.vfat and mtools, no mount, and mtools reads every file back', async function () {
    this.timeout(60_000);
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rootprobe-esp-test-'));
    try {
      const kernel = path.join(dir, 'vmlinuz');
      await fs.writeFile(kernel, Buffer.alloc(300_000, 7));
      const files = systemdBootFiles({
        efiArch: 'x64',
        loader: '/usr/lib/systemd/boot/efi/systemd-bootx64.efi',
        kernel,
        cmdline: 'console=ttyS0',
        title: 'test',
      });
      const img = path.join(dir, 'esp.img');
      await buildEsp(files, img);
      const env = { ...process.env, MTOOLS_SKIP_CHECK: '1' };
      expect(execFileSync('file', ['-b', img], { encoding: 'utf8' })).to.match(/FAT \(32 bit\)/);
      const entry = execFileSync('mtype', ['-i', img, '::/loader/entries/rootprobe.conf'], { env, encoding: 'utf8' });
      expect(entry).to.equal(files[2].text);
      const loader = execFileSync('mtype', ['-i', img, '::/EFI/BOOT/BOOTX64.EFI'], { env, maxBuffer: 1 << 24 });
      expect(Buffer.compare(loader, readFileSync('/usr/lib/systemd/boot/efi/systemd-bootx64.efi'))).to.equal(0);
      const linux = execFileSync('mtype', ['-i', img, '::/rootprobe/linux'], { env, maxBuffer: 1 << 24 });
      expect(linux.length).to.equal(300_000);
      expect((await fs.readdir(dir)).sort()).to.deep.equal(['esp.img', 'vmlinuz']); // nothing left beside it
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});

describe('unified kernel images', () => {
  const fake: PeInfo = {
    magic: 0x20b,
    imageBase: 0x10000000n,
    sectionAlignment: 0x1000,
    fileAlignment: 0x200,
    sizeOfImage: 0x5000,
    sections: [
      { name: '.text', virtualAddress: 0x1000, virtualSize: 0x2345, rawSize: 0x2400 },
      { name: '.data', virtualAddress: 0x4000, virtualSize: 0x800, rawSize: 0xa00 },
    ],
  };

  it('places each section after the stub, at its SectionAlignment, without overlap', () => {
    const placed = ukiLayout(fake, [
      { section: '.cmdline', size: 10 },
      { section: '.initrd', size: 0x1001 },
      { section: '.linux', size: 0x3000 },
    ]);
    expect(placed.map((p) => p.rva)).to.deep.equal([0x5000, 0x6000, 0x8000]);
    expect(placed.map((p) => p.vma)).to.deep.equal([0x10005000n, 0x10006000n, 0x10008000n]);
    expect(() => ukiLayout(fake, [{ section: '.data', size: 1 }])).to.throw(/already has a \.data/);
    expect(objcopyArgs([{ ...placed[0], file: '/c' }], '/stub', '/out')).to.deep.equal([
      '--add-section',
      '.cmdline=/c',
      '--set-section-flags',
      '.cmdline=data,readonly',
      '--change-section-vma',
      '.cmdline=0x10005000',
      '/stub',
      '/out',
    ]);
  });

  it("reads systemd's real stub and places the first section past its last one", () => {
    const pe = readPe(readFileSync(STUB));
    expect(pe.magic).to.equal(0x20b);
    expect(pe.sections.map((s) => s.name)).to.include('.sdmagic');
    const [first] = ukiLayout(pe, [{ section: '.linux', size: 1 }]);
    const end = Math.max(...pe.sections.map((s) => s.virtualAddress + s.virtualSize));
    expect(first.rva).to.be.at.least(end);
    expect(first.rva % pe.sectionAlignment).to.equal(0);
    expect(() => readPe(Buffer.from('not a PE image at all, not at all, not at all, not at all, nope'))).to.throw(/not a PE image/);
  });

  it('assembles one with objcopy whose sections objdump reads where the layout put them, holding the inputs', async function () {
    this.timeout(60_000);
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rootprobe-uki-test-'));
    try {
      const kernel = path.join(dir, 'k');
      const initrd = path.join(dir, 'i');
      await fs.writeFile(kernel, Buffer.alloc(70_001, 1));
      await fs.writeFile(initrd, Buffer.alloc(5000, 2));
      const built = await buildUki(
        { kernel, initrd, cmdline: 'console=ttyS0 quiet', release: '6.1.0-test', efiArch: 'x64' },
        path.join(dir, 'uki.efi'),
        dir,
      );
      if (built.tool !== 'objcopy') this.skip();
      const heads = execFileSync('objdump', ['-h', built.path], { encoding: 'utf8' });
      for (const name of ['.osrel', '.cmdline', '.uname', '.initrd', '.linux'])
        expect(heads).to.match(new RegExp(`\\s${name.replace('.', '\\.')}\\s`));
      const pe = readPe(readFileSync(built.path));
      const sec = (n: string) => pe.sections.find((s) => s.name === n)!;
      expect(sec('.linux').virtualSize).to.equal(70_001);
      expect(sec('.initrd').virtualSize).to.equal(5000);
      const sorted = [...pe.sections].sort((a, b) => a.virtualAddress - b.virtualAddress);
      for (let i = 1; i < sorted.length; i++)
        expect(sorted[i].virtualAddress).to.be.at.least(sorted[i - 1].virtualAddress + sorted[i - 1].virtualSize);
      const cmd = execFileSync('objcopy', ['-O', 'binary', '--only-section=.cmdline', built.path, path.join(dir, 'c.out')]);
      expect(cmd.length).to.equal(0);
      expect(await fs.readFile(path.join(dir, 'c.out'), 'utf8')).to.equal('console=ttyS0 quiet');
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});

describe('what the console says about the firmware', () => {
  const uefiConsole = [
    '[    0.000000] Linux version 6.1.0-50-cloud-amd64 ...',
    '[    0.000000] Command line: initrd=\\rootprobe\\initrd console=ttyS0 panic=-1',
    '[    0.000000] efi: EFI v2.70 by EDK II',
    '[    0.000000] efi: SMBIOS=0xf520000 ACPI=0xf77d000',
  ].join('\r\n');

  it('finds the EFI line and the command line, and says what was added', () => {
    const f = firmwareFacts(uefiConsole);
    expect(f).to.deep.equal({ efi: 'EFI v2.70 by EDK II', cmdline: 'initrd=\\rootprobe\\initrd console=ttyS0 panic=-1' });
    const ev = firmwareEvidence('uefi', 'console=ttyS0 panic=-1', f);
    expect(ev.problem).to.equal(undefined);
    expect(ev.evidence).to.deep.equal([
      'firmware: EFI v2.70 by EDK II',
      'command line: the kernel got "initrd=\\\\rootprobe\\\\initrd console=ttyS0 panic=-1"; added: initrd=\\rootprobe\\initrd',
    ]);
    expect(firmwareEvidence('uefi', 'initrd=\\rootprobe\\initrd console=ttyS0 panic=-1', f).evidence[1]).to.equal(
      'command line: as planned',
    );
  });

  it('a uefi run whose kernel printed no EFI line is a problem; so is a bios run that did', () => {
    const bios = firmwareFacts('[    0.000000] Command line: console=ttyS0\n');
    expect(bios.efi).to.equal(undefined);
    expect(firmwareEvidence('uefi', 'console=ttyS0', bios).problem).to.match(/neither the guest .* nor the console/);
    expect(firmwareEvidence('bios', 'console=ttyS0', firmwareFacts(uefiConsole)).problem).to.match(/started by EFI v2.70/);
    expect(firmwareEvidence('bios', 'console=ttyS0', bios)).to.deep.equal({ evidence: [] });
  });
});

describe("the loader's EFI variables the probe read", () => {
  // As efivarfs gives them: 4 bytes of attributes, then the value (systemd-boot writes UTF-16 text).
  const utf16 = (t: string): Buffer => Buffer.concat([Buffer.from([6, 0, 0, 0]), Buffer.from(`${t}\0`, 'utf16le')]);
  const G = '4a67b082-0a4c-41cf-b6c7-440b29bb8c4f';

  it('decodes UTF-16 text and shows anything else as hex', () => {
    expect(efiVarText(utf16('rootprobe.conf'))).to.equal('rootprobe.conf');
    expect(efiVarText(Buffer.from([6, 0, 0, 0, 0x3f, 0x00, 0x00, 0x00, 0x01, 0x00]))).to.equal('3f000000' + '0100');
  });

  it('says which entry systemd-boot selected and which stub ran, from the first stage that has them', () => {
    const stages: Array<{ name: string; files: Record<string, Buffer> }> = [
      {
        name: 'initramfs',
        files: {
          [`/sys/firmware/efi/efivars/LoaderImageIdentifier-${G}`]: utf16('\\EFI\\BOOT\\BOOTX64.EFI'),
          [`/sys/firmware/efi/efivars/LoaderEntrySelected-${G}`]: utf16('rootprobe.conf'),
          [`/sys/firmware/efi/efivars/LoaderInfo-${G}`]: utf16('systemd-boot 252.39-1~deb12u2'),
          [`/sys/firmware/efi/efivars/LoaderFeatures-${G}`]: Buffer.from([6, 0, 0, 0, 0x7f, 0, 0, 0, 0, 0, 0, 0]),
        },
      },
      { name: 'realroot', files: { [`/sys/firmware/efi/efivars/StubInfo-${G}`]: utf16('never read') } },
    ];
    expect(efiVarsEvidence(stages)).to.deep.equal([
      'efivars (stage initramfs): LoaderEntrySelected=rootprobe.conf, LoaderInfo=systemd-boot 252.39-1~deb12u2, LoaderImageIdentifier=\\EFI\\BOOT\\BOOTX64.EFI',
    ]);
    expect(efiVarsEvidence([{ name: 'initramfs', files: {} }])).to.deep.equal([
      'efivars: no Loader* or Stub* variables (no boot loader or stub set any)',
    ]);
  });
});

describe("the guest's own word on the firmware", () => {
  it('takes UEFI and the command line from the probe when the console dropped bytes (as seen under OVMF on a busy host)', () => {
    // A real garbled console of a pivot_root run under OVMF.
    const garbled = firmwareFacts(
      '[    0.000000] Command line: console=ttyS0 panic=-1 oops=paner_check rootprobe.port=ttyS1\n[    0.000000] efi: EFI .70 by EDK II\n',
    );
    expect(garbled.efi).to.equal(undefined);
    const guest = guestFirmwareFacts([
      {
        files: {
          '/proc/cmdline': Buffer.from('console=ttyS0 panic=-1 oops=panic no_timer_check rootprobe.port=ttyS1\n'),
          '/sys/firmware/efi/fw_platform_size': Buffer.from('64\n'),
        },
      },
    ]);
    expect(guest).to.deep.equal({ efiBits: '64', cmdline: 'console=ttyS0 panic=-1 oops=panic no_timer_check rootprobe.port=ttyS1' });
    const facts = mergeFacts(garbled, guest);
    const ev = firmwareEvidence('uefi', 'console=ttyS0 panic=-1 oops=panic no_timer_check rootprobe.port=ttyS1', facts);
    expect(ev.problem).to.equal(undefined);
    expect(ev.evidence).to.deep.equal([
      "firmware: UEFI (64-bit, from the guest's /sys/firmware/efi; the console's efi: line was garbled)",
      'command line: as planned',
    ]);
    // A clean console line names the firmware; the guest still decides the command line.
    expect(mergeFacts({ efi: 'EFI v2.70 by EDK II', cmdline: 'x' }, guest).efi).to.equal('EFI v2.70 by EDK II');
    expect(mergeFacts({}, {}).efi).to.equal(undefined);
  });
});
