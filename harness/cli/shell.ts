/**
 * `rootprobe shell <scenario> [--kernel K] [--stage S] [--scenarios DIR]... [--cmdline TEXT] [--firmware bios|uefi] [--boot B]`
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
import { archOf } from '../arch/index.ts';
import { COMMANDS, parseCommand } from './options.ts';
import { spawnSync } from 'node:child_process';
import { UsageError } from '../errors.ts';
import { loadNamedScenarios } from '../../scenarios/index.ts';
import { kernelsForArch, parseKernelSpec, resolveKernel, type Kernel } from '../../kernels/index.ts';
import { prepareImages } from '../run/prepare.ts';
import { detectAccel } from '../qemu/accel.ts';
import { declaredStages } from '../scenario.ts';
import { validateScenarios, withScenario } from '../validate.ts';
import { DEFAULTS } from '../plan/defaults.ts';
import { planScenario } from '../plan/scenario.ts';
import { execute } from '../run/execute.ts';
import { makeTempDir } from '../lifecycle.ts';
import { shellLine } from '../quote.ts';
import { gdbCommand } from '../qemu/command.ts';
import * as path from 'node:path';
import { bootOptions } from '../firmware/cli.ts';

/** What `shell --gdb` prints before the boot: the stub's socket and the gdb command line that attaches to it. */
export function gdbNotice(kernel: Pick<Kernel, 'vmlinux' | 'arch'>, socket: string, hostArch = process.arch): string {
  return (
    `  QEMU's gdb stub: ${socket}\n` +
    `  attach with:  ${shellLine(gdbCommand({ socket, vmlinux: kernel.vmlinux, arch: archOf(kernel), hostArch }))}\n` +
    (kernel.vmlinux ? '' : `  (this kernel has no vmlinux with symbols: git: kernels have one)\n`) +
    `  add nokaslr to --cmdline for breakpoints on symbols.\n`
  );
}

export async function cmdShell(args: string[]): Promise<number> {
  const parsed = await parseCommand(COMMANDS.shell, args);
  if (parsed.help) return 0;
  const { values, positionals } = parsed;
  if (positionals.length !== 1) throw new UsageError('usage: rootprobe shell <scenario> [--kernel K] [--stage S] [--gdb]');
  const [spec] = kernelsForArch(values.kernel ? [values.kernel] : undefined, values.arch, DEFAULTS.kernel);
  parseKernelSpec(spec);
  const { firmware, boot } = bootOptions(values);
  const [sc] = await loadNamedScenarios(positionals, values.scenarios ?? []);
  validateScenarios([sc]);
  const stages = declaredStages(sc);
  const stage = values.stage ?? sc.stages[0];
  if (!stages.includes(stage)) {
    throw new UsageError(`scenario '${sc.name}' has no stage '${stage}'; its stages: ${stages.join(', ')}`);
  }
  if (!process.stdin.isTTY) process.stderr.write('rootprobe shell: standard input is not a terminal; the guest shell may not be usable\n');

  const kernel = await resolveKernel(spec, { onProgress: (m) => process.stderr.write(`kernel ${spec}: ${m}\n`) });
  const images = await prepareImages(sc, kernel, { firmware }).catch((e) => Promise.reject(withScenario(e, sc)));
  const accel = await detectAccel(kernel.vmlinuz, { arch: archOf(kernel), onProgress: (m) => process.stderr.write(`accel: ${m}\n`) });
  // The plan `run` boots, with a shell after the stage: the probe (probe.c) starts it.
  const plan = planScenario(sc, kernel, images, {
    extraCmdline: [values.cmdline, `rootprobe.shell=${stage}`].filter(Boolean).join(' '),
    firmware,
    boot,
  });
  process.stderr.write(
    `rootprobe shell: ${sc.name} on ${kernel.id} (${kernel.release}, ${accel.accel}, ${firmware}${boot !== 'kernel' ? ` via ${boot}` : ''}); a guest shell after stage '${stage}'.\n` +
      `  exit the shell to let the guest go on; Ctrl-a x quits QEMU at any time.\n`,
  );
  let gdbSocket: string | undefined;
  if (values.gdb) {
    gdbSocket = path.join(await makeTempDir('rootprobe-gdb-'), 'gdb.sock');
    process.stderr.write(gdbNotice(kernel, gdbSocket));
  }
  const record = await execute(plan, { accel: accel.accel, interactive: true, ...(gdbSocket ? { gdbSocket } : {}) });
  // QEMU puts the terminal back when it exits normally; after a kill it cannot.
  if (process.stdin.isTTY) spawnSync('stty', ['sane'], { stdio: 'inherit' });
  process.stderr.write(
    `\nrootprobe shell: ${record.outcome}${record.message ? `: ${record.message.split('\n')[0]}` : ''}; stages reported: ${record.stagesReported.join(', ') || 'none'}\n`,
  );
  return record.outcome === 'error' && /QEMU did not start/.test(record.message ?? '') ? 1 : 0;
}
