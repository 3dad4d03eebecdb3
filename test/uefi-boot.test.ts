/**
 * UEFI boots of real kernels under real OVMF (@boot): every scenario with --firmware uefi (the
 * kernel through its EFI stub), switch_root through systemd-boot from a rootless ESP and from a
 * UKI rootprobe assembled, and `build --firmware uefi --boot uki`. The firmware's variable store
 * template is never written, and nothing is left in TMPDIR.
 */
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { promises as fs, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { cli, qemuPids, type Ran } from './support/cli.ts';
import { uefiFiles } from '../harness/firmware/uefi.ts';
import { x86_64 } from '../harness/arch/x86_64.ts';
import type { RunRecord } from '../harness/run/record.ts';
import { loadScenarios } from '../scenarios/index.ts';

const sha = (p: string): string => createHash('sha256').update(readFileSync(p)).digest('hex');

describe('every scenario under UEFI, and the ESP boot paths @boot', function () {
  this.timeout(1_800_000);
  let dir: string;
  const fw = uefiFiles(x86_64);
  let varsBefore: string;
  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rootprobe-uefi-boot-'));
    await fs.mkdir(path.join(dir, 'tmp'));
    varsBefore = sha(fw.vars);
  });
  after(async () => {
    expect(sha(fw.vars), 'the OVMF variable store template').to.equal(varsBefore);
    expect(qemuPids(dir)).to.deep.equal([]);
    await fs.rm(dir, { recursive: true, force: true });
  });
  const runCli = (args: string[]): Promise<Ran> => cli(args, { env: { TMPDIR: path.join(dir, 'tmp') } });
  const report = async (f: string): Promise<RunRecord[]> => (JSON.parse(await fs.readFile(f, 'utf8')) as { runs: RunRecord[] }).runs;

  it('runs every built-in scenario with --firmware uefi on debian/bookworm: each passes (or is skipped with its reason), started by EDK II', async () => {
    const json = path.join(dir, 'all.json');
    const r = await runCli(['run', '--all', '--firmware', 'uefi', '--jobs', '2', '--json', json, '--artifacts', path.join(dir, 'art')]);
    expect(r.code, r.stdout + r.stderr).to.equal(0);
    const all = await report(json);
    expect(all.map((x) => x.scenario).sort()).to.deep.equal((await loadScenarios([])).map((s) => s.name).sort());
    for (const x of all.filter((y) => y.outcome === 'skipped')) expect(x.message, x.scenario).to.match(/\S/);
    const runs = all.filter((y) => y.outcome !== 'skipped');
    expect(runs.length).to.be.at.least(10);
    for (const x of runs) {
      expect(x.outcome, `${x.scenario}: ${x.message}`).to.equal('passed');
      expect(x.firmware).to.equal('uefi');
      expect(x.evidence.find((e) => e.startsWith('firmware:'))).to.match(/^firmware: (EFI v2\.70 by EDK II|UEFI \(64-bit)/);
      // OVMF's loader of -kernel adds initrd=initrd to what it hands the EFI stub.
      expect(x.evidence.find((e) => e.startsWith('command line:'))).to.match(/added: .*initrd=initrd/);
      expect(x.evidence.find((e) => e.startsWith('command line:'))).to.include('rootprobe.efi');
      expect(x.rerun).to.include('--firmware uefi');
      // -kernel: no boot loader, no stub; nothing set the loader's variables.
      expect(x.evidence).to.include('efivars: no Loader* or Stub* variables (no boot loader or stub set any)');
    }
    expect(r.stdout).to.match(/firmware uefi$/m);
    expect(r.stdout).to.match(/\(6\.1\.[^,]+, (tcg|kvm), uefi\)/);
    console.log(`      durations (s): ${runs.map((x) => `${x.scenario} ${(x.durationMs / 1000).toFixed(1)}`).join(', ')}`);
    // tsx keeps its compile cache in TMPDIR; anything else is ours and must be gone.
    expect((await fs.readdir(path.join(dir, 'tmp'))).filter((n) => !n.startsWith('tsx-'))).to.deep.equal([]);
  });

  it("boots switch_root through systemd-boot from an ESP built without root: the BLS entry's initrd and options reach the kernel", async () => {
    const json = path.join(dir, 'sdboot.json');
    const r = await runCli([
      'run',
      'switch_root',
      '--firmware',
      'uefi',
      '--boot',
      'systemd-boot',
      '--json',
      json,
      '--keep',
      '--artifacts',
      path.join(dir, 'art-sd'),
    ]);
    expect(r.code, r.stdout + r.stderr).to.equal(0);
    const [x] = await report(json);
    expect(x.boot).to.equal('systemd-boot');
    expect(x.evidence).to.include('boot: systemd-boot from a rootprobe ESP (loader/entries/rootprobe.conf)');
    // systemd-boot puts the entry's initrd on the command line it passes (the kernel's stub loads it from the ESP).
    expect(x.evidence.find((e) => e.startsWith('command line:'))).to.include('added: initrd=\\rootprobe\\initrd');
    const art = x.artifacts!.dir;
    const qemu = await fs.readFile(path.join(art, 'qemu.cmdline'), 'utf8');
    expect(qemu).to.not.include('-kernel');
    expect(qemu).to.include('bootindex=0');
    const env = { ...process.env, MTOOLS_SKIP_CHECK: '1' };
    const entry = execFileSync('mtype', ['-i', path.join(art, 'esp.img'), '::/loader/entries/rootprobe.conf'], { env, encoding: 'utf8' });
    expect(entry).to.match(/^linux \/rootprobe\/linux$/m);
    expect(entry).to.match(/^options console=ttyS0 .*rootprobe\.port=ttyS1 rootprobe\.efi$/m);
    expect(x.stagesReported).to.deep.equal(['initramfs', 'realroot', 'done']);
    // What systemd-boot itself says it did, read by the probe from efivarfs in the guest.
    expect(x.evidence.find((e) => e.startsWith('efivars'))).to.match(
      /^efivars \(stage initramfs\): LoaderEntrySelected=rootprobe\.conf, LoaderInfo=systemd-boot \d+/,
    );
  });

  it('boots switch_root from a UKI rootprobe assembled on systemd-stub, at the ESP fallback path: its .cmdline exactly', async () => {
    const json = path.join(dir, 'uki.json');
    const r = await runCli(['run', 'switch_root', '--firmware', 'uefi', '--boot', 'uki', '--json', json]);
    expect(r.code, r.stdout + r.stderr).to.equal(0);
    const [x] = await report(json);
    expect(x.boot).to.equal('uki');
    expect(x.evidence.find((e) => e.startsWith('boot:'))).to.match(/a UKI rootprobe assembled \((objcopy|ukify): .*\.linux/);
    expect(x.evidence).to.include('command line: as planned');
    expect(x.evidence.find((e) => e.startsWith('firmware:'))).to.match(/^firmware: (EFI v2\.70 by EDK II|UEFI \(64-bit)/);
    // No boot loader ran: the stub is what the firmware started (its StubInfo), from the fallback path.
    const efivars = x.evidence.find((e) => e.startsWith('efivars'))!;
    expect(efivars)
      .to.match(/StubInfo=systemd-stub \d+/)
      .and.include('LoaderImageIdentifier=\\EFI\\BOOT\\BOOTX64.EFI');
    expect(efivars).to.not.include('LoaderEntrySelected');
  });

  it('build --firmware uefi --boot uki writes the ESP, a variable store and a qemu.sh with OVMF', async () => {
    const out = path.join(dir, 'build');
    const r = await runCli(['build', 'switch_root', '--firmware', 'uefi', '--boot', 'uki', '--out', out]);
    expect(r.code, r.stdout + r.stderr).to.equal(0);
    const files = await fs.readdir(out);
    expect(files).to.include.members(['esp.img', 'efivars.fd', 'uki.efi', 'qemu.sh', 'build.json']);
    const sh = await fs.readFile(path.join(out, 'qemu.sh'), 'utf8');
    expect(sh).to.include(`if=pflash,format=raw,unit=0,readonly=on,file=${fw.code}`);
    expect(sh).to.include('if=pflash,format=raw,unit=1,file=./efivars.fd');
    expect(sh).to.include('file=./esp.img');
    const b = JSON.parse(await fs.readFile(path.join(out, 'build.json'), 'utf8'));
    expect(b).to.include({ firmware: 'uefi', boot: 'uki', esp: 'esp.img', efivars: 'efivars.fd' });
  });
});
