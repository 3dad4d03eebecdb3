/**
 * rootprobe's chai assertions on what a guest reported. Use with `chai.use(rootprobeChai)`
 * (the `expect` a scenario's check() gets has them). One file per family:
 *
 *   mounts.ts     expect(stage).to.have.mount('/').of.type('ext4').from('/dev/vda').with.option('rw')
 *                 .with.superOption('lowerdir', '/lower') .with.propagation('shared') .with.parent
 *                 .that.movedFrom(before, '/proc')
 *   processes.ts  expect(stage).to.have.processNamed('sleep').with.cwd('/scratch'); .process(1) .exe() .root()
 *                 .deletedExe .unreachableCwd ...
 *   commands.ts   expect(stage).to.have.command('df').that.succeeded.with.output(/scratch/)
 *
 * Failure messages carry the evidence: the stage's mount tree for mount assertions, the process
 * table (probe processes left out, kernel threads folded) for process assertions, the output for
 * commands. chai's truncation of long actual values is turned off (truncateThreshold = 0): a
 * message never cuts the value where it differs.
 */
/// <reference types="chai" />
import { helpers } from './common.ts';
import { addMountAssertions } from './mounts.ts';
import { addProcessAssertions } from './processes.ts';
import { addCommandAssertions } from './commands.ts';

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Chai {
    interface Assertion {
      /** A mount is at `mountPoint` (subject: Stage or Mountinfo); the subject becomes the topmost mount entry. */
      mount(mountPoint: string): Assertion;
      /** The mount's filesystem type. */
      type(fsType: string | RegExp): Assertion;
      /** The mount's source (device or name). */
      from(source: string | RegExp): Assertion;
      /** On a mount: its root within the filesystem. On a process: its root link text. */
      root(expected: string | RegExp): Assertion;
      /** The subject becomes the parent mount of the current mount entry. */
      parent: Assertion;
      /** A mount option (`ro`, `nosuid`, `size`), with its value when given (`option('size', '1024k')`). */
      option(name: string, value?: string | RegExp): Assertion;
      /** A super option, the filesystem's own (`superOption('lowerdir', '/lower')`), with its value when given. */
      superOption(name: string, value?: string | RegExp): Assertion;
      /** The mount's propagation: 'shared' (shared:N), 'slave' (master:N), 'private', 'unbindable'; N when given. */
      propagation(kind: 'shared' | 'slave' | 'shared+slave' | 'private' | 'unbindable', group?: number): Assertion;
      /** The same mount (same mount id) as the one at `mountPoint` in stage `other`: moved, not mounted anew. */
      movedFrom(other: import('../readback/snapshot.ts').Stage, mountPoint: string): Assertion;
      /** The stage has a process with this pid; the subject becomes its ProcessInfo. */
      process(pid: number): Assertion;
      /** The stage has a non-probe process with this comm; the subject becomes the first one. */
      processNamed(comm: string): Assertion;
      /** The process's exe link text, exactly, or matching a RegExp. */
      exe(expected: string | RegExp): Assertion;
      /** The process's cwd link text, exactly, or matching a RegExp. */
      cwd(expected: string | RegExp): Assertion;
      /** The exe link text ends in ' (deleted)'. */
      deletedExe: Assertion;
      /** The cwd link text ends in ' (deleted)'. */
      deletedCwd: Assertion;
      /** The root link text ends in ' (deleted)'. */
      deletedRoot: Assertion;
      /** The exe link text starts with '(unreachable)'. */
      unreachableExe: Assertion;
      /** The cwd link text starts with '(unreachable)'. */
      unreachableCwd: Assertion;
      /** The root link text starts with '(unreachable)'. */
      unreachableRoot: Assertion;
      /** The scenario's command ran in this stage; the subject becomes its {output, status}. */
      command(name: string): Assertion;
      /** The command exited non-zero. */
      failed: Assertion;
      /** The command exited 0. */
      succeeded: Assertion;
      /** The command's output matches the RegExp, or contains the string. */
      output(expected: string | RegExp): Assertion;
    }
  }
}

export function rootprobeChai(chai: Chai.ChaiStatic, utils: Chai.ChaiUtils): void {
  // Never cut an actual value in a message (chai's default cuts at 40 characters).
  chai.config.truncateThreshold = 0;
  const h = helpers(chai, utils);
  addMountAssertions(h);
  addProcessAssertions(h);
  addCommandAssertions(h);
}
