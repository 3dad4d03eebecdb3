/**
 * Carries out a boot plan: the one step from plan to run record that `run`, `run external`,
 * `shell`, the library's `boot()` and the matrix share.
 *
 *   plan -> run folder (initrd joined, disks copied) -> QEMU (console, result port)
 *        -> stages (frames decoded as they arrive) -> verdict/ -> record (+ artifacts)
 *
 * Every run gets a folder with its console log, raw result stream, readback, QEMU command
 * line and a reproduce script; it is kept for runs that did not pass, and for all with `keep`.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { FrameDecoder, type ReadbackEvent } from '../readback/frame.ts';
import { RunReadback } from '../readback/result.ts';
import { bootQemu, type BootOutcome, type BootSpec } from '../qemu/runner.ts';
import { timeoutFactor } from '../qemu/accel.ts';
import { makeTempDir, removeTempDir, settled } from '../lifecycle.ts';
import { concatSegments } from '../image/initramfs.ts';
import { copyForRun } from '../image/disk.ts';
import { DEFAULTS } from '../plan/defaults.ts';
import type { BootPlan, PlanRun } from '../plan/types.ts';
import { channelVerdict, kernelLogVerdict, TIMING_KINDS, type Verdict } from '../verdict/channel.ts';
import { checkVerdict } from '../verdict/check.ts';
import { checkRoom, hostDiskVerdict, hostDiskWatch } from '../verdict/host-disk.ts';
import { artifactDir, keepArtifacts } from './artifacts.ts';
import { bareRecord, foldRecordMessage, type Accel, type RunEvent, type RunRecord } from './record.ts';
import {
  copyVars,
  EFI_PARAM,
  efiVarsEvidence,
  firmwareEvidence,
  firmwareFacts,
  guestFirmwareFacts,
  mergeFacts,
  uefiFiles,
} from '../firmware/uefi.ts';
import { buildEsp, systemdBootFiles, ukiFiles } from '../firmware/esp.ts';
import { buildUki } from '../firmware/uki.ts';
import { requireHostFile, SYSTEMD_BOOT_EFI } from '../host.ts';
import { baseCmdline } from '../qemu/command.ts';
import { UsageError } from '../errors.ts';

export interface ExecuteOptions {
  accel: Accel;
  /** Where kept artifact folders go (default DEFAULTS.artifactsRoot). */
  artifactsRoot?: string;
  /** Keep the artifact folder of passing runs too. */
  keep?: boolean;
  onEvent?: (e: RunEvent) => void;
  signal?: AbortSignal;
  /** The console on this terminal (`shell`): no deadline, nothing kept. */
  interactive?: boolean;
  /** QEMU's gdb stub on this unix socket. */
  gdbSocket?: string;
}

/** Why bootAndRead stopped a guest that had said everything but kept running. */
export const GRACE_STOP_REASON = 'the guest reported everything but did not power off';

/** Room left free on the host beyond the disk copies, so the guest's own writes fit too. */
const DISK_MARGIN = 16 * 1024 * 1024;

export interface BootAndReadOptions {
  deadlineMs: number;
  signal?: AbortSignal;
  /** True once the guest has said all it will: the boot then gets `graceMs` to power off before it is stopped. */
  complete: (readback: RunReadback) => boolean;
  graceMs: number;
  interactive?: boolean;
  onStage?: (name: string) => void;
  onConsole?: (line: string) => void;
  /** The folder of the run's disk copies: a guest disk's I/O error while it is full ends the boot at once (verdict/host-disk.ts). */
  hostDiskDir?: string;
}

/**
 * Boots QEMU and turns its result channel into stages in `readback` as they arrive (frames
 * decoded, length and hash checked, snapshots parsed in order). Returns when QEMU is gone.
 */
