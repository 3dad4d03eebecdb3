import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DefinitionError, SetupError, UsageError } from '../harness/errors.ts';
import { detectAccel, timeoutFactor } from '../harness/qemu/accel.ts';
import { BASE_CMDLINE, qemuArgs, shellLine, type BootSpec } from '../harness/qemu/command.ts';
import { DEFAULTS } from '../harness/plan/defaults.ts';
import { channelVerdict } from '../harness/verdict/channel.ts';
import { RunReadback } from '../harness/readback/result.ts';
import { bootQemu, PANIC_MARK, standaloneArgv } from '../harness/qemu/runner.ts';
import { buildInitramfs, FIXTURES, TEST_KERNEL, VIRTIO_BLK_MODULES } from './fixtures/qemu/initramfs.ts';

function pidDead(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return true;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] === 'Z';
  } catch {
    return true;
  }
}

/** The value after `flag` in argv (first occurrence from `from`). */
function valueAfter(argv: string[], flag: string, from = 0): string | undefined {
  const i = argv.indexOf(flag, from);
  return i < 0 ? undefined : argv[i + 1];
}

describe('qemuArgs', () => {
  const base: BootSpec = { kernel: '/k/bzImage', accel: 'tcg', runDir: '/run/x', qemuBinary: '/usr/bin/qemu-system-x86_64' };
  const ch = { resultSocket: '/tmp/rp-a/res.sock' };

  it('always has the fixed flags, pc, TCG with -cpu max, the defaults, the pidfile', () => {
    const a = qemuArgs(base, ch);
    expect(a[0]).to.equal('/usr/bin/qemu-system-x86_64');
    for (const f of ['-nodefaults', '-no-reboot', '-no-user-config']) expect(a).to.include(f);
    expect(valueAfter(a, '-display')).to.equal('none');
    expect(valueAfter(a, '-nic')).to.equal('none');
    expect(valueAfter(a, '-M')).to.equal('pc');
    expect(valueAfter(a, '-accel')).to.equal('tcg');
    expect(valueAfter(a, '-cpu')).to.equal('max');
    expect(valueAfter(a, '-m')).to.equal(String(DEFAULTS.memoryMiB));
    expect(valueAfter(a, '-smp')).to.equal('1');
    expect(valueAfter(a, '-kernel')).to.equal('/k/bzImage');
    expect(a).to.not.include('-initrd');
    expect(valueAfter(a, '-append')).to.equal(BASE_CMDLINE);
    expect(valueAfter(a, '-pidfile')).to.equal('/run/x/qemu.pid');
  });

  it('KVM uses -cpu host; memory, cpus, initrd and the appended cmdline come after ours', () => {
    const a = qemuArgs({ ...base, accel: 'kvm', memoryMiB: 256, cpus: 2, initrd: '/i.cpio', append: ' rdinit=/x quiet ' }, ch);
    expect(valueAfter(a, '-accel')).to.equal('kvm');
    expect(valueAfter(a, '-cpu')).to.equal('host');
    expect(valueAfter(a, '-m')).to.equal('256');
    expect(valueAfter(a, '-smp')).to.equal('2');
    expect(valueAfter(a, '-initrd')).to.equal('/i.cpio');
    expect(valueAfter(a, '-append')).to.equal('console=ttyS0 panic=-1 oops=panic no_timer_check rootprobe.port=ttyS1 rdinit=/x quiet');
  });

  it('ttyS0 is the console on stdio, ttyS1 the waiting result socket', () => {
    const a = qemuArgs(base, ch);
    const first = a.indexOf('-serial');
    const second = a.indexOf('-serial', first + 1);
    expect(a[first + 1]).to.equal('chardev:con');
    expect(a[second + 1]).to.equal('chardev:res');
    expect(a).to.include('stdio,id=con,signal=off');
    expect(a).to.include('socket,id=res,path=/tmp/rp-a/res.sock,server=on,wait=on');
    expect(a.filter((x) => x === '-serial')).to.have.length(2);
  });

  it('interactive: the console and monitor on the terminal, the result socket unchanged', () => {
    const a = qemuArgs(base, { ...ch, interactive: true });
    expect(valueAfter(a, '-serial')).to.equal('mon:stdio');
    expect(a).to.not.include('stdio,id=con,signal=off');
    expect(a).to.include('socket,id=res,path=/tmp/rp-a/res.sock,server=on,wait=on');
  });

  it('disks: virtio-blk in order, raw, cache=unsafe, readonly/snapshot/serial, commas escaped', () => {
    const a = qemuArgs(
      {
        ...base,
        disks: [{ path: '/d/root.img' }, { path: '/d/a,b.img', readOnly: true, snapshot: true, serial: 'rp-data' }],
      },
      ch,
    );
    const d0 = valueAfter(a, '-drive')!;
    const d1 = valueAfter(a, '-drive', a.indexOf('-drive') + 1)!;
    expect(d0).to.equal('file=/d/root.img,format=raw,if=none,id=disk0,cache=unsafe,werror=report,rerror=report');
    expect(d1).to.equal('file=/d/a,,b.img,format=raw,if=none,id=disk1,cache=unsafe,werror=report,rerror=report,readonly=on,snapshot=on');
    const devs = a.filter((_, i) => a[i - 1] === '-device');
    expect(devs).to.deep.equal(['virtio-blk-pci,drive=disk0', 'virtio-blk-pci,drive=disk1,serial=rp-data']);
  });

  it('rejects what QEMU would reject, saying which input', () => {
    expect(() => qemuArgs({ ...base, disks: [{ path: '/d', serial: 'has,comma' }] }, ch)).to.throw(DefinitionError, /serial/);
    expect(() => qemuArgs({ ...base, disks: [{ path: '/d', serial: 'x'.repeat(21) }] }, ch)).to.throw(DefinitionError);
    expect(() => qemuArgs({ ...base, memoryMiB: 1.5 }, ch)).to.throw(UsageError, /memoryMiB/);
    expect(() => qemuArgs({ ...base, cpus: 0 }, ch)).to.throw(UsageError, /cpus/);
    expect(() => qemuArgs(base, { resultSocket: `/tmp/${'s'.repeat(110)}` })).to.throw(/107/);
  });

  it('without qemuBinary, argv[0] is the installed qemu-system-x86_64', () => {
    const { qemuBinary: _omit, ...spec } = base;
    const a = qemuArgs(spec, ch);
    expect(path.isAbsolute(a[0])).to.equal(true);
    expect(path.basename(a[0])).to.equal('qemu-system-x86_64');
  });

  it('shellLine quotes so that a real shell gives back the same argv', () => {
    const argv = ['/bin/printf', '%s\\n', 'plain', 'with space', "it's", '$HOME', 'a,b=c', '', '*'];
    const out = execFileSync('sh', ['-c', shellLine(argv)], { encoding: 'utf8' });
    expect(out.split('\n').slice(0, -1)).to.deep.equal(argv.slice(2));
  });

  it('standaloneArgv swaps the waiting socket for a file', () => {
    const a = standaloneArgv(qemuArgs(base, ch));
    expect(a).to.include('file,id=res,path=result.stream');
    expect(a.some((x) => x.startsWith('socket,'))).to.equal(false);
  });
});

