/**
 * A full host disk, told apart from a guest that hangs or fails: the guest's disks get
 * `werror=report` (qemu/command.ts), so a host ENOSPC reaches the guest as an I/O error on
 * its virtio disk, which the console shows; if the host file system holding the run's disk
 * copies is then (nearly) full, the run is an `error` naming the host path, not a timeout.
 */
import { statfsSync } from 'node:fs';
import type { BootOutcome } from '../qemu/runner.ts';
import type { Verdict } from './channel.ts';

/** Free bytes below which a host file system counts as full. */
const FULL_BELOW = 1024 * 1024;

export function freeBytes(dir: string): number | undefined {
  try {
    const s = statfsSync(dir);
    return s.bavail * s.bsize;
  } catch {
    return undefined;
  }
}

export function hostDiskVerdict(boot: BootOutcome, diskDir: string, hasDisks: boolean): Verdict | undefined {
  // rootprobe's own files of the run (console log, result stream) could not be written.
  if (boot.end === 'stopped' && /ENOSPC|EDQUOT/.test(boot.stopReason ?? '')) {
    return {
      outcome: 'error',
      message: `the host's disk is full (ENOSPC): ${boot.stopReason} (${freeBytes(diskDir) ?? '?'} bytes free in ${diskDir}). Free space there, or point TMPDIR at a larger file system.`,
    };
  }
  if (!hasDisks) return undefined;
  const ioError = boot.notices.find((l) => /I\/O error, dev vd|Buffer I\/O error on dev vd|EXT4-fs error/.test(l));
  if (!ioError) return undefined;
  const free = freeBytes(diskDir);
  if (free === undefined || free >= FULL_BELOW) return undefined;
  return {
    outcome: 'error',
    message:
      `the host's disk is full (ENOSPC): the guest's writes to its disk images in ${diskDir} failed ` +
      `(${free} bytes free there; the guest saw: ${ioError.replace(/^\[\s*[0-9.]+\]\s*/, '').slice(0, 200)}). ` +
      `Free space there, or point TMPDIR at a larger file system.`,
  };
}
