/**
 * The boot plan of a scenario on a kernel: its prepared images (run/prepare.ts), its command
 * line, memory, deadline and stages, and its check with the scenario's CheckContext.
 */
import { preloadExpect, rootprobeExpect } from '../assert/expect.ts';
import { archOf } from '../arch/index.ts';
import { shellQuote } from '../quote.ts';
import { declaredStages, expectedStages, type CheckContext, type Scenario } from '../scenario.ts';
import type { PreparedImages } from '../run/prepare.ts';
import type { Kernel } from '../../kernels/index.ts';
import { DEFAULTS } from './defaults.ts';
import type { BootPath, BootPlan, Firmware } from './types.ts';

export interface ScenarioPlanOptions {
  /** Appended to the kernel command line. */
  extraCmdline?: string;
  /** More kernel reports allowed (the CLI's --allow-kernel-log). */
  allowKernelLog?: RegExp[];
  /** For the rerun line: how the user invoked rootprobe (default `npx rootprobe`). */
  invocation?: string;
  /** Extra arguments for the rerun line (e.g. --scenarios DIR). */
  rerunArgs?: string[];
  /** Default DEFAULTS.firmware (bios). */
  firmware?: Firmware;
  /** Default `kernel` (-kernel); `systemd-boot` and `uki` boot from an ESP rootprobe builds (uefi only). */
  boot?: BootPath;
}

/** --firmware and --boot for a rerun line, when not the defaults. */
export function bootArgs(opts: Pick<ScenarioPlanOptions, 'firmware' | 'boot'>): string[] {
  return [
    ...(opts.firmware && opts.firmware !== DEFAULTS.firmware ? ['--firmware', opts.firmware] : []),
    ...(opts.boot && opts.boot !== 'kernel' ? ['--boot', opts.boot] : []),
  ];
}

export function rerunLine(
  sc: Pick<Scenario, 'name'>,
  kernel: Pick<Kernel, 'id'>,
  opts: Pick<ScenarioPlanOptions, 'invocation' | 'rerunArgs' | 'firmware' | 'boot'>,
): string {
  return [
    opts.invocation ?? DEFAULTS.invocation,
    'run',
    sc.name,
    '--kernel',
    kernel.id,
    ...(opts.rerunArgs ?? []),
    ...bootArgs(opts),
    '--keep',
  ]
    .map((a, i) => (i === 0 ? a : shellQuote(a)))
    .join(' ');
}

export function planScenario(sc: Scenario, kernel: Kernel, images: PreparedImages, opts: ScenarioPlanOptions = {}): BootPlan {
  const expected = expectedStages(sc);
  const declared = declaredStages(sc);
  return {
    name: sc.name,
    arch: archOf(kernel),
    firmware: opts.firmware ?? DEFAULTS.firmware,
    ...(opts.boot && opts.boot !== 'kernel' ? { boot: opts.boot } : {}),
    kernel,
    cmdline: [sc.cmdline, opts.extraCmdline].filter(Boolean).join(' '),
    initramfs: images.segments,
    disks: images.disks.map((d) => ({ name: d.name, path: d.cachedPath, mode: 'copy' as const })),
    memoryMiB: sc.memoryMiB ?? DEFAULTS.memoryMiB,
    cpus: DEFAULTS.cpus,
    timeoutSec: sc.timeoutSec ?? DEFAULTS.timeoutSec,
    graceSec: DEFAULTS.graceSec,
    stages: expected,
    optionalStages: sc.optionalStages ?? [],
    complete: (rb) => rb.done,
    undeclared: (names) =>
      `the guest probed stage(s) ${names.map((n) => `\`${n}\``).join(', ')} that scenario '${sc.name}' does not declare (${sc.file}); declared: ${declared.join(', ')}`,
    checkName: `scenario '${sc.name}' check`,
    whileBooting: preloadExpect,
    check: async ({ readback, disks, record }) => {
      const expect = await rootprobeExpect();
      const ctx: CheckContext = {
        result: readback,
        stage: (name: string) => {
          if (!declared.includes(name)) {
            throw new Error(
              `scenario '${sc.name}' asserts on stage \`${name}\`, which it does not declare in stages or optionalStages (${sc.file})`,
            );
          }
          return readback.stage(name);
        },
        expect,
        kernel,
        disks,
        evidence: (line) => record.evidence.push(line),
        behaviour: (name) => record.behaviours.push(name),
      };
      await sc.check(ctx);
    },
    allowKernelLog: [...(sc.allowKernelLog ?? []), ...(opts.allowKernelLog ?? [])],
    rerun: rerunLine(sc, kernel, opts),
    warnings: [...images.warnings],
    source: { scenario: sc.name, scenarioFile: sc.file, modules: images.modules, stages: sc.stages },
  };
}
