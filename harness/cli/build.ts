/**
 * `rootprobe build <scenario> [--kernel K] --out DIR [--scenarios DIR]... [--cmdline TEXT]`
 *
 * Writes everything a boot of the scenario uses, for inspection or use elsewhere:
 *
 *   DIR/initrd.d/NN-<part>.cpio   the newc cpio segments, in the order the kernel unpacks them
 *                                 (base busybox, modules, the scenario's files, the probe)
 *   DIR/initrd.cpio               their concatenation: the -initrd QEMU is given
 *   DIR/disk-<name>.img           the disk images, in guest order (vda, vdb, ...)
 *   DIR/vmlinuz                   a copy of the kernel image
 *   DIR/qemu.sh                   boots them with rootprobe's exact QEMU command line, the
 *                                 console on the terminal, the result channel into
 *                                 DIR/result.stream (the disks are written to: copy DIR first
 *                                 to keep them pristine)
 *   DIR/qemu.cmdline              that argv on one line
 *   DIR/build.json                the scenario, kernel (id, release, the cached image's
 *                                 path), accelerator, command line, memory, files
 *
 * Existing files of these names in DIR are replaced; nothing else in DIR is touched.
 */
import { COMMANDS, parseCommand } from './options.ts';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { UsageError } from '../errors.ts';
import { loadScenarios, pickScenarios } from '../../scenarios/index.ts';
import { parseKernelSpec, resolveKernel, type Kernel } from '../../kernels/index.ts';
import { prepareImages } from '../run/prepare.ts';
import { concatSegments } from '../image/initramfs.ts';
import { copyForRun } from '../image/disk.ts';
import { qemuArgs, shellLine } from '../qemu/command.ts';
import { standaloneArgv } from '../qemu/runner.ts';
import { detectAccel } from '../qemu/accel.ts';
import type { Scenario } from '../scenario.ts';
import { validateScenarios, withScenario } from '../validate.ts';

const DEFAULT_KERNEL = 'debian/bookworm';
/** The memory of a run when the scenario does not say (as in run-scenario.ts). */
const DEFAULT_MEMORY_MIB = 256;

export interface BuildOutput {
  dir: string;
  segments: string[];
  initrd: string;
  disks: Array<{ name: string; path: string }>;
  vmlinuz: string;
  qemuSh: string;
  argv: string[];
}

/** Writes the scenario's images and QEMU command line into `out` (see the file comment). */
export async function buildScenario(
  sc: Scenario,
  kernel: Kernel,
  out: string,
  opts: { accel: 'kvm' | 'tcg'; extraCmdline?: string },
): Promise<BuildOutput> {
  const dir = path.resolve(out);
  const images = await prepareImages(sc, kernel).catch((e) => Promise.reject(withScenario(e, sc)));
  await fs.mkdir(path.join(dir, 'initrd.d'), { recursive: true });
  const segments: string[] = [];
  for (const [i, s] of images.segments.entries()) {
    const p = path.join(dir, 'initrd.d', `${String(i).padStart(2, '0')}-${s.name}.cpio`);
    await fs.copyFile(s.path, p);
    segments.push(p);
  }
  const initrd = path.join(dir, 'initrd.cpio');
  await concatSegments(segments, initrd);
  const disks: BuildOutput['disks'] = [];
  for (const d of images.disks) {
    const p = path.join(dir, `disk-${d.name}.img`);
    await fs.rm(p, { force: true });
    await copyForRun(d.cachedPath, p);
    disks.push({ name: d.name, path: p });
  }
  const vmlinuz = path.join(dir, 'vmlinuz');
  await fs.copyFile(kernel.vmlinuz, vmlinuz);

  const memoryMiB = sc.memoryMiB ?? DEFAULT_MEMORY_MIB;
  const append = [sc.cmdline, opts.extraCmdline].filter(Boolean).join(' ');
  // Built with absolute paths, then made relative to DIR so that the folder can move.
  const full = qemuArgs(
    { kernel: vmlinuz, initrd, append, disks: disks.map((d) => ({ path: d.path })), memoryMiB, accel: opts.accel, runDir: dir },
    { resultSocket: '/tmp/rootprobe-build.sock', interactive: true },
  );
  const argv = standaloneArgv(full).map((a) => a.split(`${dir}/`).join('./'));
  const qemuSh = path.join(dir, 'qemu.sh');
  await fs.writeFile(
    qemuSh,
    [
      '#!/bin/sh',
      `# Boots scenario '${sc.name}' on ${kernel.id} (${kernel.release}) as rootprobe does: the console`,
      '# on this terminal (Ctrl-a x quits), the result frames into result.stream. The guest writes',
      '# to the disk images here. Written by `rootprobe build`.',
      `cd "$(dirname "$0")" && exec ${shellLine(argv)} "$@"`,
      '',
    ].join('\n'),
    { mode: 0o755 },
  );
  await fs.writeFile(path.join(dir, 'qemu.cmdline'), `${shellLine(argv)}\n`);
  const rel = (p: string): string => path.relative(dir, p);
  await fs.writeFile(
    path.join(dir, 'build.json'),
    JSON.stringify(
      {
        scenario: sc.name,
        scenarioFile: sc.file,
        kernel: { id: kernel.id, release: kernel.release, vmlinuz: kernel.vmlinuz },
        accel: opts.accel,
        append,
        memoryMiB,
        stages: sc.stages,
        segments: images.segments.map((s, i) => ({ name: s.name, file: rel(segments[i]) })),
        initrd: rel(initrd),
        disks: disks.map((d) => ({ name: d.name, file: rel(d.path) })),
        modules: images.modules,
        warnings: images.warnings,
        argv,
      },
      null,
      1,
    ) + '\n',
  );
  return { dir, segments, initrd, disks, vmlinuz, qemuSh, argv };
}

export async function cmdBuild(args: string[]): Promise<number> {
  const parsed = parseCommand(COMMANDS.build, args);
  if (parsed.help) return 0;
  const { values, positionals } = parsed;
  if (positionals.length !== 1 || !values.out) throw new UsageError('usage: rootprobe build <scenario> [--kernel K] --out DIR');
  const spec = values.kernel ?? DEFAULT_KERNEL;
  parseKernelSpec(spec);
  const [sc] = pickScenarios(await loadScenarios(values.scenarios ?? []), positionals);
  validateScenarios([sc]);
  const kernel = await resolveKernel(spec, { onProgress: (m) => process.stderr.write(`kernel ${spec}: ${m}\n`) });
  const accel = await detectAccel(kernel.vmlinuz, { onProgress: (m) => process.stderr.write(`accel: ${m}\n`) });
  const b = await buildScenario(sc, kernel, values.out, { accel: accel.accel, extraCmdline: values.cmdline });
  process.stdout.write(
    [
      `built ${sc.name} for ${kernel.id} (${kernel.release}) in ${b.dir}:`,
      ...b.segments.map((s) => `  ${path.relative(b.dir, s)}`),
      `  ${path.relative(b.dir, b.initrd)} (the segments concatenated)`,
      ...b.disks.map((d) => `  ${path.relative(b.dir, d.path)} (disk '${d.name}')`),
      `  vmlinuz, qemu.sh (boots them: console here, Ctrl-a x quits), qemu.cmdline, build.json`,
      '',
    ].join('\n'),
  );
  return 0;
}
