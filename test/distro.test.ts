/**
 * Real generators, real inits: a debootstrapped Debian bookworm root (minbase, systemd as
 * PID 1) with the cloud kernel and the initramfs its own generator made (initramfs-tools in
 * one root, dracut in the other: they conflict), booted in external mode. The images are
 * built once into the cache (images/debootstrap.ts; about 3 minutes each, as root) and
 * reused. Each boot must show the distro's init switching root (PID 1 = systemd on the ext4
 * of /dev/vda, nothing of the initramfs left mounted) and, for dracut, its shutdown
 * returning into /run/initramfs with the root unmounted. The user's files stay byte-identical.
 * The deliberately broken twin of these checks is in external.test.ts (a mount left behind).
 */
import { expect } from 'chai';
import { cachedDistro, debianDistro, distroBuildBlocker, DISTRO_GENERATORS, type DistroImages } from '../images/debootstrap.ts';
import { runExternal, type ExternalRecord } from '../harness/external/run.ts';
import { sha256File } from '../harness/cache.ts';
import { detectAccel } from '../harness/qemu/accel.ts';
import { pool } from '../harness/run/matrix.ts';
import { resolveKernel } from '../kernels/index.ts';
import { testKernel } from './support/kernel.ts';

describe('distro generators: debootstrapped Debian with initramfs-tools and dracut @boot', function () {
  this.timeout(40 * 60_000);
  const distros = new Map<string, DistroImages>();

  before(async function () {
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
    // Both roots at once: debootstrap and apt mostly wait on downloads and one dpkg each, so two
    // share the 2 cores better than one after the other (each in a cache entry of its own).
    const built = await Promise.all(missing.map((g) => debianDistro(g, { onProgress: (m) => console.log(`    distro: ${m}`) })));
    missing.forEach((g, i) => distros.set(g, built[i]));
  });

  it('boots both: the distro init switches root; dracut returns into its shutdown initramfs and unmounts the root', async () => {
    const accel = (await detectAccel(testKernel.vmlinuz)).accel as 'kvm' | 'tcg';
    const gens = [...distros.keys()];
    const before = new Map<string, string[]>();
    for (const g of gens) {
      const d = distros.get(g)!;
      before.set(g, [await sha256File(d.initrd), await sha256File(d.rootImage)]);
    }
    const recs: ExternalRecord[] = await pool(gens, 2, async (g) => {
      const d = distros.get(g)!;
      return runExternal({
        name: `debian-${g}`,
        initramfs: d.initrd,
        kernel: await resolveKernel(`file:${d.vmlinuz}`),
        disks: [d.rootImage],
        cmdline: 'root=/dev/vda rw',
        accel,
        artifactsRoot: 'rootprobe-artifacts',
        timeoutSec: 150,
      });
    });
    for (const [i, g] of gens.entries()) {
      const r = recs[i];
      const d = distros.get(g)!;
      expect(r.outcome, `${g}: ${r.message}\n${r.consoleTail.join('\n')}`).to.equal('passed');
      expect(r.behaviours).to.include(`generator: ${g}`);
      expect(r.kernelRelease).to.equal(d.release);
      const real = r.stages.find((s) => s.name === 'realroot')!;
      const pid1 = real.processes.find((p) => p.pid === 1)!;
      expect(pid1.exe, g).to.equal('/usr/lib/systemd/systemd');
      const rootMount = real.mountinfo.find((m) => m.mountPoint === '/')!;
      expect(rootMount).to.include({ fsType: 'ext4', source: '/dev/vda' });
      if (g === 'dracut') {
        expect(r.stagesReported).to.deep.equal(['initramfs', 'realroot', 'shutdown']);
        const sd = r.stages.find((s) => s.name === 'shutdown')!;
        expect(sd.mountinfo.find((m) => m.mountPoint === '/')!.fsType).to.equal('tmpfs');
        expect(sd.processes.find((p) => p.pid === 1)!.cmdline.slice(0, 2)).to.deep.equal(['/bin/sh', '/shutdown']);
        expect(sd.mountinfo.filter((m) => m.major === rootMount.major && m.minor === rootMount.minor)).to.deep.equal([]);
      } else {
        expect(r.stagesReported).to.deep.equal(['initramfs', 'realroot']);
        const ini = r.stages.find((s) => s.name === 'initramfs')!;
        expect(ini.mountinfo.find((m) => m.mountPoint === '/root')).to.include({ fsType: 'ext4', source: '/dev/vda' });
      }
      for (const inp of r.inputs) expect(inp.after, inp.path).to.equal(inp.before);
      expect([await sha256File(d.initrd), await sha256File(d.rootImage)]).to.deep.equal(before.get(g));
    }
  });
});
