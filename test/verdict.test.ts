/**
 * The verdict stage's pure parts on recorded console text: kernel reports (WARNING, BUG,
 * KASAN, UBSAN, lockdep, hung tasks, RCU stalls) titled with their first frames, the
 * allow list (a scenario's allowKernelLog and --allow-kernel-log, as the plan combines them),
 * the console watcher (tail, panic, notices) and the full-host-disk verdict.
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { KernelLogWatcher, disallowed, describeReport } from '../harness/verdict/kernel-log.ts';
import { kernelLogVerdict } from '../harness/verdict/channel.ts';
import {
  checkRoom,
  FULL_BELOW,
  FULL_DISK_MARK,
  freeBytes,
  GUEST_DISK_ERROR_RE,
  hostDiskVerdict,
  hostDiskWatch,
  type StatFs,
} from '../harness/verdict/host-disk.ts';
import { SetupError } from '../harness/errors.ts';
import * as os from 'node:os';
import { checkVerdict } from '../harness/verdict/check.ts';
import { ConsoleWatcher, PANIC_MARK } from '../harness/qemu/console.ts';
import type { BootOutcome } from '../harness/qemu/runner.ts';
import { planScenario } from '../harness/plan/scenario.ts';
import { allowKernelLogOption } from '../harness/cli/options.ts';
import { UsageError } from '../harness/errors.ts';
import { scenario } from '../harness/scenario.ts';
import type { Kernel } from '../kernels/index.ts';
import kernelWarning from './fixtures/scenarios/kernel-warning/scenario.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const LKDTM = readFileSync(path.join(here, 'fixtures/verdict/lkdtm-console.txt'), 'utf8');
/** The console of the runner-faults fill_disk boot (TMPDIR on a 40 MiB tmpfs), from /init on; cut where rootprobe's console.log hit ENOSPC. */
const FULL_DISK = readFileSync(path.join(here, 'fixtures/verdict/full-disk-console.txt'), 'utf8').split(/\r?\n/).filter(Boolean);

function watch(text: string): KernelLogWatcher {
  const w = new KernelLogWatcher();
  for (const l of text.split('\n')) w.push(l);
  return w;
}

function boot(over: Partial<BootOutcome>): BootOutcome {
  return {
    end: 'exited',
    exitCode: 0,
    signal: null,
    durationMs: 1,
    consoleTail: [],
    notices: [],
    kernelReports: [],
    consoleLog: '',
    resultStream: '',
    cmdlineFile: '',
    argv: [],
    stderr: '',
    pdeathsig: true,
    ...over,
  };
}