describe('bootQemu: real boots of the Debian cloud kernel under TCG @boot', function () {
  this.timeout(120_000);
  let work: string;
  const cpio: Record<string, string> = {};
  before(() => {
    work = mkdtempSync(path.join(os.tmpdir(), 'rootprobe-qemutest-'));
    for (const n of ['init-exit', 'init-panic', 'init-hang', 'init-flood']) cpio[n] = buildInitramfs(n, work);
    cpio['init-disks'] = buildInitramfs(
      'init-disks',
      work,
      Object.fromEntries(VIRTIO_BLK_MODULES.map((m) => [`modules/${path.basename(m)}`, m])),
    );
  });
  after(() => work && rmSync(work, { recursive: true, force: true }));

  const spec = (name: string, run: string, append = 'quiet'): BootSpec => ({
    kernel: TEST_KERNEL,
    initrd: cpio[name],
    append,
    accel: 'tcg',
    memoryMiB: 256,
    runDir: path.join(work, run),
  });

  it('(a) /init writes to ttyS1 and powers off: exited, result bytes, kernel log, cmdline', async () => {
    const lines: string[] = [];
    const chunks: Buffer[] = [];
    const { outcome } = bootQemu(spec('init-exit', 'a', ''), {
      deadlineMs: 60_000,
      onConsole: (l) => lines.push(l),
      onResult: (c) => chunks.push(c),
    });
    const o = await outcome;
    expect(o.end, o.stderr).to.equal('exited');
    expect(o.exitCode).to.equal(0);
    const result = readFileSync(o.resultStream);
    expect(result.toString('latin1')).to.match(/RESULT-LINE-1\r?\nRESULT-LINE-2\r?\n/);
    expect(Buffer.concat(chunks).equals(result)).to.equal(true);
    const log = readFileSync(o.consoleLog, 'utf8');
    expect(log).to.include('Linux version');
    expect(log).to.include('INIT-DONE');
    expect(lines).to.include('INIT-DONE');
    expect(lines.some((l) => l.includes('\r') || l.includes('\n'))).to.equal(false);
    expect(o.consoleTail.length).to.be.at.most(20);
    expect(o.consoleTail.join('\n')).to.include('Power down');
    const cmd = readFileSync(o.cmdlineFile, 'utf8');
    expect(cmd.trimEnd().split('\n')).to.have.length(1);
    expect(cmd).to.equal(`${shellLine(o.argv)}\n`);
    expect(o.pdeathsig).to.equal(true);
    expect(o.stderr).to.not.include('waiting for connection');
    // The private socket folder is gone.
    const sock = /path=([^,]*res\.sock)/.exec(o.argv.join(' '))![1];
    expect(existsSync(path.dirname(sock))).to.equal(false);
  });

  it('(b) /init exits, the kernel panics: end=panic within 2 s of the line, with the line', async () => {
    let seenAt = 0;
    const { outcome } = bootQemu(spec('init-panic', 'b', ''), {
      deadlineMs: 60_000,
      onConsole: (l) => {
        if (!seenAt && l.includes(PANIC_MARK)) seenAt = Date.now();
      },
    });
    const o = await outcome;
    const doneAt = Date.now();
    expect(o.end).to.equal('panic');
    expect(o.panicLine).to.match(/^Kernel panic - not syncing: Attempted to kill init!/);
    // what init said before it died is quoted by the panic verdict
    expect(o.userSpace?.at(-1)).to.equal('INIT-ABOUT-TO-EXIT');
    const v = channelVerdict(o, new RunReadback(), { deadlineMs: 60_000, accel: 'tcg', memoryMiB: 256 }, ['x']);
    expect(v?.outcome).to.equal('panic');
    expect(v?.message).to.match(/user space said before it:\n(    \| .*\n)*    \| INIT-ABOUT-TO-EXIT/);
    expect(seenAt).to.be.above(0);
    expect(doneAt - seenAt).to.be.below(2000);
  });

  it('(c) /init hangs: end=deadline at the deadline, and that QEMU is dead', async () => {
    let pid = 0;
    const runDir = path.join(work, 'c');
    const { outcome } = bootQemu(spec('init-hang', 'c'), {
      deadlineMs: 9000,
      onConsole: (l) => {
        if (l.includes('HANG-READY')) pid = Number(readFileSync(path.join(runDir, 'qemu.pid'), 'utf8'));
      },
    });
    const o = await outcome;
    expect(o.end).to.equal('deadline');
    expect(pid, 'the guest reached /init before the deadline').to.be.above(0);
    expect(o.pid).to.equal(pid);
    expect(o.durationMs).to.be.within(9000, 12_000);
    expect(pidDead(pid)).to.equal(true);
  });

  it('(d) stop() mid-boot: end=stopped with the reason, and no QEMU', async () => {
    let stopped = false;
    const started = Date.now();
    const boot = bootQemu(spec('init-hang', 'd', ''), {
      deadlineMs: 60_000,
      onConsole: (l) => {
        if (!stopped && l.includes('Linux version')) {
          stopped = true;
          boot.control.stop('test stops it');
        }
      },
    });
    const o = await boot.outcome;
    expect(o.end).to.equal('stopped');
    expect(o.stopReason).to.equal('test stops it');
    expect(Date.now() - started).to.be.below(10_000);
    expect(readFileSync(o.consoleLog, 'utf8')).to.not.include('HANG-READY');
    expect(pidDead(o.pid!)).to.equal(true);
  });

  it('an AbortSignal stops the boot too', async () => {
    const ac = new AbortController();
    const { outcome } = bootQemu(spec('init-hang', 'abort'), { deadlineMs: 60_000, signal: ac.signal });
    setTimeout(() => ac.abort(new Error('user pressed q')), 300);
    const o = await outcome;
    expect(o.end).to.equal('stopped');
    expect(o.stopReason).to.equal('user pressed q');
    expect(pidDead(o.pid!)).to.equal(true);
  });

  it('(e) a guest flooding its console: all of it on disk, only a tail in memory', async function () {
    this.timeout(240_000);
    let seen = 0;
    // ~10 s on a quiet machine; a deadline with room for a machine busy with other VMs
    const { outcome } = bootQemu(spec('init-flood', 'e'), {
      deadlineMs: 180_000,
      onConsole: (line) => void (line.startsWith('flood flood') && seen++),
    });
    const o = await outcome;
    expect(o.end, o.stderr).to.equal('exited');
    // 4 s of `yes` through the emulated UART: ~500 KB on a quiet machine, ~120 KB on one
    // busy with four other guests. Every line the host saw is on disk; memory holds a tail.
    expect(seen, 'flood lines seen').to.be.above(1000);
    const onDisk = readFileSync(o.consoleLog, 'latin1')
      .split('\n')
      .filter((l) => l.startsWith('flood flood')).length;
    expect(onDisk, 'flood lines in console.log').to.be.at.least(seen);
    expect(o.consoleTail).to.have.length.at.most(20);
    expect(o.consoleTail).to.include('FLOOD-END');
  });

  it('(e2) 100 MB of console through the runner keeps memory bounded (stand-in binary)', async () => {
    // A TCG guest's UART is too slow to show a leak; a stand-in prints as fast as the pipe takes it.
    const bytes = 100_000_000;
    process.env.ROOTPROBE_FLOOD_BYTES = String(bytes);
    try {
      const rss0 = process.memoryUsage().rss;
      let peak = rss0;
      const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
      const { outcome } = bootQemu(
        { ...spec('init-exit', 'e2'), qemuBinary: path.join(FIXTURES, 'flood-standin.sh') },
        { deadlineMs: 60_000, onConsole: () => {} },
      );
      const o = await outcome;
      clearInterval(sampler);
      console.log(`      rss growth peak ${((peak - rss0) / 1e6).toFixed(1)} MB for ${bytes / 1e6} MB of console`);
      expect(o.end, o.stderr).to.equal('exited');
      expect(statSync(o.consoleLog).size).to.be.at.least(bytes);
      expect(o.consoleTail.at(-1)).to.equal('FLOOD-END');
      expect(peak - rss0).to.be.below(50 * 1024 * 1024);
      rmSync(o.consoleLog);
    } finally {
      delete process.env.ROOTPROBE_FLOOD_BYTES;
    }
  });

  it('(f) disks: writes reach the file by the time QEMU exits; snapshot and read-only disks stay unchanged', async () => {
    const img = (n: string): string => {
      const p = path.join(work, `${n}.img`);
      writeFileSync(p, Buffer.alloc(1024 * 1024));
      return p;
    };
    const [vda, vdb, vdc] = [img('vda'), img('vdb'), img('vdc')];
    let result = '';
    const { outcome } = bootQemu(
      {
        ...spec('init-disks', 'f'),
        disks: [
          { path: vda, serial: 'rp-vda' },
          { path: vdb, snapshot: true },
          { path: vdc, readOnly: true },
        ],
      },
      { deadlineMs: 60_000, onResult: (c) => (result += c.toString('latin1')) },
    );
    const o = await outcome;
    expect(o.end, o.consoleTail.join('\n')).to.equal('exited');
    expect(result).to.include('vda-serial=rp-vda');
    expect(result).to.include('vdc=refused');
    expect(result).to.include('vdb-reads=ROOTPROBE-WROTE-VDB'); // the guest sees its write...
    expect(readFileSync(vda).subarray(0, 19).toString()).to.equal('ROOTPROBE-WROTE-VDA');
    expect(readFileSync(vdb).every((b) => b === 0)).to.equal(true); // ...the file does not
    expect(readFileSync(vdc).every((b) => b === 0)).to.equal(true);
  });

  it('a missing kernel or QEMU binary is a SetupError before anything starts', () => {
    expect(() => bootQemu({ ...spec('init-exit', 'x'), kernel: '/nonexistent/bzImage' }, { deadlineMs: 1000 })).to.throw(
      SetupError,
      /kernel image \/nonexistent\/bzImage/,
    );
    expect(() => bootQemu({ ...spec('init-exit', 'x'), qemuBinary: '/nonexistent/qemu' }, { deadlineMs: 1000 })).to.throw(
      SetupError,
      /QEMU binary/,
    );
  });
});

