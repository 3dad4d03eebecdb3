/**
 * Fault injection: real QEMU, real kernel, things going wrong on purpose, and the security
 * claims checked against the real code.
 *
 * Covered elsewhere, not repeated here:
 *  - a guest that hangs is `timeout` naming the last stage; a panic is `panic` within 2 s of
 *    the line; a hand-made frame with a wrong hash is an error naming the stage
 *    (test/run.test.ts, "verdicts of guests that go wrong on purpose");
 *  - a file: kernel that does not exist exits 2 naming it (test/run.test.ts);
 *  - 100 MB of console through the runner with a stand-in binary, memory bounded
 *    (test/qemu.test.ts (e2)); SIGINT/SIGKILL to a process running one QEMU
 *    (test/lifecycle.test.ts); a damaged cpio segment in the cache rebuilt (test/image.test.ts);
 *  - archive paths with '..' refused (test/cpio.test.ts), ImageTree paths (test/image.test.ts).
 */
import { expect } from 'chai';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { promises as fs, existsSync, lstatSync, readdirSync, readFileSync, statSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadScenarios, pickScenarios } from '../scenarios/index.ts';
import type { Kernel } from '../kernels/index.ts';
import { runScenario, type RunRecord } from '../harness/run/run-scenario.ts';
import { pool } from '../harness/run/matrix.ts';
import { detectAccel } from '../harness/qemu/accel.ts';
import { isWholeEntry } from '../harness/cache.ts';
import { archivePath } from '../harness/cpio/index.ts';
import { ImageTree } from '../harness/image/tree.ts';
import { buildExt4 } from '../harness/image/disk.ts';
import { HOST_TOOLS, findCommand } from '../harness/host.ts';
import { testKernel } from './support/kernel.ts';
import { qemuPids } from './support/cli.ts';
import { FLOOD_MIB } from './fixtures/scenarios/faults/scenarios.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const fixtures = path.join(root, 'test/fixtures/scenarios/faults');
const bin = path.join(root, 'bin/rootprobe.js');

function vmHwmKiB(pid: number): number | undefined {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

interface Cli {
  child: ChildProcess;
  out: () => string;
  done: Promise<{ code: number | null; signal: string | null; out: string; peakKiB: number }>;
}

/**
 * `rootprobe ARGS` as a child, stdout+stderr together. Its peak RSS is VmHWM (a high-water
 * mark kept by the kernel) read every 50 ms until it exits: the last reading is at most
 * 50 ms old, and the mark only grows.
 */
function cli(args: string[], env: NodeJS.ProcessEnv = {}): Cli {
  const child = spawn(process.execPath, [bin, ...args], { cwd: root, env: { ...process.env, CI: '1', ...env } });
  let text = '';
  child.stdout!.on('data', (d) => (text += d));
  child.stderr!.on('data', (d) => (text += d));
  let peakKiB = 0;
  const sampler = setInterval(() => (peakKiB = Math.max(peakKiB, vmHwmKiB(child.pid!) ?? 0)), 50);
  const done = new Promise<{ code: number | null; signal: string | null; out: string; peakKiB: number }>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearInterval(sampler);
      resolve({ code, signal, out: text, peakKiB });
    });
  });
  return { child, out: () => text, done };
}

async function waitFor(what: string, cond: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The kernel of the tests as a file: spec (no cache needed to resolve it). */
function fileSpec(k: Kernel): string {
  return `file:${k.vmlinuz}${k.modulesDir ? `,modules=${k.modulesDir}` : ''}${k.configPath ? `,config=${k.configPath}` : ''}`;
}

/** Every file under `dir` that is a device node, fifo or socket. */
function specialFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const n of readdirSync(d)) {
      const p = path.join(d, n);
      const st = lstatSync(p);
      if (st.isDirectory()) walk(p);
      else if (st.isCharacterDevice() || st.isBlockDevice() || st.isFIFO() || st.isSocket()) out.push(p);
    }
  };
  walk(dir);
  return out;
}

