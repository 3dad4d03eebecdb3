/**
 * userSpaceLines(): what user space said before the kernel panicked. Fed a real console log (a
 * root disk without /sbin/init: busybox switch_root fails, init exits, the kernel panics; booted
 * on debian/bookworm under TCG) and hand-made edge cases.
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { userSpaceLines } from '../harness/verdict/user-space.ts';

const consoleLog = readFileSync(fileURLToPath(new URL('./fixtures/verdict/init-died.console.txt', import.meta.url)), 'utf8').split('\n');

describe('userSpaceLines: the user-space console lines before a panic', () => {
  it('finds what switch_root said before init died, in a real console log', () => {
    const lines = userSpaceLines(consoleLog);
    expect(lines.at(-1)).to.equal("switch_root: can't execute '/sbin/init': No such file or directory");
    for (const l of lines) expect(l).to.not.match(/^\s*\[\s*\d+\.\d+\]/);
    // all of them, not only the last ten: no firmware line (SeaBIOS, 'Booting from ROM') among them
    expect(userSpaceLines(consoleLog, 1000).join('\n')).to.not.match(/SeaBIOS|Booting from/);
    expect(
      userSpaceLines(['SeaBIOS (version 1.16)', 'Booting from ROM..', '[    0.000000] Linux version 6.1', 'init: hello']),
    ).to.deep.equal(['init: hello']);
  });

  it('stops at the last panic line; keeps at most `max` lines, oldest first', () => {
    const tail = [
      '[    1.000000] Run /init as init process',
      'one',
      'two',
      'three',
      '[    2.000000] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100',
      'after the panic',
    ];
    expect(userSpaceLines(tail)).to.deep.equal(['one', 'two', 'three']);
    expect(userSpaceLines(tail, 2)).to.deep.equal(['two', 'three']);
  });

  it('takes the user text before a time stamp printk put in the middle of its line', () => {
    const tail = ["sh: can't op[    3.100000] random: crng init done", '[    3.200000] Kernel panic - not syncing: x'];
    expect(userSpaceLines(tail)).to.deep.equal(["sh: can't op"]);
  });

  it('drops carriage returns and blank lines; without a panic, reads to the end', () => {
    expect(userSpaceLines(['[    1.0000] k\r', 'user line\r', '   ', ''])).to.deep.equal(['user line']);
  });

  it('says nothing when no line has a time stamp (printk.time=0: kernel and user space look alike)', () => {
    expect(userSpaceLines(['Run /init as init process', 'switch_root: failed', 'Kernel panic - not syncing: x'])).to.deep.equal([]);
  });
});