describe('accelerator probe @boot', function () {
  this.timeout(60_000);
  const saved: Record<string, string | undefined> = {};
  let cache: string;
  beforeEach(() => {
    for (const k of ['ROOTPROBE_ACCEL', 'ROOTPROBE_CACHE', 'ROOTPROBE_TIMEOUT_FACTOR']) saved[k] = process.env[k];
    cache = mkdtempSync(path.join(os.tmpdir(), 'rootprobe-acceltest-'));
    process.env.ROOTPROBE_CACHE = cache;
    delete process.env.ROOTPROBE_ACCEL;
    delete process.env.ROOTPROBE_TIMEOUT_FACTOR;
  });
  afterEach(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    rmSync(cache, { recursive: true, force: true });
  });

  it('on this machine the probe answers tcg within ~25 s, and the second call is cached', async () => {
    const progress: string[] = [];
    const t0 = Date.now();
    const first = await detectAccel(TEST_KERNEL, { onProgress: (m) => progress.push(m) });
    const took = Date.now() - t0;
    expect(first.accel).to.equal('tcg');
    expect(first.cached).to.equal(false);
    expect(first.reason).to.match(/kvm/i);
    expect(took).to.be.below(25_000);
    let kvmOpens = true;
    try {
      const fd = (await import('node:fs')).openSync('/dev/kvm', 'r+');
      (await import('node:fs')).closeSync(fd);
    } catch {
      kvmOpens = false;
    }
    if (kvmOpens) {
      // The probe really booted: it reported progress and cached its answer.
      expect(progress.join('\n')).to.include('probing KVM');
      const t1 = Date.now();
      const second = await detectAccel(TEST_KERNEL);
      expect(Date.now() - t1).to.be.below(1000);
      expect(second).to.deep.equal({ ...first, cached: true });
      const file = JSON.parse(readFileSync(path.join(cache, 'accel.json'), 'utf8'));
      expect(Object.values(file.entries)).to.have.length(1);
    }
  });

  it('a damaged accel.json is ignored, not fatal', async () => {
    writeFileSync(path.join(cache, 'accel.json'), '{ not json');
    const a = await detectAccel(TEST_KERNEL);
    expect(a.accel).to.equal('tcg');
  });

  it('ROOTPROBE_ACCEL overrides; any other value is a UsageError', async () => {
    process.env.ROOTPROBE_ACCEL = 'kvm';
    expect(await detectAccel('/nonexistent')).to.deep.equal({ accel: 'kvm', reason: 'ROOTPROBE_ACCEL=kvm', cached: false });
    process.env.ROOTPROBE_ACCEL = 'tcg';
    expect((await detectAccel('/nonexistent')).accel).to.equal('tcg');
    process.env.ROOTPROBE_ACCEL = 'hvf';
    let err: unknown;
    await detectAccel('/nonexistent').catch((e) => (err = e));
    expect(err).to.be.instanceOf(UsageError);
    expect((err as Error).message).to.include('hvf');
  });

  it('timeoutFactor: 1 for KVM, 5 for TCG, times ROOTPROBE_TIMEOUT_FACTOR', () => {
    expect(timeoutFactor('kvm')).to.equal(1);
    expect(timeoutFactor('tcg')).to.equal(5);
    process.env.ROOTPROBE_TIMEOUT_FACTOR = '2.5';
    expect(timeoutFactor('tcg')).to.equal(12.5);
    for (const bad of ['0', '-1', 'x', 'Infinity']) {
      process.env.ROOTPROBE_TIMEOUT_FACTOR = bad;
      expect(() => timeoutFactor('kvm'), bad).to.throw(UsageError, /ROOTPROBE_TIMEOUT_FACTOR/);
    }
  });
});
