/**
 * newc (070701) cpio archives: a deterministic writer and a reader for concatenated plain and
 * gzip segments. See write.ts for why we write them ourselves rather than with cpio-stream.
 */
export { archivePath, type CpioEntry, type CpioReadEntry, type PackOptions } from './entry.ts';
export { packNewc, writeNewcFile } from './write.ts';
export { readNewc } from './read.ts';