describe('fault injection: QEMU and the guest going wrong @boot', function () {
  this.timeout(900_000);
  let kernel: Kernel;
  let accel: 'kvm' | 'tcg';
  let artifacts: string;
  const records = new Map<string, RunRecord>();
  let killed: { pid: number; privDir: string } | undefined;

  before(async () => {
    kernel = testKernel;
    accel = (await detectAccel(kernel.vmlinuz)).accel;
    artifacts = await fs.mkdtemp(path.join(os.tmpdir(), 'rootprobe-faults-art-'));
    const all = await loadScenarios([fixtures]);
    const chosen = pickScenarios(all, ['faults-hold', 'faults-flipped', 'faults-big-initrd', 'faults-big-unpack']);
    await pool(chosen, 2, async (sc) => {
      const r = await runScenario(sc, kernel, {
        accel,
        artifactsRoot: artifacts,
        onEvent: (e) => {
          // kill -9 QEMU from outside once the guest has reported its first stage
          if (sc.name === 'faults-hold' && e.type === 'stage' && e.stage === 'initramfs' && !killed) {
            const [pid] = qemuPids('rootprobe-faults-hold-');
            const cmd = readFileSync(`/proc/${pid}/cmdline`, 'latin1');
            killed = { pid, privDir: path.dirname(/path=([^,\0]*res\.sock)/.exec(cmd)![1]) };
            process.kill(pid, 'SIGKILL');
          }
        },
      });
      records.set(sc.name, r);
    });
  });
  after(async () => {
    await fs.rm(artifacts, { recursive: true, force: true });
  });

  it('QEMU killed by SIGKILL mid-run: `error` naming the signal and the last stage; no QEMU, no temp folder left', () => {
    const r = records.get('faults-hold')!;
    expect(killed, 'the test found and killed the QEMU').to.not.equal(undefined);
    expect(r.outcome, r.message).to.equal('error');
    expect(r.message).to.match(/QEMU was killed by SIGKILL \(not by rootprobe\) after stage `initramfs`/);
    expect(r.durationMs).to.be.below(r.deadlineMs);
    expect(qemuPids('rootprobe-faults-hold-')).to.deep.equal([]);
    expect(existsSync(killed!.privDir), killed!.privDir).to.equal(false);
    expect(readdirSync(os.tmpdir()).filter((n) => n.startsWith('rootprobe-faults-hold-'))).to.deep.equal([]);
  });

  it('a real snapshot whose frame got one character flipped: `error` naming the stage and the hash check', () => {
    const r = records.get('faults-flipped')!;
    expect(r.outcome, r.message).to.equal('error');
    expect(r.message).to.match(/the result frame of stage `initramfs` arrived damaged \(hash\)/);
  });

  it("an initramfs larger than the guest memory: `error` at boot, in QEMU's words, with the sizes", () => {
    const r = records.get('faults-big-initrd')!;
    expect(r.outcome, r.message).to.equal('error');
    expect(r.message).to.match(/QEMU exited with status 1 before any stage: .*initrd is too large/);
    expect(r.message).to.match(/the guest has 64 MiB; the initramfs is 1\d\d\.\d MiB/);
    expect(r.message).to.not.match(/res\.sock/);
  });

  it("an initramfs that fits but not once unpacked: a panic whose message shows the kernel's words and says it is memory", () => {
    const r = records.get('faults-big-unpack')!;
    expect(r.outcome, r.message).to.equal('panic');
    // Where memory runs out decides the kernel's words: an out-of-memory panic, or an unpacking
    // that fails ("invalid magic", "write error") and then no root to mount. Either way the
    // message carries them and says what to change.
    expect(r.message).to.match(/Kernel panic - not syncing: (.*memory|VFS: Unable to mount root fs)/i);
    if (/Unable to mount root/.test(r.message ?? '')) expect(r.message).to.match(/before that it said: Initramfs unpacking failed: /);
    expect(r.message).to.match(/out of guest memory: the guest has 160 MiB; the initramfs is \d+\.\d MiB/);
  });
});

