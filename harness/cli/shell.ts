/**
 * `rootprobe shell <scenario> [--kernel K] [--stage S] [--scenarios DIR]... [--cmdline TEXT]`
 *
 * Boots the scenario's images (the same ones `run` boots) with the guest console on this
 * terminal, and stops in a guest shell once the probe has sent stage S (default: the first
 * declared stage): the kernel command line gets `rootprobe.shell=S`, and the probe
 * (harness/guest/probe.c) then runs an interactive busybox sh on /dev/console. Leaving that
 * shell lets the guest go on (to the next stages and its poweroff); Ctrl-a x quits QEMU at
 * any moment (Ctrl-a h lists QEMU's other console keys). No deadline applies. The run's temp
 * folder (initrd, copies of the disks) is removed afterwards and QEMU never outlives the
 * command (lifecycle.ts). The stages the guest reported are listed at the end.
 */
import { COMMANDS, parseCommand } from './options.ts';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { UsageError } from '../errors.ts';
import { loadScenarios, pickScenarios } from '../../scenarios/index.ts';
import { parseKernelSpec, resolveKernel } from '../../kernels/index.ts';
import { prepareImages } from '../run/prepare.ts';
import { concatSegments } from '../image/initramfs.ts';
import { copyForRun } from '../image/disk.ts';
import { bootQemu } from '../qemu/runner.ts';
import { detectAccel } from '../qemu/accel.ts';
import { FrameDecoder } from '../readback/frame.ts';
import { makeTempDir, removeTempDir } from '../lifecycle.ts';
import { expectedStages } from '../scenario.ts';
import { validateScenarios, withScenario } from '../validate.ts';

const DEFAULT_KERNEL = 'debian/bookworm';
/** The memory of a run when the scenario does not say (as in run-scenario.ts). */
const DEFAULT_MEMORY_MIB = 256;
/** An interactive session has no deadline worth the name: one day. */
const SESSION_MS = 24 * 3600 * 1000;

export async function cmdShell(args: string[]): Promise<number> {
  const parsed = parseCommand(COMMANDS.shell, args);
  if (parsed.help) return 0;
  const { values, positionals } = parsed;
  if (positionals.length !== 1) throw new UsageError('usage: rootprobe shell <scenario> [--kernel K] [--stage S]');
  const spec = values.kernel ?? DEFAULT_KERNEL;
  parseKernelSpec(spec);
  const [sc] = pickScenarios(await loadScenarios(values.scenarios ?? []), positionals);
  validateScenarios([sc]);
  const stages = expectedStages(sc);
  const stage = values.stage ?? sc.stages[0];
  if (!stages.includes(stage)) {
    throw new UsageError(`scenario '${sc.name}' has no stage '${stage}'; its stages: ${stages.join(', ')}`);
  }
  if (!process.stdin.isTTY) process.stderr.write('rootprobe shell: standard input is not a terminal; the guest shell may not be usable\n');

  const kernel = await resolveKernel(spec, { onProgress: (m) => process.stderr.write(`kernel ${spec}: ${m}\n`) });
  const images = await prepareImages(sc, kernel).catch((e) => Promise.reject(withScenario(e, sc)));
  const accel = await detectAccel(kernel.vmlinuz, { onProgress: (m) => process.stderr.write(`accel: ${m}\n`) });
  const runDir = await makeTempDir(`rootprobe-shell-${sc.name}-`);
  try {
    const initrd = path.join(runDir, 'initrd.cpio');
    await concatSegments(
      images.segments.map((s) => s.path),
      initrd,
    );
    const disks: Array<{ path: string }> = [];
    for (const d of images.disks) {
      const p = path.join(runDir, `disk-${d.name}.img`);
      await copyForRun(d.cachedPath, p);
      disks.push({ path: p });
    }
    const reported: string[] = [];
    const decoder = new FrameDecoder({
      onEvent: (ev) => {
        if (ev.kind === 'frame') reported.push(ev.stage);
      },
    });
    process.stderr.write(
      `rootprobe shell: ${sc.name} on ${kernel.id} (${kernel.release}, ${accel.accel}); a guest shell after stage '${stage}'.\n` +
        `  exit the shell to let the guest go on; Ctrl-a x quits QEMU at any time.\n`,
    );
    const { outcome } = bootQemu(
      {
        kernel: kernel.vmlinuz,
        initrd,
        append: [sc.cmdline, values.cmdline, `rootprobe.shell=${stage}`].filter(Boolean).join(' '),
        disks,
        memoryMiB: sc.memoryMiB ?? DEFAULT_MEMORY_MIB,
        accel: accel.accel,
        runDir,
      },
      { deadlineMs: SESSION_MS, interactive: true, onResult: (chunk) => decoder.push(chunk) },
    );
    const o = await outcome;
    decoder.end();
    // QEMU puts the terminal back when it exits normally; after a kill it cannot.
    if (o.signal !== null && process.stdin.isTTY) spawnSync('stty', ['sane'], { stdio: 'inherit' });
    const how = o.end === 'exited' ? `QEMU exited (${o.exitCode})` : o.end === 'panic' ? `kernel panic: ${o.panicLine}` : o.end;
    process.stderr.write(`\nrootprobe shell: ${how}; stages reported: ${reported.join(', ') || 'none'}\n`);
    if (o.end === 'spawn-error') {
      process.stderr.write(o.stderr);
      return 1;
    }
    return 0;
  } finally {
    await removeTempDir(runDir);
  }
}
