/**
 * A full host disk, told apart from a guest that hangs or fails: the guest's disks get
 * `werror=report` (qemu/command.ts), so a host ENOSPC reaches the guest as an I/O error on
 * its virtio disk, which the console shows; if the host file system holding the run's disk
 * copies is then (nearly) full, the run is an `error` naming the host path, not a timeout.
 * hostDiskWatch checks on each such console line while the guest runs, so the boot ends at
 * once (a guest that ignores its I/O error would otherwise wait out its deadline);
 * hostDiskVerdict checks again after the boot.
 */
import { statfsSync } from 'node:fs';
import { SetupError } from '../errors.ts';
import type { BootOutcome } from '../qemu/runner.ts';
import type { Verdict } from './channel.ts';

/** What freeBytes reads of a file system (node's statfsSync; a test gives its own). */
export type StatFs = (dir: string) => { bavail: number; bsize: number };

/** Free bytes below which a host file system counts as full. */
export const FULL_BELOW = 1024 * 1024;

/**
 * A guest kernel's console line saying an I/O on one of its virtio disks failed, as Linux
 * words it (recorded in test/fixtures/verdict/full-disk-console.txt): the block layer's
 * `I/O error, dev vda, sector ...` (older kernels: `blk_update_request: I/O error, dev vda`),
 * the buffer cache's `Buffer I/O error on device vda` (`on dev` before 4.x), ext4's
 * `EXT4-fs warning (device vda): ext4_end_bio:...: I/O error`, `EXT4-fs error (device vda)`
 * and jbd2's `Aborting journal on device vda-8`. A loop device, a CD-ROM or a mount line is not one.
 */
export const GUEST_DISK_ERROR_RE =
  /I\/O error, dev vd[a-z]+\d*\b|Buffer I\/O error on dev(?:ice)? vd[a-z]+\d*\b|EXT4-fs (?:error \(device vd[a-z]+\)|warning \(device vd[a-z]+\):.*I\/O error)|Aborting journal on device vd[a-z]+\d*\b/;

/** How every message about a full host disk starts (hostDiskVerdict keeps a stop reason that starts so). */
export const FULL_DISK_MARK = "the host's disk is full (ENOSPC)";

const TIMESTAMP_RE = /^\[\s*[0-9.]+\]\s*/;

function guestWriteFailed(dir: string, free: number, line: string): string {
  return (
    `${FULL_DISK_MARK}: the guest's writes to its disk images in ${dir} failed ` +
    `(${free} bytes free there; the guest saw: ${line.replace(TIMESTAMP_RE, '').slice(0, 200)}). ` +
    `Free space there, or point TMPDIR at a larger file system.`
  );
}

/**
 * While a guest runs: given each console line, the message of a full host disk the moment a
 * guest disk's I/O error shows while `dir` (the folder of the run's disk copies) has fewer
 * than FULL_BELOW bytes free; undefined for any other line, and for an I/O error while the
 * host has room (the guest's own business: a failing disk it was given, a test of its own).
 */
export function hostDiskWatch(dir: string, statfs: StatFs = statfsSync): (line: string) => string | undefined {
  return (line) => {
    if (!GUEST_DISK_ERROR_RE.test(line)) return undefined;
    const free = freeBytes(dir, statfs);
    if (free === undefined || free >= FULL_BELOW) return undefined;
    return guestWriteFailed(dir, free, line);
  };
}

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

export function hostDiskVerdict(boot: BootOutcome, diskDir: string, hasDisks: boolean, statfs: StatFs = statfsSync): Verdict | undefined {
  // Ended during the boot by hostDiskWatch: its reason is the whole message.
  if (boot.end === 'stopped' && boot.stopReason?.startsWith(FULL_DISK_MARK)) return { outcome: 'error', message: boot.stopReason };
  // rootprobe's own files of the run (console log, result stream) could not be written.
  if (boot.end === 'stopped' && /ENOSPC|EDQUOT/.test(boot.stopReason ?? '')) {
    return {
      outcome: 'error',
      message: `${FULL_DISK_MARK}: ${boot.stopReason} (${freeBytes(diskDir, statfs) ?? '?'} bytes free in ${diskDir}). Free space there, or point TMPDIR at a larger file system.`,
    };
  }
  if (!hasDisks) return undefined;
  const ioError = boot.notices.find((l) => GUEST_DISK_ERROR_RE.test(l));
  if (!ioError) return undefined;
  const free = freeBytes(diskDir, statfs);
  if (free === undefined || free >= FULL_BELOW) return undefined;
  return { outcome: 'error', message: guestWriteFailed(diskDir, free, ioError) };
}
