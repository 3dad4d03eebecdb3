/**
 * External mode with a whole ESP made outside rootprobe (`run external --esp IMAGE`): the
 * entry parsing and editing as pure functions, the refusals before anything boots, and (@boot)
 * an ESP built here with plain mkfs.vfat + mmd + mcopy holding systemd-boot, a loader.conf and a
 * Boot Loader Specification entry for a stand-in distro's kernel and initramfs: booted under
 * OVMF through the user's own systemd-boot, the probe in through one more initrd line on a
 * sparse copy, the user's ESP and disk byte-identical afterwards.
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { promises as fs, mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildExt4 } from '../harness/image/disk.ts';
import { buildCpioSegment } from '../harness/image/initramfs.ts';
import { ImageTree } from '../harness/image/tree.ts';
import { sha256File } from '../harness/cache.ts';
import { checkFeatures } from '../kernels/config.ts';
import { baseInitramfs, baseRootDisk } from '../images/base.ts';
import type { ExternalRecord } from '../harness/external/run.ts';
import { chooseEntry, loaderDefault, parseBlsEntry, probedEntryText, SEGMENT_ON_ESP } from '../harness/firmware/user-esp.ts';
import { UsageError } from '../harness/errors.ts';
import { testKernel } from './support/kernel.ts';
import { cli } from './support/cli.ts';
import { reportSchemaErrors } from './support/report-schema.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const fx = path.join(root, 'test/fixtures/external');
const SYSTEMD_BOOT = '/usr/lib/systemd/boot/efi/systemd-bootx64.efi';
const env = { ...process.env, MTOOLS_SKIP_CHECK: '1' };

describe('run external --esp: a BLS entry read and edited', () => {
  const entry =
    '# distro\ntitle Fake Distro\nlinux /EFI/fake/vmlinuz\ninitrd /EFI/fake/ucode.img\ninitrd /EFI/fake/initrd.img\noptions root=/dev/vda\noptions quiet\n';

  it('parses every initrd in order and joins the options lines', () => {
    const e = parseBlsEntry(entry);
    expect(e.linux).to.equal('/EFI/fake/vmlinuz');
    expect(e.initrd).to.deep.equal(['/EFI/fake/ucode.img', '/EFI/fake/initrd.img']);
    expect(e.options).to.deep.equal(['root=/dev/vda', 'quiet']);
    expect(e.title).to.equal('Fake Distro');
  });

  it("puts rootprobe's initrd after the user's and one options line with the planned command line", () => {
    const t = probedEntryText(entry, 'root=/dev/vda quiet console=ttyS0 rdinit=/.rootprobe/init');
    expect(t.split('\n')).to.deep.equal([
      '# distro',
      'title Fake Distro',
      'linux /EFI/fake/vmlinuz',
      'initrd /EFI/fake/ucode.img',
      'initrd /EFI/fake/initrd.img',
      `initrd ${SEGMENT_ON_ESP}`,
      'options root=/dev/vda quiet console=ttyS0 rdinit=/.rootprobe/init',
      '',
    ]);
    expect(probedEntryText('linux /k\n', 'x')).to.equal(`linux /k\ninitrd ${SEGMENT_ON_ESP}\noptions x\n`);
  });

  it("chooses the entry loader.conf's default names (a glob, with or without .conf), else the only one, else refuses", () => {
    expect(loaderDefault('timeout 3\ndefault fake-*\n')).to.equal('fake-*');
    expect(loaderDefault('timeout 3\n')).to.equal(undefined);
    expect(chooseEntry(['a.conf', 'fake-1.conf', 'fake-2.conf'], 'fake-*', 'e.img')).to.equal('fake-2.conf');
    expect(chooseEntry(['a.conf', 'b.conf'], 'a.conf', 'e.img')).to.equal('a.conf');
    expect(chooseEntry(['a.conf', 'b.conf'], 'b', 'e.img')).to.equal('b.conf');
    expect(chooseEntry(['only.conf'], undefined, 'e.img')).to.equal('only.conf');
    expect(() => chooseEntry(['a.conf', 'b.conf'], undefined, 'e.img')).to.throw(
      UsageError,
      /2 entries \(a\.conf, b\.conf\) and no default/,
    );
    expect(() => chooseEntry(['a.conf'], 'zz', 'e.img')).to.throw(UsageError, /default 'zz' names none/);
    expect(() => chooseEntry([], undefined, 'e.img')).to.throw(UsageError, /no Boot Loader Specification entries/);
  });
});

describe('external mode: a whole ESP made outside rootprobe, through its own systemd-boot @boot', function () {
  this.timeout(15 * 60_000);
  let work: string;
  before(() => {
    work = mkdtempSync(path.join(os.tmpdir(), 'rootprobe-uefi-esp-'));
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  /** An ESP the way a distro's installer leaves it: made with mkfs.vfat and mtools, not by rootprobe. */
  function makeEsp(out: string, files: Record<string, string>): void {
    execFileSync('mkfs.vfat', ['-C', '-F', '32', '-n', 'DISTROESP', out, String(64 * 1024)], { env });
    const dirs = new Set<string>();
    for (const p of Object.keys(files)) {
      const parts = p.split('/').slice(0, -1);
      for (let i = 1; i <= parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
    }
    for (const d of [...dirs].sort((a, b) => a.split('/').length - b.split('/').length))
      execFileSync('mmd', ['-i', out, `::/${d}`], { env });
    for (const [to, from] of Object.entries(files)) execFileSync('mcopy', ['-i', out, from, `::/${to}`], { env });
  }

  /** A stand-in distro: its initramfs-tools-like initramfs and its root disk (made once). */
  let distro: { initrd: string; img: string } | undefined;
  async function fakeDistro(): Promise<{ initrd: string; img: string }> {
    if (distro) return distro;
    const main = new ImageTree('fake distro');
    main.merge(baseInitramfs());
    const { modules } = checkFeatures(testKernel, ['initrd', 'proc', 'sysfs', 'devtmpfs', 'virtio-blk', 'ext4'], 'fakedistro');
    // efivarfs too (a module on Debian's kernel): the probe reads systemd-boot's variables from it.
    const efivarfs = testKernel.config?.get('CONFIG_EFIVAR_FS') === 'm' ? ['efivarfs'] : [];
    main.kernelModules(testKernel, [...modules, ...efivarfs]);
    main.script('/init', path.join(fx, 'distro-init.sh'));
    main.file('/scripts/init-bottom/ORDER', '/scripts/init-bottom/nothing "$@"\n[ -e /conf/param.conf ] && . /conf/param.conf\n');
    main.file('/scripts/init-bottom/nothing', '#!/bin/sh\ntrue\n', 0o755);
    main.dir('/conf');
    const initrd = path.join(work, 'initrd.img');
    await fs.copyFile(await buildCpioSegment(main, { compress: 'gzip' }), initrd);
    const disk = baseRootDisk();
    disk.script('/sbin/init', path.join(fx, 'root-init.sh'));
    disk.dir('/mnt');
    const img = path.join(work, 'root.img');
    await fs.copyFile(await buildExt4(disk, { sizeMiB: 32 }), img);
    distro = { initrd, img };
    return distro;
  }

  it('refuses --esp with --kernel, a file that is no FAT, an ESP without entries, an entry naming a missing file, before anything boots', async () => {
    const notFat = path.join(work, 'not.img');
    await fs.writeFile(notFat, Buffer.alloc(1 << 20));
    const a = await cli(['run', 'external', '--esp', notFat, '--kernel', 'debian/bookworm']);
    expect(a.code).to.equal(2);
    expect(a.stderr).to.match(/without --initramfs, --kernel and --uki/);
    const b = await cli(['run', 'external', '--esp', notFat]);
    expect(b.code, b.stderr).to.equal(2);
    expect(b.stderr).to.match(/not a FAT file system mtools can read/);
    const conf = path.join(work, 'loader.conf');
    await fs.writeFile(conf, 'timeout 0\n');
    const empty = path.join(work, 'empty.img');
    makeEsp(empty, { 'EFI/BOOT/BOOTX64.EFI': SYSTEMD_BOOT, 'loader/loader.conf': conf });
    const c = await cli(['run', 'external', '--esp', empty]);
    expect(c.code, c.stderr).to.equal(2);
    expect(c.stderr).to.match(/no Boot Loader Specification entries/);
    const bad = path.join(work, 'bad.conf');
    await fs.writeFile(bad, 'title x\nlinux /vmlinuz\ninitrd /gone.img\noptions root=/dev/vda\n');
    const missing = path.join(work, 'missing.img');
    makeEsp(missing, { 'loader/loader.conf': conf, 'loader/entries/x.conf': bad, vmlinuz: testKernel.vmlinuz });
    const d = await cli(['run', 'external', '--esp', missing]);
    expect(d.code, d.stderr).to.equal(2);
    expect(d.stderr).to.match(/names \/gone\.img, which the ESP does not hold/);
    const left = (await fs.readdir(os.tmpdir())).filter((n) => n.startsWith('rootprobe-esp-'));
    expect(left, 'temp folders left').to.deep.equal([]);
  });

  it("boots the user's ESP with the probe added: their systemd-boot picks their entry, initramfs and realroot of its flow, files unchanged", async () => {
    const { initrd, img } = await fakeDistro();
    const conf = path.join(work, 'loader.conf');
    await fs.writeFile(conf, 'default fake-*\ntimeout 0\n');
    const entry = path.join(work, 'fake-6.1.conf');
    await fs.writeFile(entry, 'title Fake Distro\nlinux /fake/vmlinuz\ninitrd /fake/initrd.img\noptions root=/dev/vda\n');
    const other = path.join(work, 'other.conf');
    await fs.writeFile(other, 'title Not this one\nlinux /fake/vmlinuz\noptions root=/dev/vdz\n');
    const esp = path.join(work, 'esp.img');
    makeEsp(esp, {
      'EFI/BOOT/BOOTX64.EFI': SYSTEMD_BOOT,
      'loader/loader.conf': conf,
      'loader/entries/fake-6.1.conf': entry,
      'loader/entries/other.conf': other,
      'fake/vmlinuz': testKernel.vmlinuz,
      'fake/initrd.img': initrd,
    });
    const hashes = [await sha256File(esp), await sha256File(img)];
    const json = path.join(work, 'esp.json');
    const r = await cli(
      ['run', 'external', '--esp', esp, '--disk', img, '--json', json, '--artifacts', path.join(work, 'art'), '--timeout', '60', '--keep'],
      { env: { TMPDIR: work } },
    );
    expect(r.code, r.stdout + r.stderr).to.equal(0);
    expect(r.stdout)
      .to.match(/^PASSED external on esp:/m)
      .and.match(/uefi via esp/);
    const report = JSON.parse(await fs.readFile(json, 'utf8')) as { runs: ExternalRecord[] };
    expect(reportSchemaErrors(report)).to.deep.equal([]); // the one report shape (schemas/report.schema.json)
    const rec = report.runs[0]!;
    expect(rec.firmware).to.equal('uefi');
    expect(rec.boot).to.equal('esp');
    expect(rec.stagesReported).to.deep.equal(['initramfs', 'realroot']);
    expect(rec.behaviours).to.include('generator: initramfs-tools');
    expect(rec.evidence.find((e) => e.startsWith('esp:')))
      .to.include('entry loader/entries/fake-6.1.conf')
      .and.include(`${SEGMENT_ON_ESP} (rootprobe's)`);
    // The user's systemd-boot chose the user's entry: its own word, over the hash-checked channel.
    const vars = rec.evidence.find((e) => e.startsWith('efivars (stage initramfs)'));
    expect(vars, rec.evidence.join('\n'))
      .to.include('LoaderEntrySelected=fake-6.1.conf')
      .and.match(/LoaderInfo=systemd-boot/);
    // systemd-boot names each initrd of the entry on the command line it passes (the kernel's stub loads them from the ESP):
    // the user's, then rootprobe's.
    expect(rec.evidence.find((e) => e.startsWith('command line:'))).to.match(
      /; added: initrd=\\fake\\initrd\.img initrd=\\rootprobe\\rootprobe\.img$/,
    );
    expect(rec.inputs.map((i) => i.path)).to.deep.equal([esp, img]);
    for (const i of rec.inputs) expect(i.after, i.path).to.equal(i.before);
    expect([await sha256File(esp), await sha256File(img)]).to.deep.equal(hashes);
    // --keep keeps the copy as booted: the entry with rootprobe's initrd line, and qemu.sh attaches that copy.
    const art = rec.artifacts!.dir;
    const kept = execFileSync('mtype', ['-i', path.join(art, 'esp.img'), '::/loader/entries/fake-6.1.conf'], { env, encoding: 'utf8' });
    expect(kept).to.match(
      /^initrd \/fake\/initrd\.img\ninitrd \/rootprobe\/rootprobe\.img\noptions console=ttyS0 .*root=\/dev\/vda rdinit=\/\.rootprobe\/init rootprobe\.efi$/m,
    );
    expect(await fs.readFile(path.join(art, 'qemu.sh'), 'utf8')).to.match(/esp\.img,format=raw,if=none,id=esp,.*snapshot=on/);
    const left = (await fs.readdir(work)).filter((n) => n.startsWith('rootprobe-'));
    expect(left, 'temp folders left').to.deep.equal([]);
  });

  it('boots a type #2 entry (a UKI in EFI/Linux made with objcopy) through their systemd-boot: the UKI rebuilt on the copy with the probe after its .initrd', async () => {
    const { initrd, img } = await fakeDistro();
    const cmdline = path.join(work, 'uki-cmdline.txt');
    await fs.writeFile(cmdline, 'root=/dev/vda');
    const osrel = path.join(work, 'os-release');
    await fs.writeFile(osrel, 'ID=fakedistro\n');
    const uki = path.join(work, 'fake.efi');
    // The fixed section addresses of systemd's older documentation, as a distro's script might.
    execFileSync('objcopy', [
      ...['--add-section', `.osrel=${osrel}`, '--change-section-vma', '.osrel=0x20000'],
      ...['--add-section', `.cmdline=${cmdline}`, '--change-section-vma', '.cmdline=0x30000'],
      ...['--add-section', `.linux=${testKernel.vmlinuz}`, '--change-section-vma', '.linux=0x2000000'],
      ...['--add-section', `.initrd=${initrd}`, '--change-section-vma', '.initrd=0x3000000'],
      '/usr/lib/systemd/boot/efi/linuxx64.efi.stub',
      uki,
    ]);
    const conf = path.join(work, 'loader2.conf');
    await fs.writeFile(conf, 'timeout 0\n');
    const esp = path.join(work, 'esp2.img');
    makeEsp(esp, { 'EFI/BOOT/BOOTX64.EFI': SYSTEMD_BOOT, 'loader/loader.conf': conf, 'EFI/Linux/fake.efi': uki });
    const hashes = [await sha256File(esp), await sha256File(img)];
    const json = path.join(work, 'esp2.json');
    const r = await cli(
      ['run', 'external', '--esp', esp, '--disk', img, '--json', json, '--artifacts', path.join(work, 'art2'), '--timeout', '60'],
      { env: { TMPDIR: work } },
    );
    expect(r.code, r.stdout + r.stderr).to.equal(0);
    const rec = (JSON.parse(await fs.readFile(json, 'utf8')) as { runs: ExternalRecord[] }).runs[0]!;
    expect(rec.boot).to.equal('esp');
    expect(rec.stagesReported).to.deep.equal(['initramfs', 'realroot']);
    expect(rec.evidence.find((e) => e.startsWith('esp:'))).to.match(/entry EFI\/Linux\/fake\.efi rebuilt \((ukify|objcopy)\)/);
    const vars = rec.evidence.find((e) => e.startsWith('efivars (stage initramfs)'));
    expect(vars, rec.evidence.join('\n'))
      .to.include('LoaderEntrySelected=fake.efi')
      .and.match(/LoaderInfo=systemd-boot/)
      .and.match(/StubInfo=systemd-stub/);
    expect(
      rec.evidence.find((e) => e.startsWith('command line:')),
      rec.evidence.join('\n'),
    ).to.equal('command line: as planned');
    for (const i of rec.inputs) expect(i.after, i.path).to.equal(i.before);
    expect([await sha256File(esp), await sha256File(img)]).to.deep.equal(hashes);
    expect((await fs.readdir(work)).filter((n) => n.startsWith('rootprobe-'))).to.deep.equal([]);
  });
});
