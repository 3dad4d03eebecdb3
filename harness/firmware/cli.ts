/**
 * `--firmware bios|uefi` and `--boot kernel|systemd-boot|uki` as run, shell and build take
 * them: parsed and checked against the architecture and the host before anything is built.
 */
import { defaultArch } from '../arch/index.ts';
import { DEFAULTS } from '../plan/defaults.ts';
import type { BootPath, Firmware } from '../plan/types.ts';
import { checkBoot, parseBootPath, parseFirmware } from './uefi.ts';

export function bootOptions(values: { firmware?: string; boot?: string }): { firmware: Firmware; boot: BootPath } {
  const arch = defaultArch();
  const firmware = parseFirmware(values.firmware, arch, DEFAULTS.firmware);
  const boot = parseBootPath(values.boot);
  checkBoot(firmware, boot, arch);
  return { firmware, boot };
}
