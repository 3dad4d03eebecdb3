/**
 * External mode with a unified kernel image made outside rootprobe (@boot): a stand-in
 * distro's kernel, initramfs and command line put on systemd's stub by plain objcopy with the
 * fixed section addresses of systemd's own older documentation, then `run external --uki`:
 * the UKI taken apart, rootprobe's segment after its .initrd, booted under OVMF from an ESP;
 * the user's UKI and disk byte-identical afterwards.
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
import { testKernel } from './support/kernel.ts';
import { cli } from './support/cli.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const fx = path.join(root, 'test/fixtures/external');
const STUB = '/usr/lib/systemd/boot/efi/linuxx64.efi.stub';

describe('external mode: a UKI made outside rootprobe, under UEFI @boot', function () {
  this.timeout(15 * 60_000);
  let work: string;
  before(() => {
    work = mkdtempSync(path.join(os.tmpdir(), 'rootprobe-uefi-ext-'));
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  it('refuses --uki with --kernel, and a file that is no UKI, before anything boots', async () => {
    const notUki = path.join(work, 'not.efi');
    await fs.writeFile(notUki, 'hello');
    const a = await cli(['run', 'external', '--uki', notUki, '--kernel', 'debian/bookworm']);
    expect(a.code).to.equal(2);
    expect(a.stderr).to.match(/without --initramfs and --kernel/);
    const b = await cli(['run', 'external', '--uki', notUki]);
    expect(b.code, b.stderr).to.equal(2);
    expect(b.stderr).to.match(/not a unified kernel image/);
    const c = await cli(['run', 'external', '--uki', STUB]);
    expect(c.code, c.stderr).to.equal(2);
    expect(c.stderr).to.match(/without a \.linux section/);
  });

  it("boots the user's UKI with the probe added: initramfs and realroot of its own flow, the command line of its .cmdline, files unchanged", async () => {
    const main = new ImageTree('fake distro');
    main.merge(baseInitramfs());
    const { modules } = checkFeatures(testKernel, ['initrd', 'proc', 'sysfs', 'devtmpfs', 'virtio-blk', 'ext4'], 'fakedistro');
    if (modules.length) main.kernelModules(testKernel, modules);
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
    const cmdline = path.join(work, 'cmdline.txt');
    await fs.writeFile(cmdline, 'root=/dev/vda');
    const osrel = path.join(work, 'os-release');
    await fs.writeFile(osrel, 'ID=fakedistro\n');
    const uki = path.join(work, 'distro.efi');
    execFileSync('objcopy', [
      '--add-section',
      `.osrel=${osrel}`,
      '--change-section-vma',
      '.osrel=0x20000',
      '--add-section',
      `.cmdline=${cmdline}`,
      '--change-section-vma',
      '.cmdline=0x30000',
      '--add-section',
      `.linux=${testKernel.vmlinuz}`,
      '--change-section-vma',
      '.linux=0x2000000',
      '--add-section',
      `.initrd=${initrd}`,
      '--change-section-vma',
      '.initrd=0x3000000',
      STUB,
      uki,
    ]);
    const hashes = [await sha256File(uki), await sha256File(img)];
    const json = path.join(work, 'uki.json');
    const r = await cli(
      ['run', 'external', '--uki', uki, '--disk', img, '--json', json, '--artifacts', path.join(work, 'art'), '--timeout', '60'],
      {
        env: { TMPDIR: path.join(work) },
      },
    );
    expect(r.code, r.stdout + r.stderr).to.equal(0);
    expect(r.stdout)
      .to.match(/^PASSED external on uki:/m)
      .and.match(/tcg|kvm/)
      .and.match(/uefi via uki/);
    const rec = (JSON.parse(await fs.readFile(json, 'utf8')) as { runs: ExternalRecord[] }).runs[0]!;
    expect(rec.firmware).to.equal('uefi');
    expect(rec.boot).to.equal('uki');
    expect(rec.stagesReported).to.deep.equal(['initramfs', 'realroot']);
    expect(rec.behaviours).to.include('generator: initramfs-tools');
    expect(rec.evidence.find((e) => e.startsWith('boot:'))).to.include(`from ${uki}`);
    expect(rec.evidence.find((e) => e.startsWith('firmware:'))).to.match(/^firmware: (EFI v2\.70 by EDK II|UEFI \(64-bit)/);
    expect(rec.evidence).to.include('command line: as planned');
    expect(rec.inputs.map((i) => i.path)).to.deep.equal([uki, img]);
    for (const i of rec.inputs) expect(i.after, i.path).to.equal(i.before);
    expect([await sha256File(uki), await sha256File(img)]).to.deep.equal(hashes);
    const left = (await fs.readdir(work)).filter((n) => n.startsWith('rootprobe-')); // tsx's own cache (tsx-N) aside
    expect(left, 'temp folders left').to.deep.equal([]);
  });
});