describe('fault injection: the CLI under stress @boot', function () {
  this.timeout(900_000);
  let work: string;
  let kspec: string;
  before(async () => {
    work = await fs.mkdtemp(path.join('/tmp', 'rpfault-'));
    kspec = fileSpec(testKernel);
  });
  after(async () => {
    await fs.rm(work, { recursive: true, force: true });
  });

  it('QEMU missing from PATH: exit 2 naming the package, before anything boots', async () => {
    const pathDir = path.join(work, 'path');
    await fs.mkdir(pathDir);
    for (const t of [...HOST_TOOLS.map((h) => h.command), 'sh', 'node']) {
      const p = t === 'node' ? process.execPath : findCommand(t, HOST_TOOLS.find((h) => h.command === t)?.candidates);
      if (p && t !== 'qemu-system-x86_64') await fs.symlink(p, path.join(pathDir, t)).catch(() => {});
    }
    const before = qemuPids(work).length;
    const r = await cli(['run', 'faults-quick', '--scenarios', fixtures, '--kernel', kspec], { PATH: pathDir }).done;
    expect(r.code, r.out).to.equal(2);
    expect(r.out).to.match(/qemu-system-x86_64 is not installed \(Debian package qemu-system-x86\)/);
    expect(r.out).to.not.match(/PASS|FAIL|ERROR/);
    expect(qemuPids(work).length).to.equal(before);
  });

  it('a file: kernel that is not a kernel: exit 2 saying it is no bzImage', async () => {
    const fake = path.join(work, 'not-a-kernel');
    await fs.writeFile(fake, 'this is text, not a bzImage\n'.repeat(100));
    const r = await cli(['run', 'faults-quick', '--scenarios', fixtures, '--kernel', `file:${fake}`]).done;
    expect(r.code, r.out).to.equal(2);
    expect(r.out).to.include(fake);
    expect(r.out).to.match(/not a bzImage/);
  });

  it(`a guest printing ${FLOOD_MIB} MiB on its console: all of it in console.log, rootprobe's peak RSS within 32 MiB of a quiet run's`, async () => {
    // The emulated UART takes ~120 KB/s under TCG: 100 MB would take ~15 minutes, so the guest
    // prints FLOOD_MIB MiB, and test/qemu.test.ts (e2) pushes 100 MB through the same code with
    // a stand-in. Both CLIs run at once, so they see the same machine.
    const [quiet, loud] = await Promise.all([
      cli(['run', 'faults-quick', '--scenarios', fixtures, '--kernel', kspec, '--artifacts', path.join(work, 'qa'), '--keep']).done,
      cli(['run', 'faults-flood', '--scenarios', fixtures, '--kernel', kspec, '--artifacts', path.join(work, 'fa'), '--keep']).done,
    ]);
    expect(quiet.code, quiet.out).to.equal(0);
    expect(loud.code, loud.out).to.equal(0);
    const logDir = readdirSync(path.join(work, 'fa'))[0];
    const log = path.join(work, 'fa', logDir, 'console.log');
    expect(statSync(log).size).to.be.above(FLOOD_MIB * 2 ** 20);
    expect(readFileSync(log, 'latin1').slice(-200_000)).to.include('FLOOD-END');
    console.log(
      `      peak RSS: quiet run ${(quiet.peakKiB / 1024).toFixed(0)} MiB, ${FLOOD_MIB} MiB flood ${(loud.peakKiB / 1024).toFixed(0)} MiB`,
    );
    expect(loud.peakKiB).to.be.above(0);
    // Two node processes differ by ~15 MiB from run to run, more than this console's size, so
    // this bounds gross growth only; (e2) in test/qemu.test.ts shows 100 MB does not grow RSS.
    expect(loud.peakKiB - quiet.peakKiB).to.be.below(32 * 1024);
  });

  it('SIGINT during 4 runs at once: every QEMU gone, every temp folder removed, the report of the finished run written', async () => {
    const tmp = path.join(work, 't'); // the child's TMPDIR: everything it makes lands here
    await fs.mkdir(tmp);
    const json = path.join(work, 'sigint.json');
    const c = cli(
      [
        'run',
        'faults-quick',
        'faults-hold',
        'faults-hold-2',
        'faults-hold-3',
        '--scenarios',
        fixtures,
        '--kernel',
        kspec,
        '--jobs',
        '4',
        '--json',
        json,
        '--artifacts',
        path.join(work, 'sa'),
      ],
      { TMPDIR: tmp },
    );
    await waitFor(
      'faults-quick to pass and three holds to boot',
      () => /PASS\s+faults-quick/.test(c.out()) && qemuPids(tmp).length === 3,
      600_000,
    );
    const pids = qemuPids(tmp);
    c.child.kill('SIGINT');
    const r = await c.done;
    expect(r.code, r.out).to.equal(130);
    await waitFor('the QEMUs to be reaped', () => pids.every((p) => !existsSync(`/proc/${p}`)), 3000).catch(() => undefined);
    expect(qemuPids(tmp), 'QEMUs left').to.deep.equal([]);
    expect(
      readdirSync(tmp).filter((n) => !n.startsWith('tsx-')),
      'temp folders left (tsx keeps its compile cache)',
    ).to.deep.equal([]);
    const rep = JSON.parse(readFileSync(json, 'utf8')) as { runs: Array<{ scenario: string; outcome: string }> };
    expect(rep.runs.map((x) => `${x.scenario}:${x.outcome}`)).to.deep.equal(['faults-quick:passed']);
  });

  it('two rootprobe processes filling one empty cache at once both pass; a truncated cache entry is rebuilt', async () => {
    const cache = path.join(work, 'cache');
    const env = { ROOTPROBE_CACHE: cache };
    const args = ['run', 'faults-quick', '--scenarios', fixtures, '--kernel', kspec];
    await fs.mkdir(cache);
    await fs
      .copyFile(
        path.join(process.env.ROOTPROBE_CACHE ?? path.join(os.homedir(), '.cache/rootprobe'), 'accel.json'),
        path.join(cache, 'accel.json'),
      )
      .catch(() => {});
    const [a, b] = await Promise.all([cli(args, env).done, cli(args, env).done]);
    expect(a.code, a.out).to.equal(0);
    expect(b.code, b.out).to.equal(0);
    const images = path.join(cache, 'images');
    const names = readdirSync(images);
    expect(
      names.filter((n) => n.startsWith('.') || n.endsWith('.lock')),
      'temporary or lock folders left',
    ).to.deep.equal([]);
    for (const n of names) expect(await isWholeEntry(path.join(images, n)), n).to.equal(true);
    const disk = names.map((n) => path.join(images, n, 'disk.img')).find((p) => existsSync(p))!;
    const segment = names.map((n) => path.join(images, n, 'segment.cpio')).find((p) => existsSync(p))!;
    const sizes = [statSync(disk).size, statSync(segment).size];
    await fs.truncate(disk, Math.floor(sizes[0] / 2));
    await fs.truncate(segment, Math.floor(sizes[1] / 3));
    const c = await cli(args, env).done;
    expect(c.code, c.out).to.equal(0);
    expect([statSync(disk).size, statSync(segment).size]).to.deep.equal(sizes);
    expect(await isWholeEntry(path.dirname(disk))).to.equal(true);
  });
});

