/**
 * `rootprobe run external --initramfs FILE --kernel K [--disk FILE]... [--cmdline "..."]`
 *
 * Boots K with the given initramfs (our probe appended as one more segment, the file itself
 * never changed) and disks (copy-on-write: never written), and reports the stages of the
 * distro's own flow: initramfs, realroot, and for dracut shutdown.
 */
import { parseArgs } from 'node:util';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { UsageError } from '../errors.ts';
import { resolveKernel } from '../../kernels/index.ts';
import { detectAccel } from '../qemu/accel.ts';
import { runExternal, type ExternalRecord } from './run.ts';
import { reportHtml } from '../report/html.ts';
import { ukiInputs } from './run.ts';
import { checkBoot, parseFirmware } from '../firmware/uefi.ts';
import { defaultArch } from '../arch/index.ts';
import { removeTempDir } from '../lifecycle.ts';

export const EXTERNAL_USAGE = `usage: rootprobe run external --initramfs FILE --kernel K | --uki FILE [--disk FILE]... [--cmdline TEXT] [--firmware bios|uefi]
                            [--end poweroff|none] [--timeout SEC] [--memory MIB] [--json FILE] [--html FILE] [--keep]
                            [--artifacts DIR]

  --initramfs FILE   the initramfs as your generator made it (compressed, several segments: fine)
  --kernel K         file:<bzImage> (your kernel), or debian/bookworm etc.
  --disk FILE        a disk image: /dev/vda, /dev/vdb, ... in order; writes go to a throwaway overlay
  --uki FILE         your unified kernel image instead of --initramfs and --kernel: booted under UEFI
                     from an ESP as a copy with rootprobe's segment after its .initrd (the file is only read)
  --firmware F       bios (default) or uefi (OVMF; the kernel through its EFI stub)
  --cmdline TEXT     your kernel command line (root=/dev/vda rw ...); the console is added; with --uki
                     it replaces the UKI's .cmdline, as a boot loader's options do without Secure Boot
  --end poweroff     once booted, rootprobe asks the distro to power off (default); none: the guest decides
  --timeout SEC      deadline under KVM (default 120; x5 under TCG)`;

export async function cmdRunExternal(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      initramfs: { type: 'string' },
      kernel: { type: 'string' },
      disk: { type: 'string', multiple: true },
      cmdline: { type: 'string' },
      end: { type: 'string' },
      timeout: { type: 'string' },
      memory: { type: 'string' },
      json: { type: 'string' },
      html: { type: 'string' },
      keep: { type: 'boolean' },
      artifacts: { type: 'string' },
      name: { type: 'string' },
      firmware: { type: 'string' },
      uki: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(`${EXTERNAL_USAGE}\n`);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`run external takes no scenario names (got ${positionals.join(' ')})\n${EXTERNAL_USAGE}`);
  const firmware = parseFirmware(values.firmware, defaultArch());
  if (values.uki) {
    if (values.initramfs || values.kernel) throw new UsageError(`--uki FILE holds the kernel and initramfs: give it without --initramfs and --kernel\n${EXTERNAL_USAGE}`);
    if (values.firmware === 'bios') throw new UsageError('--uki boots under UEFI: --firmware bios cannot start it');
    checkBoot('uefi', 'uki', defaultArch());
  } else {
    if (!values.initramfs) throw new UsageError(`run external needs --initramfs FILE (or --uki FILE)\n${EXTERNAL_USAGE}`);
    if (!values.kernel) throw new UsageError(`run external needs --kernel K (file:<bzImage> for your own)\n${EXTERNAL_USAGE}`);
    checkBoot(firmware, 'kernel', defaultArch());
  }
  const end = values.end ?? 'poweroff';
  if (end !== 'poweroff' && end !== 'none') throw new UsageError(`--end is poweroff or none, not '${end}'`);
  const num = (v: string | undefined, what: string): number | undefined => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!(n > 0)) throw new UsageError(`${what} takes a positive number (got '${v}')`);
    return n;
  };
  for (const f of [values.uki ?? values.initramfs!, ...(values.disk ?? [])]) {
    const st = await fs.stat(f).catch(() => undefined);
    if (!st?.isFile()) throw new UsageError(`${f} is not a file`);
  }
  const fromUki = values.uki ? await ukiInputs(values.uki) : undefined;
  const kernel = fromUki?.kernel ?? (await resolveKernel(values.kernel!, { onProgress: (m) => process.stderr.write(`kernel: ${m}\n`) }));
  const accel = await detectAccel(kernel.vmlinuz);
  process.stderr.write(`accelerator: ${accel.accel} (${accel.reason})\n`);
  const rec: ExternalRecord = await runExternal({
    initramfs: fromUki?.initramfs ?? values.initramfs!,
    kernel,
    firmware,
    ...(fromUki ? { uki: values.uki, ukiStub: fromUki.ukiStub } : {}),
    disks: values.disk ?? [],
    // A UKI's own .cmdline unless --cmdline replaces it (as a loader's options do without Secure Boot).
    cmdline: values.cmdline ?? fromUki?.cmdline,
    accel: accel.accel as 'kvm' | 'tcg',
    artifactsRoot: values.artifacts ?? 'rootprobe-artifacts',
    keep: values.keep ?? false,
    name: values.name,
    end,
    timeoutSec: num(values.timeout, '--timeout'),
    memoryMiB: num(values.memory, '--memory'),
    onEvent: (e) => {
      if (e.type === 'stage') process.stderr.write(`stage ${e.stage} (${(e.elapsedMs / 1000).toFixed(1)} s)\n`);
    },
  });
  if (fromUki) await removeTempDir(fromUki.dir);
  if (values.json) {
    await fs.mkdir(path.dirname(path.resolve(values.json)), { recursive: true });
    await fs.writeFile(values.json, JSON.stringify(rec, null, 1));
  }
  if (values.html) {
    await fs.mkdir(path.dirname(path.resolve(values.html)), { recursive: true });
    await fs.writeFile(values.html, reportHtml({ runs: [rec] }));
  }
  const lines = [
    `${rec.outcome.toUpperCase()} ${rec.scenario} on ${rec.kernel} (${rec.kernelRelease}, ${rec.accel}, ${rec.firmware ?? 'bios'}${rec.boot ? ` via ${rec.boot}` : ''}, ${(rec.durationMs / 1000).toFixed(1)} s)`,
    `  initramfs: ${rec.info.generator}, ${rec.info.segments} segment(s) (${rec.info.compressions.join(', ')})`,
    `  stages: ${rec.stagesReported.join(', ') || 'none'}`,
    ...rec.evidence.map((e) => `  ${e}`),
    ...rec.inputs.map((i) => `  ${i.before === i.after ? 'unchanged' : 'CHANGED'} ${i.path} (sha256 ${i.after.slice(0, 16)}...)`),
    ...rec.warnings.map((w) => `  warning: ${w}`),
    ...(rec.message ? [`  ${rec.message}`] : []),
    ...(rec.artifacts ? [`  artifacts: ${rec.artifacts.dir}`] : []),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  return rec.outcome === 'passed' ? 0 : 1;
}