export async function bootAndRead(spec: BootSpec, readback: RunReadback, opts: BootAndReadOptions): Promise<BootOutcome> {
  let parsing: Promise<void> = Promise.resolve();
  let graceTimer: NodeJS.Timeout | undefined;
  let control: { stop(reason: string): void } | undefined;
  const decoder = new FrameDecoder({
    onEvent: (ev: ReadbackEvent) => {
      parsing = parsing.then(async () => {
        const stage = await readback.addEvent(ev);
        if (stage) opts.onStage?.(stage.name);
        if (!graceTimer && !opts.interactive && opts.complete(readback)) {
          graceTimer = setTimeout(() => control?.stop(GRACE_STOP_REASON), opts.graceMs);
        }
      });
    },
  });
  const fullHostDisk = opts.hostDiskDir !== undefined ? hostDiskWatch(opts.hostDiskDir) : undefined;
  const started = bootQemu(spec, {
    deadlineMs: opts.deadlineMs,
    signal: opts.signal,
    interactive: opts.interactive,
    onResult: (chunk) => decoder.push(chunk),
    onConsole: (line) => {
      const full = fullHostDisk?.(line);
      if (full) control?.stop(full);
      opts.onConsole?.(line);
    },
  });
  control = started.control;
  const boot = await started.outcome;
  if (graceTimer) clearTimeout(graceTimer);
  decoder.end();
  await parsing;
  return boot;
}

/** The record a plan starts with, before its boot. */
export function newRecord(plan: BootPlan, accel: Accel, deadlineMs: number): RunRecord {
  return {
    ...bareRecord({
      scenario: plan.name,
      kernel: plan.kernel,
      accel,
      outcome: 'error',
      memoryMiB: plan.memoryMiB,
      deadlineMs,
      rerun: plan.rerun,
    }),
    ...(plan.kernel.git ? { kernelGit: plan.kernel.git } : {}),
    arch: plan.arch.name,
    firmware: plan.firmware,
    ...(plan.boot && plan.boot !== 'kernel' ? { boot: plan.boot } : {}),
    warnings: [...plan.warnings],
  };
}

/** Allocated bytes of a (sparse) file: what a sparse copy of it takes. */
async function allocated(p: string): Promise<number> {
  const st = await fs.stat(p);
  return st.blocks * 512;
}

/**
 * The run folder's files for a plan: the initramfs segments joined into one file, the disks
 * to copy copied (after checking the host has room for them). Returns QEMU's inputs.
 */
export interface Materialized {
  initrd?: string;
  disks: BootSpec['disks'] & object;
  byName: Record<string, { path: string }>;
  /** UEFI: the firmware and this run's variable store. */
  uefi?: { code: string; vars: string };
  /** The EFI system partition the firmware boots from (then no -kernel). */
  esp?: { path: string; snapshot?: boolean };
  /** What the ESP holds, for the record: `systemd-boot`, `uki (objcopy)`... */
  bootNote?: string;
}

/** The boot path's checks that need no files: a usage error before anything is built. */
export function checkBootPath(plan: Pick<BootPlan, 'firmware' | 'boot' | 'arch' | 'esp'>): void {
  const boot = plan.boot ?? 'kernel';
  if (!plan.arch.firmware.includes(plan.firmware))
    throw new UsageError(`${plan.arch.name} boots with ${plan.arch.firmware.join(' or ')}, not ${plan.firmware}`);
  if (boot !== 'kernel' && plan.firmware !== 'uefi')
    throw new UsageError(`--boot ${boot} needs --firmware uefi (BIOS cannot load an EFI binary)`);
  if (boot === 'esp' && !plan.esp) throw new UsageError('boot path esp needs an ESP image (--esp IMAGE)');
}

/** The plan's command line as booted: under UEFI with `rootprobe.efi`, which has the probe read the loader's EFI variables. */
export function planCmdline(plan: Pick<BootPlan, 'cmdline' | 'firmware'>): string {
  return [plan.cmdline.trim(), plan.firmware === 'uefi' ? EFI_PARAM : ''].filter(Boolean).join(' ');
}