describe('security: what the guest can reach, and what building images does to the host', function () {
  this.timeout(600_000);

  describe('a real run @boot', () => {
    let r: RunRecord;
    let argv: string[];
    let artifacts: string;
    before(async () => {
      artifacts = await fs.mkdtemp(path.join(os.tmpdir(), 'rootprobe-sec-'));
      const [sc] = pickScenarios(await loadScenarios([fixtures]), ['faults-quick']);
      r = await runScenario(sc, testKernel, { accel: (await detectAccel(testKernel.vmlinuz)).accel, artifactsRoot: artifacts, keep: true });
      argv = execFileSync('sh', ['-c', `eval "set -- $(cat "$1")"; printf '%s\\n' "$@"`, 'sh', r.artifacts!.qemuCmdline], {
        encoding: 'utf8',
      })
        .split('\n')
        .slice(0, -1);
    });
    after(async () => {
      await fs.rm(artifacts, { recursive: true, force: true });
    });

    it('QEMU gets -nic none and -nodefaults, no host share, no network, no monitor or debugger', () => {
      expect(r.outcome, r.message).to.equal('passed');
      expect(argv[argv.indexOf('-nic') + 1]).to.equal('none');
      expect(argv).to.include('-nodefaults');
      for (const bad of ['-virtfs', '-fsdev', '-netdev', '-net', '-monitor', '-qmp', '-gdb', '-s', '-usb', '-device usb-host', '-object']) {
        expect(argv, bad).to.not.include(bad);
      }
      const devices = argv.filter((_, i) => argv[i - 1] === '-device');
      expect(
        devices.every((d) => d.startsWith('virtio-blk-pci,')),
        devices.join(' '),
      ).to.equal(true);
      const chardevs = argv.filter((_, i) => argv[i - 1] === '-chardev');
      expect(chardevs).to.have.length(2);
      expect(chardevs[0]).to.equal('stdio,id=con,signal=off');
      expect(chardevs[1]).to.match(/^socket,id=res,path=[^,]+\/res\.sock,server=on,wait=on$/);
    });

    it('the guest writes only to per-run copies of its disks, never to the cache', () => {
      const runDir = path.dirname(argv[argv.indexOf('-initrd') + 1]);
      const drives = argv.filter((_, i) => argv[i - 1] === '-drive');
      expect(drives).to.have.length(1);
      for (const d of drives) {
        const file = /^file=((?:[^,]|,,)*)/.exec(d)![1].replaceAll(',,', ',');
        expect(path.dirname(file)).to.equal(runDir);
        expect(file.startsWith(path.join(os.homedir(), '.cache'))).to.equal(false);
      }
    });

    it('inside the guest: only the loopback interface, no 9p or virtiofs mount', () => {
      const st = r.stages.find((s) => s.name === 'initramfs')!;
      expect(st.commands.netdevs.output.trim().split(/\s+/)).to.deep.equal(['lo']);
      expect(st.mountinfo.map((m) => m.fsType)).to.not.include.members(['9p', 'virtiofs', 'nfs']);
    });
  });

  it('building images with device nodes as a non-root user creates no device node on the host', async () => {
    const dir = await fs.mkdtemp(path.join('/tmp', 'rpsec-'));
    try {
      await fs.chmod(dir, 0o777);
      const script = path.join(dir, 'build.mts');
      await fs.writeFile(
        script,
        `import { ImageTree } from ${JSON.stringify(path.join(root, 'harness/image/tree.ts'))};
import { buildCpioSegment } from ${JSON.stringify(path.join(root, 'harness/image/initramfs.ts'))};
import { buildExt4 } from ${JSON.stringify(path.join(root, 'harness/image/disk.ts'))};
const t = new ImageTree('devices');
t.device('/dev/console', 'char', 5, 1).device('/dev/vda', 'block', 254, 0).device('/dev/null', 'char', 1, 3, 0o666).fifo('/run/fifo');
t.file('/etc/hello', 'hello');
console.log(process.getuid(), await buildCpioSegment(t), await buildExt4(t, { sizeMiB: 4 }));
`,
      );
      await fs.chmod(script, 0o644);
      const tmp = path.join(dir, 'tmp');
      const cache = path.join(dir, 'cache');
      await fs.mkdir(tmp, { mode: 0o777 });
      await fs.chmod(tmp, 0o777);
      // As root: drop to nobody; as anyone else: already not root.
      const asRoot = process.getuid!() === 0;
      const cmd = [process.execPath, '--import', 'tsx', script];
      const out = execFileSync(
        asRoot ? 'setpriv' : cmd[0],
        asRoot ? ['--reuid=65534', '--regid=65534', '--clear-groups', '--', ...cmd] : cmd.slice(1),
        {
          cwd: root,
          env: { ...process.env, HOME: dir, TMPDIR: tmp, ROOTPROBE_CACHE: cache },
          encoding: 'utf8',
        },
      );
      const [uid, segment, disk] = out.trim().split(' ');
      expect(uid).to.not.equal('0');
      expect(statSync(segment).size).to.be.above(0);
      expect(statSync(disk).size).to.equal(4 * 2 ** 20);
      // The nodes are in the images (debugfs sees them) and nowhere on the host.
      const st = (p: string): string =>
        execFileSync(findCommand('debugfs')!, ['-R', `stat ${p}`, disk], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
      expect(st('/dev/console')).to.match(/Type: character special/);
      expect(st('/dev/vda')).to.match(/Type: block special/);
      expect(specialFiles(dir)).to.deep.equal([]);
      expect(
        readdirSync(tmp).filter((n) => !n.startsWith('tsx-')),
        'temp folders left (tsx keeps its compile cache)',
      ).to.deep.equal([]);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it('paths from a scenario stay inside the image: .. refused, nothing written through a symlink', async () => {
    for (const bad of ['../etc/passwd', 'a/../../b', '/..', 'x/\0y']) expect(() => archivePath(bad), bad).to.throw(/'\.\.'|NUL/);
    const t = new ImageTree('escape');
    expect(() => t.file('/a/../../etc/passwd', 'x')).to.throw(/\.\./);
    expect(() => t.copy('/../x', '/etc/hostname')).to.throw(/\.\./);
    expect(() => t.hardlink('/h', '/../etc/shadow')).to.throw(/\.\./);
    // A symlink that points at a host folder, and a file "under" it: refused; the symlink
    // alone is built into the image as a link, and nothing is written where it points.
    const host = await fs.mkdtemp(path.join(os.tmpdir(), 'rootprobe-sec-target-'));
    try {
      const t2 = new ImageTree('link-escape');
      t2.symlink('/evil', host).file('/evil/pwned', 'x');
      let err: unknown;
      try {
        await t2.validate();
      } catch (e) {
        err = e;
      }
      expect(String(err)).to.match(/\/evil is a symlink, not a folder/);
      const t3 = new ImageTree('link-only');
      t3.symlink('/evil', host).file('/evil2', 'x');
      const img = await buildExt4(t3, { sizeMiB: 4 });
      expect(statSync(img).size).to.be.above(0);
      expect(readdirSync(host)).to.deep.equal([]);
    } finally {
      await fs.rm(host, { recursive: true, force: true });
    }
  });
});