describe('kernel reports on the console (harness/verdict/kernel-log.ts)', () => {
  it('titles a WARNING by its place and function, with the first frames of its call trace', () => {
    const [w] = watch(LKDTM).reports;
    expect(w.kind).to.equal('warning');
    expect(w.title).to.equal('WARNING at drivers/misc/lkdtm/bugs.c:83 lkdtm_WARNING');
    expect(w.frames).to.deep.equal([
      'lkdtm_do_action+0x1c/0x30',
      'direct_entry.cold+0x2b/0x3b',
      'full_proxy_write+0x55/0x80',
      'vfs_write+0xcb/0x3f0',
      'ksys_write+0x65/0xe0',
    ]);
    expect(describeReport(w)).to.match(/^WARNING at .*lkdtm_WARNING \(call trace: lkdtm_do_action\+0x1c\/0x30 < direct_entry/);
  });

  it('finds a BUG, a hung task, KASAN, UBSAN, an RCU stall and lockdep, and nothing in a plain line', () => {
    const r = watch(LKDTM).reports;
    expect(r.map((x) => [x.kind, x.title])).to.deep.equal([
      ['warning', 'WARNING at drivers/misc/lkdtm/bugs.c:83 lkdtm_WARNING'],
      ['bug', 'kernel BUG at drivers/misc/lkdtm/bugs.c:76'],
      ['hung-task', 'INFO: task hung: kworker/0:1'],
      ['kasan', 'KASAN: slab-out-of-bounds in kmalloc_oob_right'],
      ['ubsan', 'UBSAN: array-index-out-of-bounds in lib/test_ubsan.c'],
      ['rcu-stall', 'INFO: rcu detected stall'],
      ['lockdep', 'lockdep: possible circular locking dependency detected'],
    ]);
    // `? die+...` is an unreliable frame: kept, as syzkaller does, but the bug's own frames follow
    expect(r[1].frames).to.include('lkdtm_do_action+0x1c/0x30');
    expect(watch('[    1.0] EXT4-fs (vda): mounted filesystem\n[ 1.1] random: crng init done').reports).to.deep.equal([]);
  });

  it('an allowed report does not fail the run; any other does, with its title in the message', () => {
    const reports = watch(LKDTM).reports.slice(0, 2);
    expect(disallowed(reports, [/lkdtm_WARNING/])).to.have.length(1);
    expect(disallowed(reports, [/lkdtm/])).to.deep.equal([]);
    const v = kernelLogVerdict(boot({ kernelReports: reports }), [/kernel BUG/]);
    expect(v?.outcome).to.equal('failed');
    expect(v?.message)
      .to.match(/reported a bug/)
      .and.match(/WARNING at drivers\/misc\/lkdtm\/bugs\.c:83 lkdtm_WARNING/)
      .and.not.match(/kernel BUG/);
    expect(kernelLogVerdict(boot({ kernelReports: reports }), [/lkdtm/])).to.equal(undefined);
  });

  it('under TCG the timing watchdogs (soft lockup, RCU stall, hung task) do not fail a run; under KVM they do', () => {
    const timing = watch(
      '[ 9.0] watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [kworker/0:1:17]\n[ 9.1] rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:',
    ).reports;
    expect(timing.map((r) => r.kind)).to.deep.equal(['soft-lockup', 'rcu-stall']);
    expect(kernelLogVerdict(boot({ kernelReports: timing }), [], 'tcg')).to.equal(undefined);
    expect(kernelLogVerdict(boot({ kernelReports: timing }), [], 'kvm')?.outcome).to.equal('failed');
    const warning = watch(LKDTM).reports.slice(0, 1);
    expect(kernelLogVerdict(boot({ kernelReports: warning }), [], 'tcg')?.outcome, 'a WARNING fails under TCG too').to.equal('failed');
  });
});

describe("allowed kernel reports: the scenario's allowKernelLog and --allow-kernel-log, combined", () => {
  // What the kernel_warning scenario's guest provokes through LKDTM: a WARNING, then a BUG.
  const lines = LKDTM.split('\n');
  const PROVOKED = lines
    .slice(
      0,
      lines.findIndex((l) => /INFO: task/.test(l)),
    )
    .join('\n');
  const KERNEL: Kernel = { id: 'git:/src/linux@rp-stock', release: '6.1.176+', vmlinuz: '/k/bzImage', description: 'test', sha256: '0' };
  const NO_IMAGES = { segments: [], disks: [], modules: [], warnings: [] };

  /** The runner's way: the console through the watcher, the plan's allow list into the verdict. */
  function verdict(sc: typeof kernelWarning, cli: string[]) {
    const c = new ConsoleWatcher();
    c.write(Buffer.from(PROVOKED));
    c.end();
    const plan = planScenario(sc, KERNEL, NO_IMAGES, { allowKernelLog: allowKernelLogOption(cli) });
    return kernelLogVerdict(boot({ kernelReports: c.kernelReports }), plan.allowKernelLog, 'kvm');
  }
  const allowing = (allowKernelLog: RegExp[]) =>
    scenario({ ...kernelWarning, name: 'kernel_warning_allowing', allowKernelLog }, import.meta);

  it('neither allows anything: the run fails naming the WARNING and the BUG', () => {
    const v = verdict(kernelWarning, []);
    expect(v?.outcome).to.equal('failed');
    expect(v?.message)
      .to.match(/reported 2 bugs/)
      .and.match(/WARNING at drivers\/misc\/lkdtm\/bugs\.c:83 lkdtm_WARNING/)
      .and.match(/kernel BUG at drivers\/misc\/lkdtm\/bugs\.c:76/);
  });

  it("the scenario's own allows the WARNING: the BUG alone fails the run", () => {
    const v = verdict(allowing([/lkdtm_WARNING/]), []);
    expect(v?.message)
      .to.match(/reported a bug/)
      .and.match(/kernel BUG at/)
      .and.not.match(/lkdtm_WARNING/);
  });

  it('--allow-kernel-log alone allows the BUG: the WARNING alone fails the run', () => {
    const v = verdict(kernelWarning, ['kernel BUG at drivers/misc/lkdtm']);
    expect(v?.message)
      .to.match(/reported a bug/)
      .and.match(/lkdtm_WARNING/)
      .and.not.match(/kernel BUG at/);
  });

  it('the two together allow both: the run passes; each one matches titles or console lines', () => {
    expect(verdict(allowing([/lkdtm_WARNING/]), ['kernel BUG'])).to.equal(undefined);
    // `PID: 95` is only in the WARNING's console line, not in its title
    expect(verdict(allowing([/PID: 95 at/]), ['kernel BUG'])).to.equal(undefined);
    expect(verdict(kernelWarning, ['lkdtm'])).to.equal(undefined);
  });

  it("the CLI's patterns are added to the plan's list, never to the scenario's own", () => {
    const sc = allowing([/lkdtm_WARNING/]);
    const plan = planScenario(sc, KERNEL, NO_IMAGES, { allowKernelLog: allowKernelLogOption(['kernel BUG', 'KASAN']) });
    expect(plan.allowKernelLog.map(String)).to.deep.equal(['/lkdtm_WARNING/', '/kernel BUG/', '/KASAN/']);
    expect(sc.allowKernelLog?.map(String)).to.deep.equal(['/lkdtm_WARNING/']);
    expect(planScenario(sc, KERNEL, NO_IMAGES).allowKernelLog.map(String)).to.deep.equal(['/lkdtm_WARNING/']);
  });

  it('an --allow-kernel-log that is not a regular expression is a usage error naming it', () => {
    expect(() => allowKernelLogOption(['lkdtm_(WARNING'])).to.throw(
      UsageError,
      /--allow-kernel-log "lkdtm_\(WARNING" is not a regular expression/,
    );
    expect(allowKernelLogOption(undefined)).to.deep.equal([]);
  });
});

describe('the console watcher (harness/qemu/console.ts)', () => {
  it('splits lines across chunks, drops \\r, keeps a tail of 20, sees the panic once and the notices', () => {
    const panics: string[] = [];
    const c = new ConsoleWatcher({ onPanic: (l) => panics.push(l) });
    const text =
      Array.from({ length: 30 }, (_, i) => `line ${i}\r\n`).join('') +
      `[ 1.0] Initramfs unpacking failed: junk\r\n[ 2.0] ${PANIC_MARK}: Attempted to kill init!\r\n[ 2.1] ${PANIC_MARK}: again`;
    const buf = Buffer.from(text);
    for (let i = 0; i < buf.length; i += 7) c.write(buf.subarray(i, i + 7));
    c.end();
    expect(c.tail).to.have.length(20);
    expect(c.tail.at(-1)).to.equal(`[ 2.1] ${PANIC_MARK}: again`);
    expect(c.tail.every((l) => !l.endsWith('\r'))).to.equal(true);
    expect(panics).to.deep.equal([`${PANIC_MARK}: Attempted to kill init!`]);
    expect(c.notices).to.deep.equal(['[ 1.0] Initramfs unpacking failed: junk']);
  });

  it('collects kernel reports before a panic, none after it', () => {
    const c = new ConsoleWatcher();
    c.write(Buffer.from(`${LKDTM.split('\n').slice(0, 17).join('\n')}\n${PANIC_MARK}: x\nWARNING: CPU: 0 PID: 1 at a.c:1 f+0x1/0x2\n`));
    c.end();
    expect(c.kernelReports.map((r) => r.kind)).to.deep.equal(['warning']);
  });

  it('keeps the guest disk I/O errors of the recorded full-disk console as notices, the buffer cache wording too', () => {
    const c = new ConsoleWatcher();
    c.write(Buffer.from(FULL_DISK.join('\n')));
    c.end();
    expect(c.notices).to.have.length(10);
    expect(c.notices[0]).to.include('I/O error, dev vda, sector 118786');
    expect(c.notices).to.include('[    4.776261] Buffer I/O error on device vda, logical block 59393');
  });
});

describe('the verdict of a full host disk and of a check (harness/verdict/)', () => {
  it('an I/O error on a guest disk is the host ENOSPC only when the host is full', () => {
    const io = boot({ notices: ['[ 3.1] I/O error, dev vda, sector 1234 op 0x1:(WRITE)'] });
    expect(hostDiskVerdict(io, '/', true)).to.equal(undefined); // this machine's / is not full
    expect(hostDiskVerdict(boot({}), '/', true)).to.equal(undefined);
    const full: StatFs = () => ({ bavail: 3, bsize: 4096 });
    expect(hostDiskVerdict(io, '/run/x', true, full)?.message).to.equal(
      `${FULL_DISK_MARK}: the guest's writes to its disk images in /run/x failed (12288 bytes free there; ` +
        'the guest saw: I/O error, dev vda, sector 1234 op 0x1:(WRITE)). Free space there, or point TMPDIR at a larger file system.',
    );
    expect(hostDiskVerdict(io, '/run/x', false, full), 'no disk copies').to.equal(undefined);
  });

  it('knows a guest disk I/O error by the recorded console, and the older kernels wording, not other I/O lines', () => {
    const first = FULL_DISK.findIndex((l) => l.includes('I/O error'));
    expect(first).to.be.greaterThan(5);
    expect(
      FULL_DISK.slice(0, first).filter((l) => GUEST_DISK_ERROR_RE.test(l)),
      'before the first error (the mount, vda found)',
    ).to.deep.equal([]);
    expect(FULL_DISK.slice(first).filter((l) => !GUEST_DISK_ERROR_RE.test(l))).to.deep.equal([]);
    for (const l of [
      '[   12.3] blk_update_request: I/O error, dev vda, sector 2048 op 0x1:(WRITE) flags 0x800 phys_seg 1 prio class 0',
      '[    3.0] Buffer I/O error on dev vdb1, logical block 0, lost async page write',
      '[    5.1] EXT4-fs error (device vda): ext4_journal_check_start:83: comm dd: Detected aborted journal',
      '[    5.2] Aborting journal on device vda-8.',
    ])
      expect(GUEST_DISK_ERROR_RE.test(l), l).to.equal(true);
    for (const l of [
      '[    0.279282] APIC: Switch to symmetric I/O mode setup',
      '[    1.753551] 00:04: ttyS0 at I/O 0x3f8 (irq = 4, base_baud = 115200) is a 16550A',
      '[    2.905479] EXT4-fs (vda): mounted filesystem with ordered data mode. Quota mode: none.',
      '[    2.9] EXT4-fs warning (device vda): ext4_enable_quotas:6412: Failed to enable quota tracking',
      '[    4.0] I/O error, dev loop0, sector 0 op 0x0:(READ) flags 0x80700 phys_seg 1 prio class 2',
      '[    4.1] Buffer I/O error on dev sr0, logical block 0, async page read',
      '[    4.2] EXT4-fs error (device loop1): ext4_find_entry:1682: inode #2: comm ls: reading directory lblock 0',
    ])
      expect(GUEST_DISK_ERROR_RE.test(l), l).to.equal(false);
  });

  it('while the guest runs, ends on the first guest disk I/O error when the disk folder is full, never while it has room', () => {
    const asked: string[] = [];
    const statfsOf =
      (bavail: number): StatFs =>
      (dir) => {
        asked.push(dir);
        return { bavail, bsize: 4096 };
      };
    const full = hostDiskWatch('/tmp/rootprobe-fill_disk-x', statfsOf(1));
    const said = FULL_DISK.map(full);
    const first = said.findIndex((m) => m !== undefined);
    expect(FULL_DISK[first]).to.include('I/O error, dev vda, sector 118786');
    expect(said[first]).to.equal(
      `${FULL_DISK_MARK}: the guest's writes to its disk images in /tmp/rootprobe-fill_disk-x failed (4096 bytes free there; ` +
        'the guest saw: I/O error, dev vda, sector 118786 op 0x1:(WRITE) flags 0x4000 phys_seg 1 prio class 2). ' +
        'Free space there, or point TMPDIR at a larger file system.',
    );
    // statfs only for the I/O error lines, none for the boot's other lines.
    expect(asked).to.have.length(FULL_DISK.length - first);
    expect(new Set(asked)).to.deep.equal(new Set(['/tmp/rootprobe-fill_disk-x']));
    // The same errors with room on the host are the guest's own: nothing ends.
    const roomy = hostDiskWatch('/x', statfsOf(FULL_BELOW / 4096));
    expect(FULL_DISK.map(roomy).filter(Boolean)).to.deep.equal([]);
    expect(hostDiskWatch('/x', statfsOf(FULL_BELOW / 4096 - 1))(FULL_DISK[first]), 'a byte under the mark').to.match(
      /\(1044480 bytes free there;/,
    );
    const unreadable = hostDiskWatch('/x', () => {
      throw new Error('EACCES');
    });
    expect(FULL_DISK.map(unreadable).filter(Boolean)).to.deep.equal([]);
  });

  it('keeps the message of a boot the watch ended as it is, and names a run file the host could not write', () => {
    const msg = `${FULL_DISK_MARK}: the guest's writes to its disk images in /d failed (0 bytes free there; the guest saw: x). Free space there.`;
    expect(hostDiskVerdict(boot({ end: 'stopped', stopReason: msg }), '/d', true)).to.deep.equal({ outcome: 'error', message: msg });
    const own = hostDiskVerdict(
      boot({ end: 'stopped', stopReason: 'the host could not write /d/console.log: ENOSPC no space' }),
      '/d',
      true,
      () => ({ bavail: 0, bsize: 4096 }),
    );
    expect(own?.message).to.equal(
      `${FULL_DISK_MARK}: the host could not write /d/console.log: ENOSPC no space (0 bytes free in /d). Free space there, or point TMPDIR at a larger file system.`,
    );
    expect(hostDiskVerdict(boot({ end: 'stopped', stopReason: 'interrupted' }), '/d', true)).to.equal(undefined);
  });

  it('refuses a disk copy the host has no room for, naming the folder, the free and the needed bytes', () => {
    const seen: string[] = [];
    // 2560 blocks of 4 KiB free: 10 MiB.
    const tenMiB: StatFs = (dir) => {
      seen.push(dir);
      return { bavail: 2560, bsize: 4096 };
    };
    const need = 50 * 2 ** 20;
    let err: unknown;
    try {
      checkRoom('/tmp/rootprobe-run-x', need, "this run's disk copies", tenMiB);
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(SetupError);
    const m = (err as Error).message;
    expect(m).to.include("too full for this run's disk copies: /tmp/rootprobe-run-x has 10.0 MiB (10485760 bytes) free");
    expect(m).to.include(`they need 50.0 MiB (${need} bytes)`);
    expect(m)
      .to.match(/ENOSPC/)
      .and.match(/TMPDIR/);
    expect(seen).to.deep.equal(['/tmp/rootprobe-run-x']);
  });

  it('lets a copy that fits go on (exactly full too), and one whose free space cannot be read', () => {
    const tenMiB: StatFs = () => ({ bavail: 2560, bsize: 4096 });
    expect(() => checkRoom('/x', 10 * 2 ** 20, 'disks', tenMiB)).to.not.throw();
    expect(() => checkRoom('/x', 10 * 2 ** 20 + 1, 'disks', tenMiB)).to.throw(SetupError, /10485761 bytes/);
    const unreadable: StatFs = () => {
      throw Object.assign(new Error('EACCES'), { code: 'EACCES' });
    };
    expect(freeBytes('/x', unreadable)).to.equal(undefined);
    expect(() => checkRoom('/x', 2 ** 50, 'disks', unreadable)).to.not.throw();
    // The real statfs of this machine's TMPDIR: a byte fits, a petabyte does not.
    expect(() => checkRoom(os.tmpdir(), 1, 'disks')).to.not.throw();
    expect(() => checkRoom(os.tmpdir(), 2 ** 50, 'disks')).to.throw(SetupError, new RegExp(`${os.tmpdir()} has`));
  });

  it('an assertion is failed, anything else thrown is error with its stack', async () => {
    expect(await checkVerdict('c', () => void expect(1).to.equal(2))).to.deep.include({ outcome: 'failed' });
    const e = await checkVerdict("scenario 'x' check", () => {
      throw new TypeError('oops');
    });
    expect(e.outcome).to.equal('error');
    expect(e.message).to.match(/^scenario 'x' check threw: TypeError: oops/);
    expect(await checkVerdict('c', async () => {})).to.deep.equal({ outcome: 'passed' });
  });
});
