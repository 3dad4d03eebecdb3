/**
 * `rootprobe build <scenario> [--kernel K] --out DIR [--force] [--scenarios DIR]... [--cmdline TEXT]`
 *
 * Writes the scenario's boot plan (the one `run` boots) as files: its cpio segments, their
 * concatenation, the disk images, the kernel, a runnable qemu.sh and build.json (plan/write.ts).
 * A folder holding anything but an earlier build's files is refused without --force.
 */
import { archOf } from '../arch/index.ts';
import { COMMANDS, parseCommand } from './options.ts';
import * as path from 'node:path';
import { UsageError } from '../errors.ts';
import { loadNamedScenarios } from '../../scenarios/index.ts';
import { kernelsForArch, parseKernelSpec, resolveKernel, type Kernel } from '../../kernels/index.ts';
import { prepareImages } from '../run/prepare.ts';
import { detectAccel } from '../qemu/accel.ts';
import type { Scenario } from '../scenario.ts';
import { validateScenarios, withScenario } from '../validate.ts';
import { DEFAULTS } from '../plan/defaults.ts';
import { planScenario } from '../plan/scenario.ts';
import { checkOutDir, writePlan, type WrittenPlan } from '../plan/write.ts';
import { bootOptions } from '../firmware/cli.ts';
import type { BootPath, Firmware } from '../plan/types.ts';

export type BuildOutput = WrittenPlan;

/** Writes the scenario's images and QEMU command line into `out` (see plan/write.ts). */
export async function buildScenario(
  sc: Scenario,
  kernel: Kernel,
  out: string,
  opts: { accel: 'kvm' | 'tcg'; extraCmdline?: string; firmware?: Firmware; boot?: BootPath },
): Promise<BuildOutput> {
  const images = await prepareImages(sc, kernel, { firmware: opts.firmware }).catch((e) => Promise.reject(withScenario(e, sc)));
  return writePlan(
    planScenario(sc, kernel, images, { extraCmdline: opts.extraCmdline, firmware: opts.firmware, boot: opts.boot }),
    out,
    opts.accel,
  );
}

export async function cmdBuild(args: string[]): Promise<number> {
  const parsed = await parseCommand(COMMANDS.build, args);
  if (parsed.help) return 0;
  const { values, positionals } = parsed;
  if (positionals.length !== 1 || !values.out)
    throw new UsageError('usage: rootprobe build <scenario> [--kernel K] --out DIR [--force] (see: rootprobe build --help)');
  const [spec] = kernelsForArch(values.kernel ? [values.kernel] : undefined, values.arch, DEFAULTS.kernel);
  parseKernelSpec(spec);
  const { firmware, boot } = bootOptions(values);
  await checkOutDir(values.out, values.force ?? false);
  const [sc] = await loadNamedScenarios(positionals, values.scenarios ?? []);
  validateScenarios([sc]);
  const kernel = await resolveKernel(spec, { onProgress: (m) => process.stderr.write(`kernel ${spec}: ${m}\n`) });
  const accel = await detectAccel(kernel.vmlinuz, { arch: archOf(kernel), onProgress: (m) => process.stderr.write(`accel: ${m}\n`) });
  const b = await buildScenario(sc, kernel, values.out, { accel: accel.accel, extraCmdline: values.cmdline, firmware, boot });
  process.stdout.write(
    [
      `built ${sc.name} for ${kernel.id} (${kernel.release}) in ${b.dir}:`,
      ...b.segments.map((s) => `  ${path.relative(b.dir, s)}`),
      ...(b.initrd ? [`  ${path.relative(b.dir, b.initrd)} (the segments concatenated)`] : []),
      ...b.disks.map((d) => `  ${path.relative(b.dir, d.path)} (disk '${d.name}')`),
      ...(b.esp ? [`  ${path.relative(b.dir, b.esp)} (the EFI system partition the firmware boots)`] : []),
      ...(b.vars
        ? [
            `  ${path.relative(b.dir, b.vars)} (UEFI variable store: a copy of ${firmware === 'uefi' ? "OVMF's" : ''} template; qemu.sh writes it)`,
          ]
        : []),
      `  vmlinuz, qemu.sh (boots them: console here, Ctrl-a x quits), qemu.cmdline, build.json`,
      '',
    ].join('\n'),
  );
  return 0;
}
