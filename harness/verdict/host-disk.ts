/**
 * A full host disk, told apart from a guest that hangs or fails: the guest's disks get
 * `werror=report` (qemu/command.ts), so a host ENOSPC reaches the guest as an I/O error on
 * its virtio disk, which the console shows; if the host file system holding the run's disk
 * copies is then (nearly) full, the run is an `error` naming the host path, not a timeout.
 */
import { statfsSync } from 'node:fs';
import { SetupError } from '../errors.ts';
import type { BootOutcome } from '../qemu/runner.ts';
import type { Verdict } from './channel.ts';

/** What freeBytes reads of a file system (node's statfsSync; a test gives its own). */
export type StatFs = (dir: string) => { bavail: number; bsize: number };

/** Free bytes below which a host file system counts as full. */
const FULL_BELOW = 1024 * 1024;

/** Bytes an unprivileged process may still write on the file system holding `dir`, or undefined if it cannot be read. */
export function freeBytes(dir: string, statfs: StatFs = statfsSync): number | undefined {
  try {
    const s = statfs(dir);
    return s.bavail * s.bsize;
  } catch {
    return undefined;
  }
}

const mib = (n: number): string => (n / 2 ** 20).toFixed(1);

/**
 * Refuses, before a disk is copied, when the file system holding `dir` has fewer than `need`
 * bytes free for `what`: a SetupError naming the folder, the free and the needed bytes. A file
 * system whose free space cannot be read is not refused (the copy then says what went wrong).
 */
export function checkRoom(dir: string, need: number, what: string, statfs: StatFs = statfsSync): void {
  const free = freeBytes(dir, statfs);
  if (free === undefined || free >= need) return;
  throw new SetupError(
    `the host's disk is too full for ${what}: ${dir} has ${mib(free)} MiB (${free} bytes) free, ` +
      `they need ${mib(need)} MiB (${need} bytes) (ENOSPC). Free space there, or point TMPDIR at a larger file system.`,
  );
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
