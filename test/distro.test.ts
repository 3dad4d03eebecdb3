/**
 * Real generators, real inits: debootstrapped Debian bookworm roots (minbase, systemd as PID 1)
 * with the cloud kernel and the initramfs its own generator made, one root per generator
 * (images/debootstrap.ts DISTRO_RECIPES: initramfs-tools; dracut, which with systemd in the
 * root puts systemd into the initramfs too; dracut with its systemd module left out, whose
 * bash /init switches with switch_root; tiny-initramfs, one static C /init), booted in
 * external mode. The roots are built once into the cache (about 2.5 minutes, all at once, as
 * root) and reused. Each boot must show the distro's init switching root (PID 1 = systemd on
 * the ext4 of /dev/vda, nothing of the initramfs left mounted) and, for dracut with systemd,
 * its shutdown returning into /run/initramfs with the root unmounted; the dracut boots carry
 * the stand-in storage daemons (seed 000), and one broken twin starts the storage daemon
 * without its '@' and must fail. The user's files stay byte-identical. The broken twin of the
 * flow checks is in external.test.ts (a mount left behind).
 */
import { expect } from 'chai';
import { promises as fs, mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { cli } from './support/cli.ts';
import {
  cachedDistro,
  debianDistro,
  distroBuildBlocker,
  DISTRO_GENERATORS,
  type DistroGenerator,
  type DistroImages,
} from '../images/debootstrap.ts';
import { MARKED, PLAIN, UNMARKED } from '../harness/external/daemons.ts';
import type { StorageDaemons } from '../harness/external/segment.ts';
import { runExternal, type ExternalRecord } from '../harness/external/run.ts';
import { sha256File } from '../harness/cache.ts';
import { detectAccel } from '../harness/qemu/accel.ts';
import { pool } from '../harness/run/matrix.ts';
import { resolveKernel } from '../kernels/index.ts';
import { testKernel } from './support/kernel.ts';

describe('distro generators: debootstrapped Debian with initramfs-tools, dracut (systemd and shell flows) and tiny-initramfs @boot', function () {
  this.timeout(40 * 60_000);
  const distros = new Map<string, DistroImages>();
  let work: string;
  after(() => rmSync(work, { recursive: true, force: true }));

  before(async function () {
    work = mkdtempSync(path.join(os.tmpdir(), 'rootprobe-distro-'));
    const missing: Array<(typeof DISTRO_GENERATORS)[number]> = [];
    for (const g of DISTRO_GENERATORS) {
      const have = await cachedDistro(g);
      if (have) distros.set(g, have);
      else missing.push(g);
    }
    const blocker = missing.length ? distroBuildBlocker() : undefined;
    if (blocker) {
      // eslint-disable-next-line no-console
      console.log(`    (skipped: the ${missing.join(' and ')} roots are not cached and ${blocker})`);
      this.skip();
    }
    // All roots at once: debootstrap and apt mostly wait on downloads and one dpkg each, so they
    // share the 2 cores better than one after the other (each in a cache entry of its own).
    const built = await Promise.all(missing.map((g) => debianDistro(g, { onProgress: (m) => console.log(`    distro: ${m}`) })));
    missing.forEach((g, i) => distros.set(g, built[i]));
  });

  it('boots each: the distro init switches root; dracut returns into its shutdown initramfs; storage daemons as systemd treats them', async () => {
    const accel = (await detectAccel(testKernel.vmlinuz)).accel as 'kvm' | 'tcg';
    const gens = [...distros.keys()];
    const before = new Map<string, string[]>();
    for (const g of gens) {
      const d = distros.get(g)!;
      before.set(g, [await sha256File(d.initrd), await sha256File(d.rootImage)]);
    }
    // Each root once; dracut's two flows with the stand-in storage daemons, and the broken twin
    // (systemd in the initramfs, the storage daemon started without its '@').
    const cases: Array<{ g: DistroGenerator; name: string; daemons?: StorageDaemons }> = [
      { g: 'initramfs-tools', name: 'debian-initramfs-tools', daemons: 'marked' },
      { g: 'dracut', name: 'debian-dracut', daemons: 'marked' },
      { g: 'dracut-shell', name: 'debian-dracut-shell', daemons: 'marked' },
      { g: 'tiny-initramfs', name: 'debian-tiny-initramfs' },
      { g: 'dracut', name: 'debian-dracut-unmarked', daemons: 'unmarked' },
    ];
    const recs: ExternalRecord[] = await pool(cases, 2, async (c) => {
      const d = distros.get(c.g)!;
      if (c.name === 'debian-dracut') {
        // As the README shows it: through the CLI, the record read from its JSON report.
        const json = path.join(work, 'dracut.json');
        const args = ['run', 'external', '--name', c.name, '--kernel', `file:${d.vmlinuz}`, '--initramfs', d.initrd];
        const ran = await cli([...args, '--disk', d.rootImage, '--cmdline', 'root=/dev/vda rw', '--storage-daemons', '--json', json]);
        expect(ran.code, `${ran.stdout}\n${ran.stderr}`).to.equal(0);
        expect(ran.stdout).to.match(/^ {2}realroot: @rootprobe-storaged pid \d+, exe \/usr\/bin\/sleep \(deleted\), cwd \/, root \/$/m);
        return (JSON.parse(await fs.readFile(json, 'utf8')) as { runs: ExternalRecord[] }).runs[0];
      }
      return runExternal({
        name: c.name,
        initramfs: d.initrd,
        kernel: await resolveKernel(`file:${d.vmlinuz}`),
        disks: [d.rootImage],
        cmdline: 'root=/dev/vda rw',
        accel,
        artifactsRoot: 'rootprobe-artifacts',
        timeoutSec: 150,
        storageDaemons: c.daemons,
      });
    });
    const rec = (name: string) => recs[cases.findIndex((c) => c.name === name)];
    const say = (r: ExternalRecord) => `${r.scenario}: ${r.outcome} ${r.message}\n${r.consoleTail.join('\n')}`;
    const stage = (r: ExternalRecord, n: string) => r.stages.find((s) => s.name === n)!;
    const pid1 = (r: ExternalRecord, n: string) => stage(r, n).processes.find((p) => p.pid === 1)!;

    for (const c of cases.slice(0, 4)) {
      const r = rec(c.name);
      const d = distros.get(c.g)!;
      expect(r.behaviours, say(r)).to.include(`generator: ${c.g === 'dracut-shell' ? 'dracut' : c.g}`);
      expect(r.kernelRelease).to.equal(d.release);
      if (c.g === 'dracut-shell') continue; // no shutdown stage: below
      expect(r.outcome, say(r)).to.equal('passed');
      expect(pid1(r, 'realroot').exe, c.g).to.equal('/usr/lib/systemd/systemd');
      const rootMount = stage(r, 'realroot').mountinfo.find((m) => m.mountPoint === '/')!;
      expect(rootMount).to.include({ fsType: 'ext4', source: '/dev/vda' });
      if (c.g === 'dracut') {
        expect(r.stagesReported).to.deep.equal(['initramfs', 'realroot', 'killing-spree', 'shutdown']);
        // systemd is the initramfs's PID 1 (initrd-switch-root.service switches), the root at /sysroot.
        expect(pid1(r, 'initramfs').exe).to.equal('/usr/lib/systemd/systemd');
        expect(stage(r, 'initramfs').mountinfo.find((m) => m.mountPoint === '/sysroot')).to.include({ fsType: 'ext4' });
        const sd = stage(r, 'shutdown');
        expect(sd.mountinfo.find((m) => m.mountPoint === '/')!.fsType).to.equal('tmpfs');
        expect(pid1(r, 'shutdown').cmdline.slice(0, 2)).to.deep.equal(['/bin/sh', '/shutdown']);
        expect(sd.mountinfo.filter((m) => m.major === rootMount.major && m.minor === rootMount.minor)).to.deep.equal([]);
        // systemd's switch spares only the '@' daemon; it lives on into the shutdown initramfs.
        expect(r.behaviours).to.include.members([
          `storage daemon ${MARKED}: alive at initramfs, realroot, killing-spree, shutdown`,
          `storage daemon ${PLAIN}: alive at initramfs; gone at realroot, killing-spree, shutdown`,
        ]);
        const daemon = stage(r, 'realroot').processes.find((p) => p.cmdline[0] === MARKED)!;
        expect(daemon).to.include({ exe: '/usr/bin/sleep (deleted)', root: '/' });
      } else if (c.g === 'initramfs-tools') {
        expect(r.stagesReported).to.deep.equal(['initramfs', 'realroot', 'killing-spree']);
        // run-init kills nothing; systemd-shutdown's SIGTERM spares only the '@' daemon.
        expect(r.behaviours).to.include.members([
          `storage daemon ${MARKED}: alive at initramfs, realroot, killing-spree`,
          `storage daemon ${PLAIN}: alive at initramfs, realroot; gone at killing-spree`,
        ]);
        const ini = stage(r, 'initramfs');
        expect(ini.mountinfo.find((m) => m.mountPoint === '/root')).to.include({ fsType: 'ext4', source: '/dev/vda' });
      } else {
        // tiny-initramfs: no hook point; the wrapper probed before its /init ran.
        expect(r.info).to.include({ generator: 'tiny-initramfs' });
        expect(r.stagesReported).to.deep.equal(['initramfs', 'realroot']);
        expect(pid1(r, 'initramfs').exe).to.equal('/.rootprobe/busybox');
        expect(
          stage(r, 'initramfs')
            .mountinfo.filter((m) => !m.source.startsWith('rootprobe'))
            .map((m) => m.fsType),
        ).to.deep.equal(['rootfs']);
      }
    }

    // dracut's shell flow: its bash /init is PID 1 in the initramfs; switch_root spares every
    // process; /run is mounted noexec, so systemd-shutdown cannot return into the restored
    // shutdown initramfs: the run says so instead of a shutdown stage.
    const shell = rec('debian-dracut-shell');
    expect(shell.outcome, say(shell)).to.equal('missing-stage');
    expect(shell.message).to.match(/stage `shutdown` never reported.*the guest said: no shutdown stage: \/run is mounted noexec/);
    expect(pid1(shell, 'initramfs').exe).to.equal('/usr/bin/bash');
    expect(
      stage(shell, 'realroot')
        .mountinfo.find((m) => m.mountPoint === '/run')!
        .options.split(','),
    ).to.include('noexec');
    // Both reach the real root; systemd-shutdown's SIGTERM to every remaining process then
    // kills the plain one and spares the '@' one.
    expect(shell.stagesReported).to.deep.equal(['initramfs', 'realroot', 'killing-spree', 'guest-error']);
    expect(shell.behaviours).to.include.members([
      `storage daemon ${MARKED}: alive at initramfs, realroot, killing-spree`,
      `storage daemon ${PLAIN}: alive at initramfs, realroot; gone at killing-spree`,
    ]);

    // The broken twin: without its '@' systemd's switch kills the storage daemon too.
    const twin = rec('debian-dracut-unmarked');
    expect(twin.outcome, say(twin)).to.equal('failed');
    expect(twin.message).to.include(
      `the storage daemon ${UNMARKED} is gone at realroot, killing-spree, shutdown: its argv[0] '${UNMARKED}' lacks the '@'`,
    );

    for (const r of recs) for (const inp of r.inputs) expect(inp.after, inp.path).to.equal(inp.before);
    for (const g of gens) {
      const d = distros.get(g)!;
      expect([await sha256File(d.initrd), await sha256File(d.rootImage)]).to.deep.equal(before.get(g));
    }
  });
});
