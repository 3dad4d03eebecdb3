/**
 * A boot plan written out as files, for inspection or use elsewhere (`rootprobe build`):
 *
 *   DIR/initrd.d/NN-<part>.cpio   the initramfs segments, in the order the kernel unpacks them
 *   DIR/initrd.cpio               their concatenation: the -initrd QEMU is given
 *   DIR/disk-<name>.img           the disk images, in guest order (vda, vdb, ...)
 *   DIR/vmlinuz                   a copy of the kernel image
 *   DIR/efivars.fd                UEFI: the variable store (a copy of OVMF's template)
 *   DIR/esp.img                   --boot systemd-boot or uki: the EFI system partition
 *   DIR/qemu.sh                   boots them with rootprobe's exact QEMU command line, the
 *                                 console on the terminal, the result channel into
 *                                 DIR/result.stream (the disks are written to: copy DIR first
 *                                 to keep them pristine)
 *   DIR/qemu.cmdline              that argv on one line
 *   DIR/build.json                the plan: kernel, architecture, accelerator, command line,
 *                                 memory, files
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { qemuArgs } from '../qemu/command.ts';
import { standaloneArgv } from '../qemu/runner.ts';
import { shellLine } from '../quote.ts';
import { copyForRun } from '../image/disk.ts';
import { concatSegments } from '../image/initramfs.ts';
import { UsageError } from '../errors.ts';
import type { Accel } from '../run/record.ts';
import type { BootPlan } from './types.ts';
import { checkBootPath, planCmdline, planEsp } from '../run/execute.ts';
import { copyVars, uefiFiles } from '../firmware/uefi.ts';

export interface WrittenPlan {
  dir: string;
  segments: string[];
  initrd?: string;
  disks: Array<{ name: string; path: string }>;
  vmlinuz: string;
  qemuSh: string;
  argv: string[];
  /** UEFI: the variable store qemu.sh boots with (a copy of the firmware's template). */
  vars?: string;
  /** The EFI system partition (--boot systemd-boot, uki). */
  esp?: string;
}

/** The files writePlan() writes (a folder holding anything else needs `force`). */
const OURS =
  /^(initrd\.d|initrd\.cpio|disk-.*\.img|esp\.img|efivars\.fd|uki\.(efi|cmdline|osrel|uname)|vmlinuz|qemu\.sh|qemu\.cmdline|build\.json|result\.stream|console\.log|qemu\.pid)$/;

/** Refuses a folder that holds files other than a previous build's, unless `force`. */
export async function checkOutDir(out: string, force: boolean): Promise<void> {
  const dir = path.resolve(out);
  const st = await fs.stat(dir).catch(() => undefined);
  if (!st) return;
  if (!st.isDirectory()) throw new UsageError(`--out ${out} exists and is not a folder`);
  const others = (await fs.readdir(dir)).filter((n) => !OURS.test(n));
  if (others.length > 0 && !force) {
    throw new UsageError(
      `--out ${out} already holds files that are not a rootprobe build (${others.slice(0, 5).join(', ')}${others.length > 5 ? ', ...' : ''}); ` +
        `name an empty or new folder, or add --force to write into it anyway`,
    );
  }
}

export async function writePlan(plan: BootPlan, out: string, accel: Accel): Promise<WrittenPlan> {
  const dir = path.resolve(out);
  await fs.mkdir(path.join(dir, 'initrd.d'), { recursive: true });
  const segments: string[] = [];
  for (const [i, s] of plan.initramfs.entries()) {
    const p = path.join(dir, 'initrd.d', `${String(i).padStart(2, '0')}-${s.name}.cpio`);
    await fs.copyFile(s.path, p);
    segments.push(p);
  }
  let initrd: string | undefined;
  if (segments.length > 0) {
    initrd = path.join(dir, 'initrd.cpio');
    await concatSegments(segments, initrd);
  }
  const disks: WrittenPlan['disks'] = [];
  for (const d of plan.disks) {
    const p = path.join(dir, `disk-${d.name}.img`);
    await fs.rm(p, { force: true });
    await copyForRun(d.path, p);
    disks.push({ name: d.name, path: p });
  }
  const vmlinuz = path.join(dir, 'vmlinuz');
  await fs.copyFile(plan.kernel.vmlinuz, vmlinuz);
  checkBootPath(plan);
  const vars = plan.firmware === 'uefi' ? await copyVars(plan.arch, dir) : undefined;
  const esp = plan.boot === 'systemd-boot' || plan.boot === 'uki' ? (await planEsp(plan, dir, initrd)).path : undefined;

  // Built with absolute paths, then made relative to DIR so that the folder can move.
  const full = qemuArgs(
    {
      ...(esp ? { esp: { path: esp } } : { kernel: vmlinuz, ...(initrd ? { initrd } : {}), append: planCmdline(plan) }),
      ...(vars ? { uefi: { code: uefiFiles(plan.arch).code, vars } } : {}),
      disks: disks.map((d) => ({ path: d.path })),
      memoryMiB: plan.memoryMiB,
      cpus: plan.cpus,
      accel,
      arch: plan.arch,
      firmware: plan.firmware,
      runDir: dir,
    },
    { resultSocket: '/tmp/rootprobe-build.sock', interactive: true },
  );
  const argv = standaloneArgv(full).map((a) => a.split(`${dir}/`).join('./'));
  const qemuSh = path.join(dir, 'qemu.sh');
  await fs.writeFile(
    qemuSh,
    [
      '#!/bin/sh',
      `# Boots '${plan.name}' on ${plan.kernel.id} (${plan.kernel.release}) as rootprobe does: the console`,
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
        ...(plan.source ?? {}),
        name: plan.name,
        kernel: { id: plan.kernel.id, release: plan.kernel.release, vmlinuz: plan.kernel.vmlinuz },
        arch: plan.arch.name,
        firmware: plan.firmware,
        ...(plan.boot && plan.boot !== 'kernel' ? { boot: plan.boot } : {}),
        ...(esp ? { esp: rel(esp) } : {}),
        ...(vars ? { efivars: rel(vars) } : {}),
        accel,
        append: plan.cmdline,
        memoryMiB: plan.memoryMiB,
        segments: plan.initramfs.map((s, i) => ({ name: s.name, file: rel(segments[i]) })),
        ...(initrd ? { initrd: rel(initrd) } : {}),
        disks: disks.map((d) => ({ name: d.name, file: rel(d.path) })),
        warnings: plan.warnings,
        argv,
      },
      null,
      1,
    ) + '\n',
  );
  return { dir, segments, initrd, disks, vmlinuz, qemuSh, argv, ...(vars ? { vars } : {}), ...(esp ? { esp } : {}) };
}
