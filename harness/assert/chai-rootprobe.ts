/**
 * Chai assertions on what a guest reported. Use with `chai.use(rootprobeChai)`.
 *
 * Mounts (subject: a Stage, or a Mountinfo):
 *   expect(stage).to.have.mount('/')                  a mount is at '/'; the subject becomes the topmost one
 *     .of.type('ext4')                                its filesystem type (string or RegExp)
 *     .from('/dev/vda')                               its source (string or RegExp)
 *     .with.root('/')                                 its root within the filesystem (string or RegExp)
 *     .with.parent                                    the subject becomes the parent mount (must exist)
 *   expect(stage).to.not.have.mount('/mnt')
 *   expect(stage.pid1Mountinfo).to.have.mount('/')   any Mountinfo works too
 *
 * Processes (subject: a ProcessInfo, e.g. stage.process(1), or reached from a Stage):
 *   expect(stage).to.have.process(1)                  the subject becomes that ProcessInfo
 *   expect(stage).to.have.processNamed('sleep')       first non-probe process with that comm (lowest pid)
 *   expect(proc).to.have.exe('/sbin/init')            exact raw link text (decorations included), or a RegExp
 *   expect(proc).to.have.cwd(x) / .root(x)
 *   expect(proc).to.have.deletedExe                   the link text ends in ' (deleted)'
 *     likewise deletedCwd, deletedRoot
 *   expect(proc).to.have.unreachableCwd               the link text starts with '(unreachable)'
 *     likewise unreachableExe, unreachableRoot
 *   (an unreadable link, null, is neither deleted nor unreachable)
 *
 * Commands (subject: a Stage):
 *   expect(stage).to.have.command('pivot')            the scenario ran it; the subject becomes {output, status}
 *     .that.failed / .that.succeeded                  non-zero / zero exit status
 *     .with.output(/Invalid argument/)                RegExp, or a string the output contains
 *
 * Failure messages carry the evidence: the stage's mountinfo tree for mount assertions, the
 * process table (non-probe processes) for process assertions, the output for commands.
 */
/// <reference types="chai" />
import { parseLink, type LinkText } from '../readback/links.ts';
import { Mountinfo, type MountinfoEntry } from '../readback/mountinfo.ts';
import {
  Stage, adoptMountinfo, contextOfMount, formatProcessTable, stageOfProcess,
  type CommandResult, type ProcessInfo,
} from '../readback/snapshot.ts';

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

type Ctx = Chai.AssertionStatic;

const COMMAND_FLAG = 'rootprobe.command';

function show(s: string | null | undefined): string {
  return s === null || s === undefined ? String(s) : JSON.stringify(s);
}

function showExpected(x: string | RegExp): string {
  return x instanceof RegExp ? String(x) : JSON.stringify(x);
}

function matches(actual: string | null, expected: string | RegExp, mode: 'exact' | 'contains' = 'exact'): boolean {
  if (actual === null) return false;
  if (expected instanceof RegExp) {
    expected.lastIndex = 0;
    return expected.test(actual);
  }
  return mode === 'exact' ? actual === expected : actual.includes(expected);
}

function indent(text: string, by = '  '): string {
  return text.split('\n').map((l) => by + l).join('\n');
}

function isMountEntry(x: unknown): x is MountinfoEntry {
  return typeof x === 'object' && x !== null && typeof (x as MountinfoEntry).mountId === 'number'
    && typeof (x as MountinfoEntry).fsType === 'string' && typeof (x as MountinfoEntry).mountPoint === 'string';
}

function isProcess(x: unknown): x is ProcessInfo {
  return typeof x === 'object' && x !== null && typeof (x as ProcessInfo).pid === 'number'
    && typeof (x as ProcessInfo).comm === 'string' && 'exe' in x;
}

function isCommand(x: unknown): x is CommandResult {
  return typeof x === 'object' && x !== null && typeof (x as CommandResult).status === 'number'
    && typeof (x as CommandResult).output === 'string';
}

function describeSubject(x: unknown): string {
  if (x === undefined || x === null) return String(x);
  if (typeof x === 'object') return `a ${(x as object).constructor?.name ?? 'object'}`;
  return `${typeof x} ${JSON.stringify(x)}`;
}

