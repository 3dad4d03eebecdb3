/**
 * External mode: boot a kernel with an initramfs and disks that someone else made (a distro's
 * generator, a user's own kernel) and take stage snapshots from the distro's own flow.
 *
 *   const record = await runExternal({ initramfs: 'initrd.img', kernel, disks: ['root.img'],
 *                                      cmdline: 'root=/dev/vda', accel: 'tcg', artifactsRoot: 'a' });
 *
 * - The user's files are only read: the initramfs is copied into the run folder with our
 *   segment appended (segment.ts); disks are attached with QEMU's snapshot=on, so the guest's
 *   writes go to a throwaway overlay. Their sha256 is taken before and after the run and a
 *   difference is an error.
 * - `rdinit=/.rootprobe/init` is put on the command line (a user's own rdinit= is what our
 *   wrapper execs instead of /init).
 * - Stages: `initramfs` (just before the switch), `realroot` (PID 1 runs from the real root),
 *   and for dracut `shutdown` (in /run/initramfs after its /shutdown unmounted the old root).
 *   The run ends when the guest powers off (the agent asks the distro to, once booted).
 * - The verdict: the stages must all arrive, then checkDistroFlow() and the caller's check.
 */
import { promises as fs } from 'node:fs';
import { sha256File } from '../cache.ts';
import * as path from 'node:path';
import { preloadExpect, rootprobeExpect } from '../assert/expect.ts';
import type { RunReadback } from '../readback/result.ts';
import type { Stage } from '../readback/snapshot.ts';
import type { MountinfoEntry } from '../readback/mountinfo.ts';
import { shellQuote } from '../quote.ts';
import { buildCpioSegment } from '../image/initramfs.ts';
import { UsageError } from '../errors.ts';
import { execute } from '../run/execute.ts';
import { archOf } from '../arch/index.ts';
import { DEFAULTS } from '../plan/defaults.ts';
import type { BootPlan, Firmware } from '../plan/types.ts';
import { splitUki } from '../firmware/uki.ts';
import { probeUserEsp, readUserEsp, type UserEsp } from '../firmware/user-esp.ts';
import { baseCmdline } from '../qemu/command.ts';
import { planCmdline } from '../run/execute.ts';
import { makeTempDir } from '../lifecycle.ts';
import { resolveKernel } from '../../kernels/index.ts';
import type { Accel, RunEvent, RunRecord } from '../run/record.ts';
import type { Kernel } from '../../kernels/index.ts';
import { externalSegment, inspectInitramfs, RDINIT, type InitramfsInfo, type StorageDaemons } from './segment.ts';
import { DAEMON_STAGES, daemonBehaviours, daemonEvidence, daemonFates, storageDaemonProblem } from './daemons.ts';
import { mountTreeText } from '../report/tree-text.ts';

export interface ExternalCheckContext {
  result: RunReadback;
  stage(name: string): Stage;
  expect: Chai.ExpectStatic;
  kernel: Kernel;
  info: InitramfsInfo;
  evidence(line: string): void;
}