/** The ESP of a plan whose boot path is systemd-boot or uki, built in runDir. */
export async function planEsp(plan: BootPlan, runDir: string, initrd: string | undefined): Promise<{ path: string; note: string }> {
  const efiArch = plan.arch.uefi!.efiArch;
  const cmdline = [baseCmdline(plan.arch), planCmdline(plan)].filter(Boolean).join(' ');
  const esp = path.join(runDir, 'esp.img');
  if (plan.boot === 'systemd-boot') {
    const loader = requireHostFile(path.join(SYSTEMD_BOOT_EFI, `systemd-boot${efiArch}.efi`), 'to boot through systemd-boot');
    await buildEsp(
      systemdBootFiles({
        efiArch,
        loader,
        kernel: plan.kernel.vmlinuz,
        initrd,
        cmdline,
        title: `rootprobe ${plan.name} on ${plan.kernel.id}`,
      }),
      esp,
    );
    return { path: esp, note: 'systemd-boot from a rootprobe ESP (loader/entries/rootprobe.conf)' };
  }
  const built = await buildUki(
    {
      kernel: plan.kernel.vmlinuz,
      initrd,
      cmdline,
      release: plan.kernel.release,
      efiArch,
      ...(plan.ukiStub ? { stub: plan.ukiStub } : {}),
    },
    path.join(runDir, 'uki.efi'),
    runDir,
  );
  const note =
    `a UKI rootprobe assembled (${built.tool}: ${built.sections
      .filter((s) => ['.linux', '.initrd', '.cmdline'].includes(s.name))
      .map((s) => s.name)
      .join(', ')})` + `${plan.ukiFrom ? ` ${plan.ukiFrom}` : ''} from the ESP's fallback path`;
  await buildEsp(ukiFiles(efiArch, built.path), esp);
  return { path: esp, note };
}

export async function materialize(plan: BootPlan, runDir: string): Promise<Materialized> {
  checkBootPath(plan);
  // The disks copied for the run, and a user's ESP (boot path esp), which is copied too.
  const copied = plan.disks.filter((d) => d.mode === 'copy');
  const copies = [...copied.map((d) => d.path), ...((plan.boot ?? 'kernel') === 'esp' ? [plan.esp!] : [])];
  if (copies.length > 0) {
    const need = (await Promise.all(copies.map(allocated))).reduce((a, b) => a + b, 0) + DISK_MARGIN;
    checkRoom(runDir, need, "this run's disk copies (with 16 MiB for the guest's writes)");
  }
  const initrd = plan.initramfs.length > 0 ? path.join(runDir, 'initrd.img') : undefined;
  const diskPath = (d: BootPlan['disks'][number]): string => (d.mode === 'copy' ? path.join(runDir, `disk-${d.name}.img`) : d.path);
  // The initramfs join and the disk copies at once (they are on QEMU's critical path); all
  // end before a failure is thrown, so none is still writing into the folder being removed.
  await settled([
    ...(initrd
      ? [
          concatSegments(
            plan.initramfs.map((s) => s.path),
            initrd,
          ),
        ]
      : []),
    ...copied.map((d) => copyForRun(d.path, diskPath(d))),
  ]);
  const disks: NonNullable<BootSpec['disks']> = [];
  const byName: Record<string, { path: string }> = {};
  for (const d of plan.disks) {
    const p = diskPath(d);
    disks.push({
      path: p,
      ...(d.mode === 'overlay' ? { snapshot: true } : {}),
      ...(d.readOnly ? { readOnly: true } : {}),
      ...(d.serial ? { serial: d.serial } : {}),
    });
    byName[d.name] = { path: p };
  }
  const out: Materialized = { initrd, disks, byName };
  if (plan.firmware === 'uefi') out.uefi = { code: uefiFiles(plan.arch).code, vars: await copyVars(plan.arch, runDir) };
  const boot = plan.boot ?? 'kernel';
  if (boot === 'esp') {
    // A copy in the run's folder (kept with the artifacts, booted by qemu.sh), still attached copy-on-write.
    const esp = path.join(runDir, 'esp.img');
    await copyForRun(plan.esp!, esp);
    out.esp = { path: esp, snapshot: true };
    out.bootNote = `the ESP ${plan.esp} (copy-on-write)`;
  } else if (boot === 'systemd-boot' || boot === 'uki') {
    const esp = await planEsp(plan, runDir, initrd);
    out.esp = { path: esp.path };
    out.bootNote = esp.note;
  }
  return out;
}