export function rootprobeChai(chai: Chai.ChaiStatic, utils: Chai.ChaiUtils): void {
  const { Assertion, AssertionError } = chai;

  const subject = (ctx: Ctx): unknown => utils.flag(ctx, 'object');
  const negated = (ctx: Ctx): boolean => Boolean(utils.flag(ctx, 'negate'));
  const usage = (ctx: Ctx, text: string): never => {
    const prefix = utils.flag(ctx, 'message');
    throw new AssertionError(prefix ? `${prefix}: ${text}` : text, undefined, utils.flag(ctx, 'ssfi'));
  };

  // ---- mounts ----

  interface MountView { table: Mountinfo; where: string }

  const mountView = (table: Mountinfo, stage?: Stage, member?: string): MountView => ({
    table,
    where: stage ? `stage ${show(stage.name)}` + (member === 'mountinfo.1' ? ' (as pid 1 sees it)' : '') : 'this mountinfo',
  });

  const viewOfEntry = (e: MountinfoEntry): MountView | undefined => {
    const c = contextOfMount(e);
    return c ? mountView(c.mountinfo, c.stage, c.member) : undefined;
  };

  const treeOf = (view: MountView | undefined): string => {
    if (!view) return '';
    return `\nmount tree of ${view.where}:\n${indent(view.table.tree())}`;
  };

  const mountName = (e: MountinfoEntry, view: MountView | undefined): string =>
    `the mount at ${show(e.mountPoint)} (id ${e.mountId})${view ? ` in ${view.where}` : ''}`;

  const requireMount = (ctx: Ctx, what: string): MountinfoEntry => {
    const s = subject(ctx);
    if (!isMountEntry(s)) {
      usage(ctx, `${what}: the subject is ${describeSubject(s)}, not a mount entry; ` +
        `start with expect(stage).to.have.mount(mountPoint)`);
    }
    return s as MountinfoEntry;
  };

  Assertion.addMethod('mount', function (this: Ctx, mountPoint: string) {
    const s = subject(this);
    let view: MountView;
    if (s instanceof Stage) view = mountView(s.mountinfo, s, 'mountinfo.self');
    else if (s instanceof Mountinfo) {
      adoptMountinfo(s);
      const c = s.entries.length > 0 ? contextOfMount(s.entries[0]!) : undefined;
      view = c && c.mountinfo === s ? mountView(s, c.stage, c.member) : mountView(s);
    } else {
      return usage(this, `mount(${show(mountPoint)}): the subject is ${describeSubject(s)}, not a Stage or a Mountinfo`);
    }
    const entry = view.table.at(mountPoint);
    this.assert(
      entry !== undefined,
      `expected a mount at ${show(mountPoint)} in ${view.where}, but there is none${treeOf(view)}`,
      `expected no mount at ${show(mountPoint)} in ${view.where}, but found ` +
        `${entry ? Mountinfo.describe(entry) : ''}${treeOf(view)}`,
    );
    if (entry && !negated(this)) utils.flag(this, 'object', entry);
  });

  const mountField = (name: 'type' | 'from', field: 'fsType' | 'source', noun: string): void => {
    Assertion.addMethod(name, function (this: Ctx, expected: string | RegExp) {
      const e = requireMount(this, `${name}(${showExpected(expected)})`);
      const view = viewOfEntry(e);
      const actual = e[field];
      this.assert(
        matches(actual, expected),
        `expected ${mountName(e, view)} to have ${noun} ${showExpected(expected)}, but it is ${show(actual)}${treeOf(view)}`,
        `expected ${mountName(e, view)} not to have ${noun} ${showExpected(expected)}, but it is ${show(actual)}${treeOf(view)}`,
      );
    });
  };
  mountField('type', 'fsType', 'type');
  mountField('from', 'source', 'source');

  Assertion.addProperty('parent', function (this: Ctx) {
    const e = requireMount(this, 'parent');
    const view = viewOfEntry(e);
    const parent = view ? view.table.parentOf(e) : undefined;
    if (!parent) {
      usage(this, `${mountName(e, view)} has no parent in this view (parent id ${e.parentId}` +
        `${e.parentId === e.mountId ? ', itself' : ', not listed'})${treeOf(view)}`);
    }
    utils.flag(this, 'object', parent);
  });

  // ---- processes ----

  const processWhere = (p: ProcessInfo): string => {
    const stage = stageOfProcess(p);
    return `pid ${p.pid} (${p.comm})${stage ? ` in stage ${show(stage.name)}` : ''}`;
  };

  const tableOf = (stage: Stage | undefined, extra?: ProcessInfo): string => {
    if (!stage) return extra ? `\nprocess:\n${indent(formatProcessTable([extra]))}` : '';
    const rows = stage.processes.filter((p) => !p.probe || p === extra);
    return `\nprocesses of stage ${show(stage.name)} (probe processes left out):\n${indent(formatProcessTable(rows))}`;
  };

  const requireProcess = (ctx: Ctx, what: string): ProcessInfo => {
    const s = subject(ctx);
    if (!isProcess(s)) {
      usage(ctx, `${what}: the subject is ${describeSubject(s)}, not a process` +
        (s === undefined ? ' (stage.process(pid) gives undefined when the stage has no such pid; ' +
          'expect(stage).to.have.process(pid) says so with the process table)' : ''));
    }
    return s as ProcessInfo;
  };

  const requireStage = (ctx: Ctx, what: string): Stage => {
    const s = subject(ctx);
    if (!(s instanceof Stage)) usage(ctx, `${what}: the subject is ${describeSubject(s)}, not a Stage`);
    return s as Stage;
  };

  Assertion.addMethod('process', function (this: Ctx, pid: number) {
    const stage = requireStage(this, `process(${pid})`);
    const p = stage.process(pid);
    this.assert(
      p !== undefined,
      `expected stage ${show(stage.name)} to have a process with pid ${pid}, but it has none${tableOf(stage)}`,
      `expected stage ${show(stage.name)} to have no process with pid ${pid}, but it has one${tableOf(stage, p)}`,
    );
    if (p && !negated(this)) utils.flag(this, 'object', p);
  });

  Assertion.addMethod('processNamed', function (this: Ctx, comm: string) {
    const stage = requireStage(this, `processNamed(${show(comm)})`);
    const found = stage.processesNamed(comm);
    this.assert(
      found.length > 0,
      `expected stage ${show(stage.name)} to have a process named ${show(comm)} (probe processes left out), ` +
        `but it has none${tableOf(stage)}`,
      `expected stage ${show(stage.name)} to have no process named ${show(comm)}, but it has ` +
        `${found.map((p) => `pid ${p.pid}`).join(', ')}${tableOf(stage)}`,
    );
    if (found.length > 0 && !negated(this)) utils.flag(this, 'object', found[0]);
  });

  const linkText = (name: 'exe' | 'cwd' | 'root'): void => {
    const check = function (this: Ctx, expected: string | RegExp): void {
      const p = requireProcess(this, `${name}(${showExpected(expected)})`);
      const actual = p[name];
      const stage = stageOfProcess(p);
      const is = actual === null ? 'it could not be read' : `it is ${show(actual)}`;
      this.assert(
        matches(actual, expected),
        `expected ${processWhere(p)} to have ${name} ${showExpected(expected)}, but ${is}${tableOf(stage, p)}`,
        `expected ${processWhere(p)} not to have ${name} ${showExpected(expected)}, but ${is}${tableOf(stage, p)}`,
      );
    };
    if (name !== 'root') Assertion.addMethod(name, check);
    else {
      Assertion.addMethod('root', function (this: Ctx, expected: string | RegExp) {
        const s = subject(this);
        if (isProcess(s)) return check.call(this, expected);
        const e = requireMount(this, `root(${showExpected(expected)})`);
        const view = viewOfEntry(e);
        this.assert(
          matches(e.root, expected),
          `expected ${mountName(e, view)} to have root ${showExpected(expected)}, but it is ${show(e.root)}${treeOf(view)}`,
          `expected ${mountName(e, view)} not to have root ${showExpected(expected)}, but it is ${show(e.root)}${treeOf(view)}`,
        );
      });
    }
  };
  linkText('exe');
  linkText('cwd');
  linkText('root');

  const decoration = (prop: string, name: 'exe' | 'cwd' | 'root', fact: 'deleted' | 'unreachable'): void => {
    const rule = fact === 'deleted' ? `ends in ' (deleted)'` : `starts with '(unreachable)'`;
    const noun = `${fact === 'deleted' ? 'a' : 'an'} ${fact} ${name}`;
    Assertion.addProperty(prop, function (this: Ctx) {
      const p = requireProcess(this, prop);
      const text = p[name];
      const link: LinkText | null = text === null ? null : parseLink(text);
      const stage = stageOfProcess(p);
      const is = text === null ? 'it could not be read' : `it is ${show(text)}`;
      this.assert(
        link !== null && link[fact],
        `expected ${processWhere(p)} to have ${noun} (link text ${rule}), but ${is}${tableOf(stage, p)}`,
        `expected ${processWhere(p)} not to have ${noun}, but ${is}${tableOf(stage, p)}`,
      );
    });
  };
  for (const name of ['exe', 'cwd', 'root'] as const) {
    const cap = name[0]!.toUpperCase() + name.slice(1);
    decoration(`deleted${cap}`, name, 'deleted');
    decoration(`unreachable${cap}`, name, 'unreachable');
  }

  // ---- commands ----

  const commandName = (ctx: Ctx): string => {
    const c = utils.flag(ctx, COMMAND_FLAG) as { name: string; stage: string } | undefined;
    return c ? `command ${show(c.name)} in stage ${show(c.stage)}` : 'the command';
  };

  const outputBlock = (c: CommandResult): string =>
    c.output === '' ? '\n(no output)' : `\noutput:\n${indent(c.output.replace(/\n$/, ''))}`;

  const requireCommand = (ctx: Ctx, what: string): CommandResult => {
    const s = subject(ctx);
    if (!isCommand(s)) {
      usage(ctx, `${what}: the subject is ${describeSubject(s)}, not a command result; ` +
        `start with expect(stage).to.have.command(name)`);
    }
    return s as CommandResult;
  };

  Assertion.addMethod('command', function (this: Ctx, name: string) {
    const stage = requireStage(this, `command(${show(name)})`);
    const c = stage.command(name);
    const known = Object.keys(stage.commands);
    this.assert(
      c !== undefined,
      `expected stage ${show(stage.name)} to have run command ${show(name)}, but it did not; ` +
        `commands it ran: ${known.length ? known.map((k) => show(k)).join(', ') : 'none'}`,
      `expected stage ${show(stage.name)} not to have run command ${show(name)}, but it did`,
    );
    if (c && !negated(this)) {
      utils.flag(this, 'object', c);
      utils.flag(this, COMMAND_FLAG, { name, stage: stage.name });
    }
  });

  const status = (prop: 'failed' | 'succeeded'): void => {
    Assertion.addProperty(prop, function (this: Ctx) {
      const c = requireCommand(this, prop);
      const ok = prop === 'failed' ? c.status !== 0 : c.status === 0;
      const want = prop === 'failed' ? 'to fail (non-zero exit status)' : 'to succeed (exit status 0)';
      const notWant = prop === 'failed' ? 'not to fail' : 'not to succeed';
      this.assert(
        ok,
        `expected ${commandName(this)} ${want}, but it exited ${c.status}${outputBlock(c)}`,
        `expected ${commandName(this)} ${notWant}, but it exited ${c.status}${outputBlock(c)}`,
      );
    });
  };
  status('failed');
  status('succeeded');

  Assertion.addMethod('output', function (this: Ctx, expected: string | RegExp) {
    const c = requireCommand(this, `output(${showExpected(expected)})`);
    const how = expected instanceof RegExp ? 'matching' : 'containing';
    this.assert(
      matches(c.output, expected, 'contains'),
      `expected ${commandName(this)} to have output ${how} ${showExpected(expected)}, but it does not` +
        ` (exit status ${c.status})${outputBlock(c)}`,
      `expected ${commandName(this)} not to have output ${how} ${showExpected(expected)}, but it does` +
        ` (exit status ${c.status})${outputBlock(c)}`,
    );
  });
}
