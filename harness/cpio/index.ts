/**
 * newc (070701) cpio archives: a deterministic writer and a reader for concatenated plain and
 * gzip segments. See write.ts for what we kept from cpio-stream and what we replaced.
 */
export { archivePath, type CpioEntry, type CpioReadEntry, type PackOptions } from './entry.ts';
export { packNewc, writeNewcFile } from './write.ts';
export { readNewc } from './read.ts';
