/**
 * A run's console for a report, beyond the record's 20-line tail: the kept artifact's
 * `console.log` (the whole serial console), when it is still where the record says. Read from
 * its end, at most MAX_BYTES and MAX_LINES, so a guest that flooded its console cannot make a
 * page of hundreds of megabytes. Nothing is made up: without the file, the record's tail is it.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import * as path from 'node:path';
import type { RunRecord } from '../run/record.ts';

export interface ConsoleLog {
  /** The last lines of the log, oldest first, without their line ends. */
  lines: string[];
  /** Lines before these were left out (the log is longer than the limits). */
  cut: boolean;
  /** The file they come from. */
  path: string;
}

const MAX_BYTES = 1 << 20;
const MAX_LINES = 2000;

/** The console.log of a run's kept artifacts, or undefined when the record has none or it cannot be read. */
export function artifactConsoleLog(
  r: Pick<RunRecord, 'artifacts'>,
  limits = { bytes: MAX_BYTES, lines: MAX_LINES },
): ConsoleLog | undefined {
  const file = r.artifacts?.consoleLog;
  // Only a kept console.log: a report read back (`rootprobe report`) may come from anywhere.
  if (typeof file !== 'string' || path.basename(file) !== 'console.log') return undefined;
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    const size = fstatSync(fd).size;
    const from = Math.max(0, size - limits.bytes);
    const buf = Buffer.alloc(size - from);
    let got = 0;
    while (got < buf.length) {
      const n = readSync(fd, buf, got, buf.length - got, from + got);
      if (n === 0) break;
      got += n;
    }
    let lines = buf.subarray(0, got).toString('utf8').split('\n');
    let cut = from > 0;
    // A read that starts mid-file starts mid-line: that first piece is left out.
    if (cut) lines.shift();
    if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
    if (lines.length > limits.lines) {
      lines = lines.slice(lines.length - limits.lines);
      cut = true;
    }
    return { lines: lines.map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l)), cut, path: file };
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
