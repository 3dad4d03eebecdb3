/**
 * `rootprobe run external --initramfs FILE --kernel K [--disk FILE]... [--cmdline "..."]`
 *
 * Boots K with the given initramfs (our probe appended as one more segment, the file itself
 * never changed) and disks (copy-on-write: never written), and reports the stages of the
 * distro's own flow: initramfs, realroot, and for dracut shutdown.
 */
import { COMMANDS, helpContext, helpText, parseCommand } from '../cli/options.ts';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { UsageError } from '../errors.ts';
import { providers, resolveKernel } from '../../kernels/index.ts';
import { detectAccel } from '../qemu/accel.ts';
import { initOf, runExternal, type ExternalRecord } from './run.ts';
import { reportHtml } from '../report/html.ts';
import { artifactConsoleLog } from '../report/console-log.ts';
import { reportJson, singleRunReport } from '../report/json.ts';
import { inspectInitramfs } from './segment.ts';
import { checkOutputs, EXIT_REPORT_LOST, lostText, writeReports } from '../report/outputs.ts';

import { espInputs, ukiInputs } from './run.ts';
import { checkBoot, parseFirmware } from '../firmware/uefi.ts';
import { defaultArch, archOf } from '../arch/index.ts';
import { removeTempDir } from '../lifecycle.ts';
import { DEFAULTS } from '../plan/defaults.ts';

export const EXTERNAL_USAGE = helpText(COMMANDS['run external'], helpContext(providers()));

export async function cmdRunExternal(args: string[]): Promise<number> {
  const parsed = await parseCommand(COMMANDS['run external'], args);
  if (parsed.help) return 0;
  const { values, positionals } = parsed;
  if (positionals.length > 0)
    throw new UsageError(`run external takes no scenario names (got ${positionals.join(' ')})\n${EXTERNAL_USAGE}`);
  const firmware = parseFirmware(values.firmware, defaultArch());
  if (values.esp) {
    if (values.initramfs || values.kernel || values.uki)
      throw new UsageError(
        `--esp IMAGE holds the kernel and initramfs: give it without --initramfs, --kernel and --uki\n${EXTERNAL_USAGE}`,
      );
    if (values.firmware === 'bios') throw new UsageError('--esp boots under UEFI: --firmware bios cannot start it');
    checkBoot('uefi', 'esp', defaultArch());
  } else if (values.uki) {
    if (values.initramfs || values.kernel)
      throw new UsageError(`--uki FILE holds the kernel and initramfs: give it without --initramfs and --kernel\n${EXTERNAL_USAGE}`);
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
  for (const f of [values.esp ?? values.uki ?? values.initramfs!, ...(values.disk ?? [])]) {
    const st = await fs.stat(f).catch(() => undefined);
    if (!st?.isFile()) throw new UsageError(`${f} is not a file`);
  }
  const started = new Date();
  await checkOutputs([
    { flag: '--artifacts', path: values.artifacts ?? DEFAULTS.artifactsRoot, kind: 'folder' },
    values.json !== undefined ? { flag: '--json', path: values.json, kind: 'file' } : undefined,
    values.html !== undefined ? { flag: '--html', path: values.html, kind: 'file', allowDash: true } : undefined,
  ]);
  // Everything that can be checked without a boot is checked before the kernel and the
  // accelerator probe (which boots): the numbers, and whether the initramfs can be read at all.
  const timeoutSec = num(values.timeout, '--timeout');
  const memoryMiB = num(values.memory, '--memory');
  if (values.initramfs) initOf(await inspectInitramfs(path.resolve(values.initramfs)), values.initramfs, values.cmdline);
  const fromUki = values.uki ? await ukiInputs(values.uki) : undefined;
  const fromEsp = values.esp ? await espInputs(values.esp) : undefined;
  if (fromEsp)
    initOf(await inspectInitramfs(fromEsp.initramfs), `the initrds of ${fromEsp.userEsp.entry}`, values.cmdline ?? fromEsp.cmdline);
  const kernel =
    fromEsp?.kernel ??
    fromUki?.kernel ??
    (await resolveKernel(values.kernel!, { onProgress: (m) => process.stderr.write(`kernel: ${m}\n`) }));
  const accel = await detectAccel(kernel.vmlinuz, { arch: archOf(kernel) });
  process.stderr.write(`accelerator: ${accel.accel} (${accel.reason})\n`);
  const rec: ExternalRecord = await runExternal({
    initramfs: fromEsp?.initramfs ?? fromUki?.initramfs ?? values.initramfs!,
    kernel,
    firmware,
    ...(fromUki ? { uki: values.uki, ukiStub: fromUki.ukiStub } : {}),
    ...(fromEsp ? { esp: values.esp, userEsp: fromEsp.userEsp } : {}),
    disks: values.disk ?? [],
    // A UKI's own .cmdline unless --cmdline replaces it (as a loader's options do without Secure Boot).
    cmdline: values.cmdline ?? fromEsp?.cmdline ?? fromUki?.cmdline,
    accel: accel.accel as 'kvm' | 'tcg',
    artifactsRoot: values.artifacts ?? DEFAULTS.artifactsRoot,
    keep: values.keep ?? false,
    name: values.name,
    end,
    timeoutSec,
    memoryMiB,
    ...(values['storage-daemons'] ? { storageDaemons: 'marked' as const } : {}),
    onEvent: (e) => {
      if (e.type === 'stage') process.stderr.write(`stage ${e.stage} (${(e.elapsedMs / 1000).toFixed(1)} s)\n`);
    },
  });
  if (fromUki) await removeTempDir(fromUki.dir);
  if (fromEsp) await removeTempDir(fromEsp.dir);
  // The message is already short (run/execute.ts finishRecord), the whole one in the artifacts.
  const lost = await writeReports([
    { flag: '--json', path: values.json, text: () => reportJson(singleRunReport(rec, accel.reason, started), 'run external') },
    { flag: '--html', path: values.html, text: () => reportHtml({ runs: [rec] }, { consoleLog: artifactConsoleLog }) },
  ]);
  const lines = [
    `${rec.outcome.toUpperCase()} ${rec.scenario} on ${rec.kernel} (${rec.kernelRelease}, ${rec.accel}, ${rec.firmware ?? 'bios'}${rec.boot ? ` via ${rec.boot}` : ''}, ${(rec.durationMs / 1000).toFixed(1)} s)`,
    `  initramfs: ${rec.info.generator}, ${rec.info.segments} segment(s) (${rec.info.compressions.join(', ')}); initramfs stage: ${rec.info.hookPoint}`,
    `  stages: ${rec.stagesReported.join(', ') || 'none'}`,
    ...rec.evidence.map((e) => `  ${e}`),
    ...rec.inputs.map((i) => `  ${i.before === i.after ? 'unchanged' : 'CHANGED'} ${i.path} (sha256 ${i.after.slice(0, 16)}...)`),
    ...rec.warnings.map((w) => `  warning: ${w}`),
    ...(rec.message ? [`  ${rec.message}`] : []),
    ...(rec.artifacts ? [`  artifacts: ${rec.artifacts.dir}`] : []),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  process.stderr.write(lostText(lost));
  return lost.length ? EXIT_REPORT_LOST : rec.outcome === 'passed' ? 0 : 1;
}