/** The QEMU boot of a plan, given its materialized files. */
export function bootSpecOf(
  plan: BootPlan,
  accel: Accel,
  runDir: string,
  files: Pick<Materialized, 'initrd' | 'disks' | 'uefi' | 'esp'>,
): BootSpec {
  return {
    // From the ESP, the kernel, initrd and command line are the ESP's files.
    ...(files.esp
      ? { esp: files.esp }
      : { kernel: plan.kernel.vmlinuz, ...(files.initrd ? { initrd: files.initrd } : {}), append: planCmdline(plan) }),
    ...(files.uefi ? { uefi: files.uefi } : {}),
    disks: files.disks,
    memoryMiB: plan.memoryMiB,
    cpus: plan.cpus,
    accel,
    arch: plan.arch,
    firmware: plan.firmware,
    runDir,
  };
}

async function judge(plan: BootPlan, boot: BootOutcome, run: PlanRun, runDir: string): Promise<Verdict> {
  const full = hostDiskVerdict(
    boot,
    runDir,
    plan.disks.some((d) => d.mode === 'copy'),
  );
  if (full) return full;
  const early = channelVerdict(boot, run.readback, run.record, plan.stages, {
    undeclared: plan.undeclared,
    optional: plan.optionalStages,
  });
  if (early)
    return plan.waitingFor && early.outcome !== 'passed' ? { ...early, message: `${early.message ?? ''}\n  (${plan.waitingFor})` } : early;
  const checked = plan.check ? await checkVerdict(plan.checkName, () => plan.check!(run)) : { outcome: 'passed' as const };
  if (checked.outcome !== 'passed') return checked;
  return kernelLogVerdict(boot, plan.allowKernelLog, run.record.accel) ?? checked;
}

export interface FinishContext {
  /** When the run started (Date.now()). */
  started: number;
  /** The run's temporary folder: moved into the artifacts when kept, removed in any case. */
  runDir: string;
  name: string;
  kernel: { id: string };
  readback: RunReadback;
  boot?: BootOutcome;
  /** The plan's last word on the record (external mode's input hashes). */
  finish?: (record: RunRecord) => Promise<void>;
  /** The console was on the terminal (`shell`): nothing is kept. */
  interactive?: boolean;
  /** Keep a passing run's folder as its artifacts too (a run that did not pass always keeps it). */
  keep?: boolean;
  artifactsRoot: string;
}

/**
 * The step from a judged record to the one every caller gets (`run`, `run external`, `shell`,
 * the library's `boot()`, the matrix): the plan's finish, the duration, the message folded
 * short (the whole one in the artifacts' `message.txt`, which the message names), then the
 * artifacts kept with that record as their `run.json`. The run folder is gone afterwards.
 */
export async function finishRecord(record: RunRecord, ctx: FinishContext): Promise<RunRecord> {
  try {
    if (ctx.finish) await ctx.finish(record);
    record.durationMs = Date.now() - ctx.started;
    // After finish, which may still fail the run (external mode: a user's file changed).
    if (!ctx.interactive && (record.outcome !== 'passed' || ctx.keep)) {
      const wholeMessage = foldRecordMessage(record, path.join(artifactDir(ctx.artifactsRoot, ctx.name, ctx.kernel), 'message.txt'));
      record.artifacts = await keepArtifacts(ctx.runDir, ctx.name, ctx.kernel, record, ctx.readback, ctx.boot, {
        artifactsRoot: ctx.artifactsRoot,
        ...(wholeMessage !== undefined ? { wholeMessage } : {}),
      });
    } else {
      foldRecordMessage(record);
    }
  } finally {
    await removeTempDir(ctx.runDir);
  }
  return record;
}