export interface ExternalOptions {
  /** The initramfs as the generator made it (any number of segments, compressed or not). */
  initramfs: string;
  kernel: Kernel;
  /** 'bios' (default) or 'uefi'. */
  firmware?: Firmware;
  /**
   * The user's unified kernel image (then `initramfs` and `kernel` are the ones it holds:
   * ukiInputs()). It boots under UEFI as a UKI with the same stub, .linux and .osrel, its
   * .initrd followed by rootprobe's segment, its .cmdline plus rdinit=; the file is only read.
   */
  uki?: string;
  /** Disk image files, in order: /dev/vda, /dev/vdb, ... Never written. */
  disks?: string[];
  /** The kernel command line for the distro (root=..., systemd options); console=ttyS0 is ours. */
  cmdline?: string;
  accel: Accel;
  artifactsRoot: string;
  keep?: boolean;
  /** A name for reports and the artifact folder (default 'external'). */
  name?: string;
  /** Under KVM; scaled for TCG (default 120). */
  timeoutSec?: number;
  /** Default 1024: a distro's initramfs unpacks into RAM. */
  memoryMiB?: number;
  /** 'poweroff' (default): once booted, the agent asks the distro to power off. 'none': the guest decides. */
  end?: 'poweroff' | 'none';
  /** Seconds the agent waits for systemd to finish booting before asking for the power-off (default 240). */
  bootWaitSec?: number;
  /** More assertions, after checkDistroFlow. */
  check?: (ctx: ExternalCheckContext) => void | Promise<void>;
  /** Skip checkDistroFlow (only the stages must arrive, and the caller's check). */
  noDefaultCheck?: boolean;
  /** Kernel reports (WARNING, BUG, ...) that do not fail the run, by title or line. */
  allowKernelLog?: RegExp[];
  onEvent?: (e: RunEvent) => void;
  signal?: AbortSignal;
  invocation?: string;
  /** With `uki`: the UKI without its .linux/.initrd/.cmdline (ukiInputs()). */
  ukiStub?: string;
  /**
   * The user's whole ESP image (then `initramfs` and `kernel` are its entry's: espInputs()). It
   * boots under UEFI from a sparse copy whose entry gets rootprobe's segment as one more initrd
   * and the planned command line; the user's file is only read.
   */
  esp?: string;
  /** With `esp`: the copy and the entry read from it (espInputs()). */
  userEsp?: UserEsp;
  /**
   * Start two stand-in root storage daemons from the initramfs (daemons.ts); the verdict then
   * also asks that the `@`-marked one is alive in every stage. 'unmarked': its broken twin.
   */
  storageDaemons?: StorageDaemons;
}

export interface ExternalRecord extends RunRecord {
  info: Omit<InitramfsInfo, 'paths'>;
  /** sha256 of each user file before and after the run. */
  inputs: Array<{ path: string; before: string; after: string }>;
}

/** The stages an external run expects for this archive. */
export function externalStages(info: InitramfsInfo, end: 'poweroff' | 'none'): string[] {
  const s = ['initramfs', 'realroot'];
  if (info.generator === 'dracut' && end === 'poweroff') s.push('shutdown');
  return s;
}

/** Our own mounts, which the checks leave out: the agent's tmpfs and proc, the probe's. */
export function isOurs(e: MountinfoEntry): boolean {
  return e.source.startsWith('rootprobe-') || e.mountPoint.startsWith('/.rootprobe');
}

const VIRTUAL = new Set(['rootfs', 'tmpfs', 'ramfs']);

/**
 * What must hold for any distro flow: in `initramfs`, `/` is the initramfs (rootfs/tmpfs); in
 * `realroot`, `/` is a block device's filesystem, PID 1 runs a program from it with its root
 * at `/`, and no mount of the initramfs is left except those the distro moved over (/dev,
 * /proc, /sys, /run) and the new root's own; in `shutdown`, `/` is the shutdown initramfs and
 * the real root's filesystem is no longer mounted anywhere.
 */
