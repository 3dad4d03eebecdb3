/**
 * External mode (harness/external): reading someone else's initramfs without changing it,
 * the segment we append, and real boots of a small stand-in distro (an initramfs-tools-shaped
 * /init in an early plain segment + a gzip main segment, a root disk without any rootprobe
 * files) through the library call and through the CLI with a file: kernel. Its broken twin
 * leaves a mount of the initramfs behind on the real root and must fail.
 * The real generators (dracut, initramfs-tools) are in distro.test.ts.
 */
import { expect } from 'chai';
import { execFileSync, spawn } from 'node:child_process';
import { promises as fs, mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readNewc } from '../harness/cpio/index.ts';
import { UsageError } from '../harness/errors.ts';
import { buildExt4 } from '../harness/image/disk.ts';
import { buildCpioSegment, concatSegments } from '../harness/image/initramfs.ts';
import { ImageTree } from '../harness/image/tree.ts';
import { externalSegment, inspectInitramfs, orderWithHook, readInitramfs } from '../harness/external/segment.ts';
import { runExternal, type ExternalRecord } from '../harness/external/run.ts';
import { sha256File } from '../harness/cache.ts';
import { pool } from '../harness/run/matrix.ts';
import { detectAccel } from '../harness/qemu/accel.ts';
import { checkFeatures } from '../kernels/config.ts';
import { baseInitramfs, baseRootDisk } from '../images/base.ts';
import { testKernel } from './support/kernel.ts';
import { reportSchemaErrors } from './support/report-schema.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const fx = path.join(root, 'test/fixtures/external');
const bin = path.join(root, 'bin/rootprobe.js');

let work: string;
before(() => {
  work = mkdtempSync(path.join(os.tmpdir(), 'rootprobe-external-'));
});
after(() => rmSync(work, { recursive: true, force: true }));

const ORDER = '/scripts/init-bottom/nothing "$@"\n[ -e /conf/param.conf ] && . /conf/param.conf\n';

/** The stand-in distro: initrd (early plain segment + gzip main), and a root disk, as user files. */
async function fakeDistro(): Promise<{ initrd: string; disk: string; mainTree: ImageTree }> {
  const early = new ImageTree('early');
  early.file('/kernel/x86/microcode/GenuineIntel.bin', Buffer.alloc(64, 0xaa));
  const main = new ImageTree('fake distro');
  main.merge(baseInitramfs());
  const { modules } = checkFeatures(testKernel, ['initrd', 'proc', 'sysfs', 'devtmpfs', 'virtio-blk', 'ext4'], 'fakedistro');
  if (modules.length) main.kernelModules(testKernel, modules);
  main.script('/init', path.join(fx, 'distro-init.sh'));
  main.file('/scripts/init-bottom/ORDER', ORDER);
  main.file('/scripts/init-bottom/nothing', '#!/bin/sh\ntrue\n', 0o755);
  main.dir('/conf');
  const initrd = path.join(work, 'initrd.img');
  await concatSegments([await buildCpioSegment(early), await buildCpioSegment(main, { compress: 'gzip' })], initrd);
  const disk = baseRootDisk();
  disk.script('/sbin/init', path.join(fx, 'root-init.sh'));
  disk.dir('/mnt');
  const img = path.join(work, 'root.img');
  await fs.copyFile(await buildExt4(disk, { sizeMiB: 32 }), img);
  return { initrd, disk: img, mainTree: main };
}

