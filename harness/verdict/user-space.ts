/**
 * The user-space lines of a console before a panic: what init (or what it ran) said before it
 * died, which the kernel's "Attempted to kill init!" does not. A panic verdict quotes them:
 *
 *   switch_root: can't execute '/sbin/init': No such file or directory
 *   [   12.124724] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100
 *
 * Kernel lines carry printk's time stamp (`[   12.124724] `); user space writing to the
 * console does not. So the user-space lines are those without one, and the text before a time
 * stamp that printk put in the middle of a user-space line (the two race on the console).
 * A console with no time stamp at all (printk.time=0) cannot be told apart: then nothing is
 * returned rather than kernel lines passed off as user space. Lines before the kernel's first
 * are the firmware's, and are left out too.
 */

const STAMP = /\[\s*\d+\.\d{3,}\] /;
const STAMP_AT_START = /^\s*\[\s*\d+\.\d{3,}\] /;
const PANIC = /Kernel panic - not syncing/;

/**
 * The last `max` user-space lines before the (last) panic line of `consoleTail`, oldest first;
 * before its end when there is no panic line. Carriage returns and blank lines are dropped.
 */
export function userSpaceLines(consoleTail: string[], max = 10): string[] {
  const lines = consoleTail.map((l) => l.replace(/\r/g, ''));
  if (!lines.some((l) => STAMP.test(l))) return [];
  let end = lines.length;
  for (let i = lines.length - 1; i >= 0; i--) {
    if (PANIC.test(lines[i]!)) {
      end = i;
      break;
    }
  }
  // What comes before the kernel's first line is the firmware's (SeaBIOS, the boot loader).
  const start = lines.findIndex((l) => STAMP.test(l));
  const out: string[] = [];
  for (const line of lines.slice(start, end)) {
    if (STAMP_AT_START.test(line)) continue;
    const cut = STAMP.exec(line);
    const text = (cut ? line.slice(0, cut.index) : line).trimEnd();
    if (text.trim() !== '') out.push(text);
  }
  return out.slice(-max);
}
