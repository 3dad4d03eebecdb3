/**
 * The entry types of our newc archives and the path rules every entry path and hard-link
 * target goes through. Shared by the writer (write.ts) and the reader (read.ts).
 */
import { UsageError } from '../errors.ts';

interface Owner {
  uid?: number;
  gid?: number;
  mtime?: number;
}

/**
 * A file's content: in memory (`data`), or a host file (`hostPath`) that the writer opens when
 * it reaches the entry and streams in chunks, never holding it whole; its size is the size of
 * the opened file at that moment (a regular file; symlinks to one are followed).
 */
export type FileContent = { data: Buffer; hostPath?: undefined } | { hostPath: string; data?: undefined };

/**
 * One entry to pack. `mode` is permission bits only (e.g. 0o755, 0o4755); the type bits come
 * from `type`. Defaults: dir 0o755, file 0o644, symlink 0o777, char/block 0o600, fifo 0o644.
 */
export type CpioEntry =
  | ({ type: 'file'; path: string; mode?: number } & FileContent & Owner)
  | ({ type: 'dir'; path: string; mode?: number } & Owner)
  | ({ type: 'symlink'; path: string; target: string } & Owner)
  /** target = path of a 'file' entry in the same archive; the link shares its inode, mode, owner and data. */
  | { type: 'hardlink'; path: string; target: string }
  | ({ type: 'char' | 'block'; path: string; major: number; minor: number; mode?: number } & Owner)
  | ({ type: 'fifo'; path: string; mode?: number } & Owner);

export interface PackOptions {
  /** Used for entries without their own mtime; else $SOURCE_DATE_EPOCH, else 0. */
  mtime?: number;
  /** 'gzip' compresses the whole segment (deterministic gzip header: no name, mtime 0). Default 'none'. */
  compress?: 'none' | 'gzip';
}

export interface CpioReadEntry {
  /** Normalised like archivePath() (no leading '/', './' or '//'); '.' for the root itself; '..' kept as is. */
  path: string;
  type: 'file' | 'dir' | 'symlink' | 'char' | 'block' | 'fifo' | 'socket';
  /** Permission bits only (mode & 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  ino: number;
  nlink: number;
  /**
   * File content, empty for non-files. Hard-linked files (nlink >= 2, same inode within one
   * segment) all get the group's content, as extraction would give them, although newc stores
   * it once (on the last entry of the group).
   */
  data: Buffer;
  /** Symlink target. */
  target?: string;
  /** Device numbers (rdev) for char/block entries. */
  major?: number;
  minor?: number;
}

export const S_IFMT = 0o170000;
export const TYPE_BITS = {
  socket: 0o140000,
  symlink: 0o120000,
  file: 0o100000,
  block: 0o060000,
  dir: 0o040000,
  char: 0o020000,
  fifo: 0o010000,
} as const;

export const TRAILER = 'TRAILER!!!';

/**
 * Normalises an archive path: strips leading '/', collapses '//' and './' (and a trailing '/').
 * Throws a UsageError for '..' components, empty names and NUL bytes, naming the offending path.
 */
export function archivePath(p: string): string {
  if (typeof p !== 'string') throw new UsageError(`An archive path must be a string, got ${JSON.stringify(p)}.`);
  if (p.includes('\0')) {
    throw new UsageError(`Archive path ${JSON.stringify(p)} contains a NUL byte; cpio names cannot hold one. Remove it.`);
  }
  const parts = p.split('/').filter((c) => c !== '' && c !== '.');
  if (parts.includes('..')) {
    throw new UsageError(
      `Archive path ${JSON.stringify(p)} has a '..' component; entries must stay inside the archive. ` + `Give the path without '..'.`,
    );
  }
  if (parts.length === 0) {
    throw new UsageError(
      `Archive path ${JSON.stringify(p)} is empty once '/' and '.' are removed; the root folder itself ` +
        `cannot be an entry. Name a file or folder inside it.`,
    );
  }
  return parts.join('/');
}

/** Like archivePath() but never throws: for names read from foreign archives. */
export function lenientPath(name: string): string {
  const parts = name.split('/').filter((c) => c !== '' && c !== '.');
  return parts.length === 0 ? '.' : parts.join('/');
}
