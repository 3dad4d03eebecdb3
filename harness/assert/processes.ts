/**
 * Process assertions (subject: a ProcessInfo, e.g. stage.process(1), or reached from a Stage):
 *
 *   expect(stage).to.have.process(1)                  the subject becomes that ProcessInfo
 *   expect(stage).to.have.processNamed('sleep')       first non-probe process with that comm (lowest pid)
 *   expect(proc).to.have.exe('/sbin/init')            exact raw link text (decorations included), or a RegExp
 *   expect(proc).to.have.cwd(x) / .root(x)
 *   expect(proc).to.have.deletedExe                   the link text ends in ' (deleted)'; likewise deletedCwd, deletedRoot
 *   expect(proc).to.have.unreachableCwd               the link text starts with '(unreachable)'; likewise ...Exe, ...Root
 *   (an unreadable link, null, is neither deleted nor unreachable)
 *
 * Failure messages show the stage's process table, probe processes left out and kernel threads
 * folded into one line (unless the assertion is about one of them).
 */
import { parseLink, type LinkText } from '../readback/links.ts';
import { formatProcessTable, stageOfProcess, type ProcessInfo, type Stage } from '../readback/snapshot.ts';
import { Stage as StageClass } from '../readback/snapshot.ts';
import { assertMountRoot } from './mounts.ts';
import { describeSubject, indent, isProcess, matches, show, showExpected, type Ctx, type Helpers } from './common.ts';

/** A kernel thread: kthreadd (pid 2) or one of its children, with no exe and no command line. */
export function isKernelThread(p: ProcessInfo): boolean {
  return (p.pid === 2 || p.ppid === 2) && p.exe === null && p.cmdline.length === 0;
}

/**
 * The rows of a failure message's process table: probe processes left out, kernel threads
 * folded into one line unless `keep` (the process the assertion is about) or `comm` (the name
 * asked for) is one of them.
 */
export function processRows(
  procs: readonly ProcessInfo[],
  keep?: ProcessInfo,
  comm?: string,
): { rows: ProcessInfo[]; folded: ProcessInfo[] } {
  const rows: ProcessInfo[] = [];
  const folded: ProcessInfo[] = [];
  for (const p of procs) {
    if (p.probe && p !== keep) continue;
    if (isKernelThread(p) && p !== keep && p.comm !== comm) folded.push(p);
    else rows.push(p);
  }
  return { rows, folded };
}

export function processTableText(stage: Stage, keep?: ProcessInfo, comm?: string): string {
  const { rows, folded } = processRows(stage.processes, keep, comm);
  const names = [...new Set(folded.map((p) => p.comm.split('/')[0]!.replace(/[-:_]?\d+$/, '')))];
  const fold = folded.length
    ? `; ${folded.length} kernel thread${folded.length === 1 ? '' : 's'} folded into this line: ${names.slice(0, 8).join(', ')}${names.length > 8 ? ', …' : ''}`
    : '';
  return `\nprocesses of stage ${show(stage.name)} (probe processes left out${fold}):\n${indent(formatProcessTable(rows))}`;
}

export function addProcessAssertions(h: Helpers): void {
  const { Assertion } = h.chai;

  const processWhere = (p: ProcessInfo): string => {
    const stage = stageOfProcess(p);
    return `pid ${p.pid} (${p.comm})${stage ? ` in stage ${show(stage.name)}` : ''}`;
  };

  const tableOf = (stage: Stage | undefined, extra?: ProcessInfo, comm?: string): string => {
    if (!stage) return extra ? `\nprocess:\n${indent(formatProcessTable([extra]))}` : '';
    return processTableText(stage, extra, comm);
  };

  const requireProcess = (ctx: Ctx, what: string): ProcessInfo => {
    const s = h.subject(ctx);
    if (!isProcess(s)) {
      h.usage(
        ctx,
        `${what}: the subject is ${describeSubject(s)}, not a process` +
          (s === undefined
            ? ' (stage.process(pid) gives undefined when the stage has no such pid; ' +
              'expect(stage).to.have.process(pid) says so with the process table)'
            : ''),
      );
    }
    return s as ProcessInfo;
  };

  const requireStage = (ctx: Ctx, what: string): Stage => {
    const s = h.subject(ctx);
    if (!(s instanceof StageClass)) h.usage(ctx, `${what}: the subject is ${describeSubject(s)}, not a Stage`);
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
    if (p && !h.negated(this)) h.utils.flag(this, 'object', p);
  });

  Assertion.addMethod('processNamed', function (this: Ctx, comm: string) {
    const stage = requireStage(this, `processNamed(${show(comm)})`);
    const found = stage.processesNamed(comm);
    this.assert(
      found.length > 0,
      `expected stage ${show(stage.name)} to have a process named ${show(comm)} (probe processes left out), ` +
        `but it has none${tableOf(stage, undefined, comm)}`,
      `expected stage ${show(stage.name)} to have no process named ${show(comm)}, but it has ` +
        `${found.map((p) => `pid ${p.pid}`).join(', ')}${tableOf(stage, undefined, comm)}`,
    );
    if (found.length > 0 && !h.negated(this)) h.utils.flag(this, 'object', found[0]);
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
        if (isProcess(h.subject(this))) return check.call(this, expected);
        assertMountRoot(h, this, expected);
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
        link?.[fact],
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
}