export function checkDistroFlow(ctx: ExternalCheckContext): void {
  const { expect } = ctx;
  const ini = ctx.stage('initramfs');
  const real = ctx.stage('realroot');
  const iroot = ini.mountAt('/');
  expect(iroot, `initramfs: no mount at /\n${mountTreeText(ini.mountinfo)}`).to.not.equal(undefined);
  expect([...VIRTUAL], `initramfs: / should be the initramfs\n${mountTreeText(ini.mountinfo)}`).to.include(iroot!.fsType);

  const root = real.mountAt('/');
  expect(root, `realroot: no mount at /\n${mountTreeText(real.mountinfo, ini.mountinfo)}`).to.not.equal(undefined);
  expect(
    VIRTUAL.has(root!.fsType),
    `realroot: / is ${root!.fsType}, still an initramfs\n${mountTreeText(real.mountinfo, ini.mountinfo)}`,
  ).to.equal(false);
  expect(root!.source, `realroot: / should come from a block device\n${mountTreeText(real.mountinfo, ini.mountinfo)}`).to.match(/^\/dev\//);
  const pid1 = real.process(1);
  expect(pid1, 'realroot: no PID 1 in the process table').to.not.equal(undefined);
  expect(pid1!.exe, `realroot: PID 1 should run a program of the real root\n${real.processTable()}`).to.match(/^\/[^ ]*$/);
  expect(pid1!.exe).to.not.match(/^\/\.rootprobe/);
  expect(pid1!.root, 'realroot: PID 1 root').to.equal('/');
  ctx.evidence(`realroot: / is ${root!.fsType} from ${root!.source}; PID 1 exe ${pid1!.exe}`);

  // Mounts of the initramfs that are still there, seen from the real root.
  const before = new Map(ini.mountinfo.entries.map((e) => [e.mountId, e]));
  const rootThen = before.get(root!.mountId);
  const leftovers = real.mountinfo.entries.filter((e) => {
    const then = before.get(e.mountId);
    if (!then || isOurs(e)) return false;
    if (e.mountId === root!.mountId) return false;
    if (rootThen && (then.mountPoint === rootThen.mountPoint || then.mountPoint.startsWith(`${rootThen.mountPoint}/`))) return false;
    return !['/dev', '/proc', '/sys', '/run'].some((m) => e.mountPoint === m || e.mountPoint.startsWith(`${m}/`));
  });
  expect(
    leftovers.map((e) => `${e.mountPoint} (${e.fsType} ${e.source}, mount ${e.mountId})`),
    `realroot: mounts of the initramfs left behind\n${mountTreeText(real.mountinfo, ini.mountinfo)}`,
  ).to.deep.equal([]);
  expect(real.mountinfo.entries.filter((e) => e.fsType === 'rootfs').length, 'realroot: rootfs is reachable').to.equal(0);

  if (ctx.result.has('shutdown')) {
    const sd = ctx.stage('shutdown');
    const sroot = sd.mountAt('/');
    expect(sroot, `shutdown: no mount at /\n${mountTreeText(sd.mountinfo, real.mountinfo)}`).to.not.equal(undefined);
    expect([...VIRTUAL], `shutdown: / should be the shutdown initramfs\n${mountTreeText(sd.mountinfo, real.mountinfo)}`).to.include(
      sroot!.fsType,
    );
    const still = sd.mountinfo.entries.filter((e) => e.major === root!.major && e.minor === root!.minor);
    expect(
      still.map((e) => `${e.mountPoint} (mount ${e.mountId})`),
      `shutdown: the real root (${root!.source}, ${root!.major}:${root!.minor}) is still mounted\n${mountTreeText(sd.mountinfo, real.mountinfo)}`,
    ).to.deep.equal([]);
    ctx.evidence(`shutdown: / is ${sroot!.fsType}; ${root!.source} unmounted; PID 1 exe ${sd.process(1)?.exe}`);
  }
}

/**
 * The init the user's initramfs runs (theirs, or the one their rdinit= names) and the command
 * line with ours in its place; a UsageError, before anything boots, when the archive has no such
 * file (the kernel would find no init and panic).
 */
export function initOf(info: InitramfsInfo, initramfs: string, userCmdline = ''): { cmdline: string; init: string } {
  let init = '/init';
  let rdinitGiven = false;
  let cmdline = userCmdline.replace(/(^|\s)rdinit=(\S+)/g, (_m, sp: string, v: string) => {
    init = v;
    rdinitGiven = true;
    return sp;
  });
  cmdline = `${cmdline.trim()} rdinit=${RDINIT}`.trim();
  if (!info.paths.has(init.replace(/^\/+/, ''))) {
    throw new UsageError(
      `${initramfs} has no ${init}${rdinitGiven ? ' (named by rdinit= in --cmdline)' : ''}: the kernel would find no init to run. ` +
        `Give the initramfs your generator made, or name its init with --cmdline 'rdinit=/path'.`,
    );
  }
  return { cmdline, init };
}

/** Boots the user's kernel, initramfs (+ our segment) and disks once; returns the verdict. */
export async function runExternal(opts: ExternalOptions): Promise<ExternalRecord> {
  const name = opts.name ?? 'external';
  const kernel = opts.kernel;
  const end = opts.end ?? 'poweroff';
  if (opts.esp && !opts.userEsp) throw new Error('internal: --esp without its copy (espInputs)');
  const inputsPaths = [opts.esp ?? opts.uki ?? opts.initramfs, ...(opts.disks ?? [])].map((p) => path.resolve(p));
  for (const p of inputsPaths) {
    const st = await fs.stat(p).catch(() => undefined);
    if (!st?.isFile()) throw new UsageError(`${p} is not a file`);
  }
  const info = await inspectInitramfs(path.resolve(opts.initramfs));
  const { paths: _paths, ...infoOut } = info;
  const stagesWanted = externalStages(info, end);

  const { cmdline, init } = initOf(info, opts.initramfs, opts.cmdline);

  const before = await Promise.all(inputsPaths.map((p) => sha256File(p)));
  const seg = await buildCpioSegment(
    await externalSegment(info, {
      init,
      end,
      bootWaitSec: opts.bootWaitSec ?? DEFAULTS.bootWaitSec,
      arch: archOf(kernel),
      daemons: opts.storageDaemons,
    }),
  );
  const inputs: ExternalRecord['inputs'] = [];
  const plan: BootPlan = {
    name,
    arch: archOf(kernel),
    firmware: opts.uki || opts.esp ? 'uefi' : (opts.firmware ?? DEFAULTS.firmware),
    ...(opts.esp ? { boot: 'esp' as const, esp: opts.userEsp!.copy } : {}),
    ...(opts.uki
      ? {
          boot: 'uki' as const,
          ukiStub: opts.ukiStub,
          ukiFrom: `from ${opts.uki} (its stub, .linux, .initrd + rootprobe's segment, .cmdline + rdinit=)`,
        }
      : {}),
    kernel,
    cmdline,
    initramfs: [
      { name: 'user', path: path.resolve(opts.initramfs) },
      { name: 'rootprobe', path: seg },
    ],
    disks: inputsPaths.slice(1).map((p, i) => ({ name: `disk${i}`, path: p, mode: 'overlay' as const })),
    memoryMiB: opts.memoryMiB ?? DEFAULTS.externalMemoryMiB,
    cpus: DEFAULTS.cpus,
    timeoutSec: opts.timeoutSec ?? DEFAULTS.externalTimeoutSec,
    // Everything arrived: the guest powers off by itself (the distro's own shutdown); give it a while.
    graceSec: DEFAULTS.externalGraceSec,
    warnOnGraceStop: true,
    stages: stagesWanted,
    complete: (rb) => stagesWanted.every((st) => rb.has(st)),
    waitingFor: `initramfs made by ${info.generator}`,
    checkName: 'external check',
    whileBooting: preloadExpect,
    check: async ({ readback, record }) => {
      const expect = await rootprobeExpect();
      const ctx: ExternalCheckContext = {
        result: readback,
        stage: (n) => readback.stage(n),
        expect,
        kernel,
        info,
        evidence: (line) => record.evidence.push(line),
      };
      if (opts.storageDaemons) {
        const seen = DAEMON_STAGES.filter((n) => readback.has(n)).map((n) => readback.stage(n));
        const problem = storageDaemonProblem(daemonFates(seen, opts.storageDaemons));
        if (problem) expect.fail(problem);
      }
      if (!opts.noDefaultCheck) checkDistroFlow(ctx);
      if (opts.check) await opts.check(ctx);
    },
    allowKernelLog: opts.allowKernelLog ?? [],
    finish: async (record) => {
      const after = await Promise.all(inputsPaths.map((p) => sha256File(p).catch(() => 'unreadable')));
      inputs.push(...inputsPaths.map((p, i) => ({ path: p, before: before[i], after: after[i] })));
      (record as ExternalRecord).inputs = inputs;
      (record as ExternalRecord).info = infoOut;
      record.behaviours.unshift(`generator: ${info.generator}`);
      if (opts.storageDaemons) {
        // Whatever the verdict: where each daemon was seen in the stages that did arrive.
        const byName = new Map(record.stages.map((st) => [st.name, st]));
        const fates = daemonFates(
          DAEMON_STAGES.filter((n) => byName.has(n)).map((n) => byName.get(n)!),
          opts.storageDaemons,
        );
        record.behaviours.push(...daemonBehaviours(fates));
        record.evidence.push(...daemonEvidence(fates));
      }
      const changed = inputs.filter((x) => x.before !== x.after);
      if (changed.length > 0) {
        record.outcome = 'error';
        record.message = `the run changed the user's file(s) ${changed.map((c) => c.path).join(', ')}: that must never happen`;
      }
    },
    rerun: [
      opts.invocation ?? DEFAULTS.invocation,
      ...(opts.esp
        ? ['run external --esp', shellQuote(opts.esp)]
        : opts.uki
          ? ['run external --uki', shellQuote(opts.uki)]
          : ['run external --initramfs', shellQuote(opts.initramfs), '--kernel', shellQuote(kernel.id)]),
      ...(opts.firmware === 'uefi' && !opts.uki && !opts.esp ? ['--firmware uefi'] : []),
      ...(opts.disks ?? []).flatMap((d) => ['--disk', shellQuote(d)]),
      ...(opts.cmdline ? ['--cmdline', shellQuote(opts.cmdline)] : []),
      '--keep',
    ].join(' '),
    warnings: [],
  };
  if (opts.esp) {
    // systemd-boot boots what the entry says: the command line the plan boots with goes there.
    const booted = [baseCmdline(plan.arch), planCmdline(plan)].filter(Boolean).join(' ');
    const u = opts.userEsp!;
    const what = await probeUserEsp(u, seg, booted, path.dirname(u.copy), plan.arch.uefi!.efiArch);
    const userFinish = plan.finish!;
    plan.finish = async (record) => {
      record.evidence.unshift(`esp: ${opts.esp} (a sparse copy booted copy-on-write): entry ${what}`);
      await userFinish(record);
    };
  }
  opts.onEvent?.({ type: 'phase', scenario: name, kernel: kernel.id, phase: 'images' });
  return (await execute(plan, opts)) as ExternalRecord;
}

/**
 * The parts of a user's UKI that external mode boots: the kernel and initramfs inside it
 * (objcopy --dump-section into a temp folder removed at exit), its command line, and the UKI
 * without them, to be the stub of the UKI rootprobe boots. systemd-stub (252, Debian 12) adds
 * to the embedded .initrd only the cpio archives it makes itself of credentials and system
 * extensions (under /.extra, never executable), and Linux's EFI stub ignores initrd= once a
 * loader has registered an initrd: so rootprobe's segment goes into a copy, after the user's
 * .initrd, the way `ukify` would have put a second --initrd.
 */
export async function ukiInputs(
  uki: string,
): Promise<{ kernel: Kernel; initramfs: string; cmdline?: string; ukiStub: string; sections: string[]; dir: string }> {
  const st = await fs.stat(uki).catch(() => undefined);
  if (!st?.isFile()) throw new UsageError(`--uki ${uki} is not a file`);
  const dir = await makeTempDir('rootprobe-uki-');
  const parts = await splitUki(path.resolve(uki), dir).catch((e) => Promise.reject(new UsageError((e as Error).message)));
  if (!parts.initrd)
    throw new UsageError(
      `--uki ${uki} has no .initrd section: external mode probes the initramfs inside the UKI (sections: ${parts.sections.join(', ')})`,
    );
  const k = await resolveKernel(`file:${parts.linux}`);
  const cmdline = parts.cmdline ? (await fs.readFile(parts.cmdline, 'utf8')).replace(/\0+$/, '').trim() : undefined;
  return {
    kernel: { ...k, id: `uki:${path.resolve(uki)}`, description: `the .linux of ${uki}` },
    initramfs: parts.initrd,
    cmdline,
    ukiStub: parts.stub,
    sections: parts.sections,
    dir,
  };
}

/**
 * The parts of a user's ESP that external mode boots: a sparse copy in a temp folder (removed
 * by the caller), the entry systemd-boot would boot, its kernel and initrds read out with mtools
 * (firmware/user-esp.ts), and its options as the command line.
 */
export async function espInputs(
  esp: string,
): Promise<{ kernel: Kernel; initramfs: string; cmdline: string; userEsp: UserEsp; dir: string }> {
  const st = await fs.stat(esp).catch(() => undefined);
  if (!st?.isFile()) throw new UsageError(`--esp ${esp} is not a file`);
  const dir = await makeTempDir('rootprobe-esp-');
  const u = await readUserEsp(path.resolve(esp), dir);
  if (!u.initramfs) throw new UsageError(`--esp ${esp}: ${u.entry} has no initrd line: external mode probes the initramfs the entry boots`);
  const k = await resolveKernel(`file:${u.kernel}`);
  return {
    kernel: { ...k, id: `esp:${path.resolve(esp)}`, description: `${u.parsed.linux} of ${u.entry} on ${esp}` },
    initramfs: u.initramfs,
    cmdline: u.cmdline,
    userEsp: u,
    dir,
  };
}