describe('external mode: reading the given initramfs (harness/external/segment.ts)', () => {
  it('finds the generator and the segments of a plain + gzip initramfs, and a zstd one through the host tool', async () => {
    const { initrd, mainTree } = await fakeDistro();
    const info = await inspectInitramfs(initrd);
    expect(info.generator).to.equal('initramfs-tools');
    expect(info.initBottomOrder).to.equal(ORDER);
    expect(info.compressions).to.deep.equal(['none', 'gzip']);
    expect(info.paths.has('kernel/x86/microcode/GenuineIntel.bin')).to.equal(true);

    const plainMain = await buildCpioSegment(mainTree);
    const zst = path.join(work, 'main.zst');
    execFileSync('zstd', ['-q', '-f', '-o', zst, plainMain]);
    const mixed = path.join(work, 'mixed.img');
    const early = new ImageTree('early2');
    early.file('/kernel/x86/microcode/AuthenticAMD.bin', 'x');
    await concatSegments([await buildCpioSegment(early), zst], mixed);
    const r = await readInitramfs(mixed);
    expect(r.compressions).to.deep.equal(['none', 'zstd']);
    expect(r.entries.some((e) => e.path === 'scripts/init-bottom/ORDER')).to.equal(true);
    expect(r.entries.some((e) => e.path === 'kernel/x86/microcode/AuthenticAMD.bin')).to.equal(true);
  });

  it('recognises dracut by its hooks folder and puts the pre-pivot hook there', async () => {
    const t = new ImageTree('dracut-like');
    t.dir('/usr/lib/dracut/hooks/pre-pivot');
    t.dir('/usr/lib/dracut/hooks/shutdown');
    t.symlink('/init', 'usr/lib/systemd/systemd');
    const f = path.join(work, 'dracut-like.img');
    await fs.copyFile(await buildCpioSegment(t, { compress: 'gzip' }), f);
    const info = await inspectInitramfs(f);
    expect(info).to.include({ generator: 'dracut', hookDir: 'usr/lib/dracut/hooks' });
    expect(info.init).to.deep.equal({ type: 'symlink', target: 'usr/lib/systemd/systemd' });
    const seg = await readNewc(
      await fs.readFile(await buildCpioSegment(await externalSegment(info, { init: '/init', end: 'poweroff', bootWaitSec: 60 }))),
    );
    const paths = seg.map((e) => e.path);
    expect(paths).to.include.members([
      'usr/lib/dracut/hooks/pre-pivot/99-rootprobe.sh',
      '.rootprobe/init',
      '.rootprobe/agent',
      '.rootprobe/want-shutdown',
      '.rootprobe-agent',
    ]);
    expect(paths).to.not.include('init');
    const conf = seg.find((e) => e.path === '.rootprobe/external.conf')!.data.toString();
    expect(conf)
      .to.match(/RP_SHUTDOWN=1/)
      .and.match(/^RP_PROBE_IN_WRAPPER=0$/m)
      .and.match(/RP_HOOKDIR='?usr\/lib\/dracut\/hooks'?$/m);
  });

  it("recognises tiny-initramfs's layout (one ELF /init, /target, no shell) and probes it from the wrapper", async () => {
    const t = new ImageTree('tiny-like');
    t.file('/init', Buffer.concat([Buffer.from('\x7fELF', 'latin1'), Buffer.alloc(60)]), 0o755);
    t.dir('/target');
    t.dir('/dev');
    t.dir('/proc');
    t.file('/modules', 'virtio_blk.ko\n');
    const f = path.join(work, 'tiny-like.img');
    await fs.copyFile(await buildCpioSegment(t, { compress: 'gzip' }), f);
    const info = await inspectInitramfs(f);
    expect(info.generator).to.equal('tiny-initramfs');
    expect(info.hookPoint).to.match(/none in the archive: rootprobe's wrapper probes before its \/init runs/);
    const seg = await readNewc(
      await fs.readFile(
        await buildCpioSegment(await externalSegment(info, { init: '/init', end: 'poweroff', bootWaitSec: 60, daemons: 'marked' })),
      ),
    );
    const conf = seg.find((e) => e.path === '.rootprobe/external.conf')!.data.toString();
    expect(conf)
      .to.match(/^RP_PROBE_IN_WRAPPER=1$/m)
      .and.match(/^RP_DAEMONS=marked$/m)
      .and.match(/^RP_SHUTDOWN=0$/m);
    // The same layout with a shell in it is no tiny-initramfs (and has no known hook point).
    t.file('/bin/sh', 'x', 0o755);
    await fs.copyFile(await buildCpioSegment(t, { compress: 'gzip' }), f);
    const other = await inspectInitramfs(f);
    expect(other.generator).to.equal('unknown');
    const conf2 = (
      await readNewc(
        await fs.readFile(await buildCpioSegment(await externalSegment(other, { init: '/init', end: 'poweroff', bootWaitSec: 60 }))),
      )
    )
      .find((e) => e.path === '.rootprobe/external.conf')!
      .data.toString();
    expect(conf2)
      .to.match(/^RP_PROBE_IN_WRAPPER=1$/m)
      .and.match(/^RP_DAEMONS=$/m);
  });

  it('puts our initramfs-tools hook just before the param.conf line of ORDER', () => {
    expect(orderWithHook(ORDER, '/x "$@"')).to.equal(
      '/scripts/init-bottom/nothing "$@"\n/x "$@"\n[ -e /conf/param.conf ] && . /conf/param.conf\n',
    );
    expect(orderWithHook('', '/x')).to.equal('/x\n');
  });

  it('refuses an archive that already has rootprobe in it, and what is no initramfs', async () => {
    const t = new ImageTree('probed');
    t.file('/.rootprobe/probe', 'x');
    const f = path.join(work, 'probed.img');
    await fs.copyFile(await buildCpioSegment(t), f);
    const e = await inspectInitramfs(f).then(
      () => undefined,
      (x: Error) => x,
    );
    expect(e).to.be.instanceOf(UsageError);
    expect(e!.message).to.match(/already has a \/\.rootprobe/);
    const junk = path.join(work, 'junk.img');
    await fs.writeFile(junk, 'this is not an initramfs');
    const e2 = await inspectInitramfs(junk).then(
      () => undefined,
      (x: Error) => x,
    );
    expect(e2!.message).to.match(/not an initramfs rootprobe can read/);
  });
});

describe('external mode: a stand-in distro on a real kernel @boot', function () {
  this.timeout(15 * 60_000);

  it('probes initramfs and realroot of its own flow, fails its twin that leaves a mount behind, and leaves the files byte-identical', async () => {
    const { initrd, disk } = await fakeDistro();
    const hashes = [await sha256File(initrd), await sha256File(disk)];
    const accel = (await detectAccel(testKernel.vmlinuz)).accel as 'kvm' | 'tcg';
    const artifactsRoot = path.join(work, 'art');
    const cases = [
      { name: 'fake', cmdline: 'root=/dev/vda' },
      { name: 'fake-leak', cmdline: 'root=/dev/vda fakedistro.leak' },
    ];
    const recs: ExternalRecord[] = await pool(cases, 2, (c) =>
      runExternal({
        initramfs: initrd,
        kernel: testKernel,
        disks: [disk],
        cmdline: c.cmdline,
        accel,
        artifactsRoot,
        name: c.name,
        timeoutSec: 60,
      }),
    );
    const [good, leak] = recs;
    expect(good.outcome, `${good.message}\n${good.consoleTail.join('\n')}`).to.equal('passed');
    expect(good.stagesReported).to.deep.equal(['initramfs', 'realroot']);
    expect(good.behaviours).to.include('generator: initramfs-tools');
    expect(good.evidence.join('\n')).to.match(/realroot: \/ is ext4 from \/dev\/vda; PID 1 exe \/bin\/busybox/);
    const ini = good.stages.find((s) => s.name === 'initramfs')!;
    // Taken in init-bottom: the real root is mounted on /root, nothing switched yet.
    expect(ini.mountinfo.map((m) => `${m.mountPoint} ${m.fsType}`)).to.include.members(['/ rootfs', '/root ext4']);

    expect(leak.outcome, leak.message).to.equal('failed');
    expect(leak.message)
      .to.match(/mounts of the initramfs left behind/)
      .and.match(/\/mnt \(tmpfs scratch/);

    for (const r of recs) {
      for (const i of r.inputs) expect(i.after, i.path).to.equal(i.before);
    }
    expect([await sha256File(initrd), await sha256File(disk)]).to.deep.equal(hashes);
  });

  it("runs from the CLI with the user's own kernel (file:), exit 0", async () => {
    const { initrd, disk } = await fakeDistro();
    const json = path.join(work, 'ext.json');
    const res = await new Promise<{ code: number | null; out: string }>((resolve, reject) => {
      const p = spawn(
        process.execPath,
        [
          bin,
          'run',
          'external',
          '--initramfs',
          initrd,
          '--kernel',
          `file:${testKernel.vmlinuz}`,
          '--disk',
          disk,
          '--cmdline',
          'root=/dev/vda',
          '--json',
          json,
          '--artifacts',
          path.join(work, 'cli-art'),
          '--timeout',
          '60',
        ],
        { cwd: work, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let out = '';
      p.stdout.on('data', (d) => (out += d));
      p.stderr.on('data', (d) => (out += d));
      p.on('error', reject);
      p.on('close', (code) => resolve({ code, out }));
    });
    expect(res.code, res.out).to.equal(0);
    expect(res.out)
      .to.match(/^PASSED external on file:/m)
      .and.match(/initramfs-tools, 2 segment\(s\) \(none, gzip\)/);
    expect(res.out).to.match(/unchanged .*root\.img/);
    const report = JSON.parse(await fs.readFile(json, 'utf8')) as { command: string; runs: ExternalRecord[] };
    expect(reportSchemaErrors(report)).to.deep.equal([]); // the one report shape (schemas/report.schema.json)
    expect(report.command).to.equal('run external');
    const rec = report.runs[0]!;
    expect(rec.kernel).to.equal(`file:${testKernel.vmlinuz}`);
    expect(rec.stagesReported).to.deep.equal(['initramfs', 'realroot']);
  });
});