/** Boots a plan once and returns its verdict with the evidence. */
export async function execute(plan: BootPlan, opts: ExecuteOptions): Promise<RunRecord> {
  const started = Date.now();
  const factor = timeoutFactor(opts.accel, plan.arch);
  const deadlineMs = opts.interactive ? DEFAULTS.sessionMs : Math.round(plan.timeoutSec * 1000 * factor);
  const record = newRecord(plan, opts.accel, deadlineMs);
  const emit = (e: RunEvent): void => opts.onEvent?.(e);
  const runDir = await makeTempDir(`rootprobe-${plan.name.slice(0, 40)}-`);
  let boot: BootOutcome | undefined;
  const readback = new RunReadback();
  try {
    const files = await materialize(plan, runDir);
    if (opts.signal?.aborted) throw new Error('interrupted before boot');
    emit({ type: 'phase', scenario: plan.name, kernel: plan.kernel.id, phase: 'boot' });
    const booting = bootAndRead(
      { ...bootSpecOf(plan, opts.accel, runDir, files), ...(opts.gdbSocket ? { gdbSocket: opts.gdbSocket } : {}) },
      readback,
      {
        deadlineMs,
        signal: opts.signal,
        interactive: opts.interactive,
        complete: plan.complete,
        graceMs: plan.graceSec * 1000 * factor,
        onStage: (stage) => emit({ type: 'stage', scenario: plan.name, kernel: plan.kernel.id, stage, elapsedMs: Date.now() - started }),
        onConsole: (line) => emit({ type: 'console', scenario: plan.name, kernel: plan.kernel.id, line }),
        ...(plan.disks.some((d) => d.mode === 'copy') ? { hostDiskDir: runDir } : {}),
      },
    );
    // QEMU is running (bootQemu spawns it before its first await).
    plan.whileBooting?.();
    boot = await booting;
    record.consoleTail = boot.consoleTail;
    record.stagesReported = readback.names;
    record.stages = readback.stages.map((s) => s.toJSON());
    if (boot.kernelReports.length > 0) record.kernelReports = boot.kernelReports;
    for (const r of boot.kernelReports) {
      if (opts.accel === 'tcg' && TIMING_KINDS.has(r.kind))
        record.warnings.push(
          `the kernel reported ${r.title} (a timing watchdog: under TCG a starved guest trips it, so it does not fail the run)`,
        );
    }
    if (boot.stopReason === GRACE_STOP_REASON && plan.warnOnGraceStop) record.warnings.push(boot.stopReason);
    if (files.bootNote) record.evidence.push(`boot: ${files.bootNote}`);
    const verdict = await judge(plan, boot, { readback, disks: files.byName, record }, runDir);
    record.outcome = verdict.outcome;
    record.message = verdict.message;
    if (plan.firmware === 'uefi') {
      const planned = [baseCmdline(plan.arch), planCmdline(plan)].filter(Boolean).join(' ');
      const consoleFacts = firmwareFacts(await fs.readFile(boot.consoleLog, 'utf8').catch(() => ''));
      const fw = firmwareEvidence(plan.firmware, planned, mergeFacts(consoleFacts, guestFirmwareFacts(readback.stages)));
      record.evidence.push(...fw.evidence, ...efiVarsEvidence(readback.stages));
      if (fw.problem && record.outcome === 'passed') {
        record.outcome = 'error';
        record.message = fw.problem;
      }
    }
  } catch (e) {
    record.outcome = 'error';
    record.message = (e as Error).message;
    if (boot) record.consoleTail = boot.consoleTail;
  } finally {
    await finishRecord(record, {
      started,
      runDir,
      name: plan.name,
      kernel: plan.kernel,
      readback,
      boot,
      finish: plan.finish,
      interactive: opts.interactive,
      keep: opts.keep,
      artifactsRoot: opts.artifactsRoot ?? DEFAULTS.artifactsRoot,
    });
  }
  return record;
}
