/**
 * UEFI firmware for a boot: the architecture's OVMF build (Debian's `ovmf`), its code as a
 * read-only pflash and a per-run copy of its variable store, so that nothing one guest writes
 * (boot entries, systemd-boot's Loader* variables) reaches another run or the template.
 *
 * And what the console tells about the firmware afterwards: the kernel's `efi: EFI v2.70 by
 * EDK II` line (the kernel really was started by UEFI) and its `Command line:` (what the EFI
 * stub, systemd-boot or systemd-stub passed), for the run's evidence.
 */
import { existsSync, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { SetupError, UsageError } from '../errors.ts';
import type { ArchSpec } from '../arch/types.ts';
import type { BootPath, Firmware } from '../plan/types.ts';
import { requireHostFile, requireTool, SYSTEMD_BOOT_EFI } from '../host.ts';

export const FIRMWARES: Firmware[] = ['bios', 'uefi'];
/** The boot paths a scenario can take (`esp` is external mode's: the user's own ESP). */
export const SCENARIO_BOOT_PATHS: BootPath[] = ['kernel', 'systemd-boot', 'uki'];

/** `--boot` as given. */
export function parseBootPath(v: string | undefined, allowed: BootPath[] = SCENARIO_BOOT_PATHS): BootPath {
  if (v === undefined) return 'kernel';
  if (!(allowed as string[]).includes(v)) throw new UsageError(`--boot is ${allowed.join(', ')}; not '${v}'`);
  return v as BootPath;
}

/**
 * Before anything is built or booted: the firmware and boot path go together and the host has
 * what they need (OVMF, systemd-boot, the stub, mtools): a usage or setup error otherwise.
 */
export function checkBoot(firmware: Firmware, boot: BootPath | undefined, arch: ArchSpec): void {
  if (!arch.firmware.includes(firmware))
    throw new UsageError(`--firmware ${firmware}: ${arch.name} boots with ${arch.firmware.join(' or ')}`);
  const b = boot ?? 'kernel';
  if (b !== 'kernel' && firmware !== 'uefi') throw new UsageError(`--boot ${b} needs --firmware uefi (BIOS cannot start an EFI binary)`);
  if (firmware === 'bios' && arch.bios) requireHostFile(arch.bios.file, `to start ${arch.name} guests`);
  if (firmware !== 'uefi') return;
  uefiFiles(arch);
  const efiArch = arch.uefi!.efiArch;
  if (b === 'systemd-boot') requireHostFile(path.join(SYSTEMD_BOOT_EFI, `systemd-boot${efiArch}.efi`), 'to boot through systemd-boot');
  if (b === 'uki') requireHostFile(path.join(SYSTEMD_BOOT_EFI, `linux${efiArch}.efi.stub`), 'to assemble a unified kernel image');
  if (b === 'systemd-boot' || b === 'uki')
    for (const t of ['mkfs.vfat', 'mmd', 'mcopy']) requireTool(t, 'to build an EFI system partition');
  if (b === 'esp') for (const t of ['mdir', 'mtype', 'mmd', 'mcopy']) requireTool(t, 'to read and edit a copy of an EFI system partition');
}

/** `--firmware` as given: a usage error naming the choices (and the architecture's) otherwise. */
export function parseFirmware(v: string | undefined, arch: ArchSpec, dflt: Firmware = 'bios'): Firmware {
  if (v === undefined) return dflt;
  if (!(FIRMWARES as string[]).includes(v)) throw new UsageError(`--firmware is bios or uefi, not '${v}'`);
  if (!arch.firmware.includes(v as Firmware)) {
    throw new UsageError(`--firmware ${v}: ${arch.name} boots with ${arch.firmware.join(' or ')}`);
  }
  return v as Firmware;
}

export interface UefiFiles {
  code: string;
  vars: string;
}

/** The architecture's firmware code and variable store template (a matching pair), or a SetupError naming the package. */
export function uefiFiles(arch: ArchSpec): UefiFiles {
  const u = arch.uefi;
  if (!u) throw new UsageError(`${arch.name} has no UEFI firmware in rootprobe`);
  for (let i = 0; i < u.code.length; i++) {
    if (existsSync(u.code[i]) && u.vars[i] && existsSync(u.vars[i])) return { code: u.code[i], vars: u.vars[i] };
  }
  throw new SetupError(
    `UEFI needs the firmware of Debian's ${u.debianPackage} package (none of ${u.code.join(', ')} with its variable store); ` +
      `run \`npx rootprobe doctor --install\` as root, or apt-get install ${u.debianPackage}`,
  );
}

/** A private copy of the variable store in `dir` (efivars.fd): the guest's writes stay in this run. */
export async function copyVars(arch: ArchSpec, dir: string): Promise<string> {
  const { vars } = uefiFiles(arch);
  const out = path.join(dir, 'efivars.fd');
  await fs.copyFile(vars, out);
  await fs.chmod(out, 0o644);
  return out;
}

export interface FirmwareFacts {
  /** The kernel's line about the firmware that started it: `EFI v2.70 by EDK II`. */
  efi?: string;
  /** The command line the kernel was given, as it printed it. */
  cmdline?: string;
}

/**
 * What the guest itself reported under UEFI (the probe, `rootprobe.efi`), through the
 * hash-checked result channel: /sys/firmware/efi/fw_platform_size exists only when UEFI
 * started the kernel; /proc/cmdline is what the kernel got. The console, by contrast, drops
 * bytes under OVMF on a busy host (`oops=paner_check`, `EFI .70 by EDK II` were seen).
 */
export function guestFirmwareFacts(stages: ReadonlyArray<{ files: Record<string, Buffer> }>): { efiBits?: string; cmdline?: string } {
  const out: { efiBits?: string; cmdline?: string } = {};
  for (const st of stages) {
    const size = st.files['/sys/firmware/efi/fw_platform_size'];
    if (size && out.efiBits === undefined) out.efiBits = size.toString('utf8').trim();
    const cl = st.files['/proc/cmdline'];
    if (cl && out.cmdline === undefined) out.cmdline = cl.toString('utf8').replace(/\0/g, ' ').trim();
  }
  return out;
}

/** The facts to judge by: the guest's word first, the console's where it is whole (pure). */
export function mergeFacts(
  consoleFacts: FirmwareFacts,
  guest: { efiBits?: string; cmdline?: string },
): FirmwareFacts & { guestEfi?: boolean } {
  return {
    efi:
      consoleFacts.efi ??
      (guest.efiBits ? `UEFI (${guest.efiBits}-bit, from the guest's /sys/firmware/efi; the console's efi: line was garbled)` : undefined),
    cmdline: guest.cmdline ?? consoleFacts.cmdline,
    guestEfi: guest.efiBits !== undefined,
  };
}

/** What the kernel's console says about how it was started (pure: fed console text in the tests). */
export function firmwareFacts(consoleText: string): FirmwareFacts {
  const facts: FirmwareFacts = {};
  const clean = consoleText.replace(/\r/g, '');
  const efi = /^(?:\[[ \d.]+\] )?efi: (EFI v[\d.]+ by .*)$/m.exec(clean);
  if (efi) facts.efi = efi[1].trim();
  const cmd = /^(?:\[[ \d.]+\] )?Command line: (.*)$/m.exec(clean);
  if (cmd) facts.cmdline = cmd[1].trim();
  return facts;
}

/**
 * Evidence lines for a run's record: which firmware started the kernel, and the command line
 * the kernel got when it is not the one the plan asked for word for word (systemd-boot and
 * systemd-stub may add to it). A `uefi` run whose kernel says nothing of EFI is an error.
 */
export function firmwareEvidence(firmware: Firmware, planned: string, facts: FirmwareFacts): { evidence: string[]; problem?: string } {
  const evidence: string[] = [];
  if (firmware === 'uefi') {
    if (!facts.efi)
      return {
        evidence,
        problem:
          'booted with --firmware uefi, but neither the guest (no /sys/firmware/efi) nor the console (no `efi: EFI v...` line) shows UEFI started the kernel',
      };
    evidence.push(`firmware: ${facts.efi}`);
  } else {
    // BIOS runs keep the evidence they always had.
    return facts.efi
      ? { evidence, problem: `booted with --firmware bios, but the kernel says it was started by ${facts.efi}` }
      : { evidence };
  }
  if (facts.cmdline !== undefined) {
    const got = facts.cmdline.split(/\s+/).filter(Boolean);
    const want = planned.split(/\s+/).filter(Boolean);
    const extra = got.filter((w) => !want.includes(w));
    const missing = want.filter((w) => !got.includes(w));
    if (extra.length || missing.length) {
      evidence.push(
        `command line: the kernel got ${JSON.stringify(facts.cmdline)}` +
          `${extra.length ? `; added: ${extra.join(' ')}` : ''}${missing.length ? `; missing: ${missing.join(' ')}` : ''}`,
      );
    } else {
      evidence.push('command line: as planned');
    }
  }
  return { evidence };
}

/** On the command line of UEFI boots: the probe then reads the loader's EFI variables (probe.c). */
export const EFI_PARAM = 'rootprobe.efi';

/** Where the snapshot's files keep them (the stage's file keys are absolute guest paths). */
const EFIVARS = '/sys/firmware/efi/efivars/';

/** An EFI variable's value as efivarfs gives it (4 bytes of attributes, then the data): UTF-16 text, or hex (pure). */
export function efiVarText(raw: Buffer): string {
  const data = raw.subarray(4);
  if (data.length % 2 === 0 && data.length > 0) {
    const text = data.toString('utf16le').replace(/\0+$/, '');
    if (/^[\x20-\x7e]*$/.test(text)) return text;
  }
  return data.toString('hex');
}

/**
 * The loader's variables the probe read (files/sys/firmware/efi/efivars/<Name>-<vendor GUID>),
 * from the first stage that has them: what systemd-boot and systemd-stub say they did
 * (LoaderEntrySelected, LoaderInfo, StubInfo, LoaderImageIdentifier...) (pure).
 */
export function efiVarsEvidence(stages: ReadonlyArray<{ name: string; files: Record<string, Buffer> }>): string[] {
  for (const st of stages) {
    const names = Object.keys(st.files)
      .filter((k) => k.startsWith(EFIVARS))
      .sort();
    if (names.length === 0) continue;
    const wanted = ['LoaderEntrySelected', 'LoaderInfo', 'StubInfo', 'LoaderImageIdentifier', 'LoaderDevicePartUUID'];
    const parts = names
      .map((k) => ({ name: k.slice(EFIVARS.length).replace(/-[0-9a-f-]{36}$/, ''), raw: st.files[k] }))
      .filter((v) => wanted.includes(v.name))
      .sort((a, b) => wanted.indexOf(a.name) - wanted.indexOf(b.name))
      .map((v) => `${v.name}=${efiVarText(v.raw)}`);
    return [
      `efivars (stage ${st.name}): ${parts.length ? parts.join(', ') : `${names.length} Loader*/Stub* variable(s), none of ${wanted.join(', ')}`}`,
    ];
  }
  return ['efivars: no Loader* or Stub* variables (no boot loader or stub set any)'];
}
