/**
 * Mount assertions (subject: a Stage, or a Mountinfo; then the mount entry):
 *
 *   expect(stage).to.have.mount('/')                       a mount is at '/'; the subject becomes the topmost one
 *     .of.type('ext4') .from('/dev/vda') .with.root('/')   fs type, source, root within the fs (string or RegExp)
 *     .with.parent                                         the subject becomes the parent mount
 *     .with.option('ro') / .option('size', '1024k')        a mount option (per-mount: ro, nosuid, relatime, ...)
 *     .with.superOption('lowerdir', '/lower')              a super option (the filesystem's: lowerdir=, size=, errors=)
 *     .with.propagation('shared') / ('slave', 1)           shared:N, master:N, private, unbindable (mount_namespaces(7))
 *     .that.movedFrom(before, '/proc')                     the same mount (same mount id) as that stage's at that point
 *
 * Failure messages show the stage's mount tree as `rootprobe show` prints it (report/tree-text.ts:
 * findmnt's tree with rootprobe's ID and CHANGE columns).
 */
import { Mountinfo, parseOptions, propagationOf, type MountinfoEntry, type Propagation } from '../readback/mountinfo.ts';
import { Stage, adoptMountinfo, contextOfMount } from '../readback/snapshot.ts';
import { mountTreeText } from '../report/tree-text.ts';
import { describeSubject, indent, isMountEntry, matches, show, showExpected, type Ctx, type Helpers } from './common.ts';

export interface MountView {
  table: Mountinfo;
  where: string;
}

function mountView(table: Mountinfo, stage?: Stage, member?: string): MountView {
  return {
    table,
    where: stage ? `stage ${show(stage.name)}` + (member === 'mountinfo.1' ? ' (as pid 1 sees it)' : '') : 'this mountinfo',
  };
}

export function viewOfEntry(e: MountinfoEntry): MountView | undefined {
  const c = contextOfMount(e);
  return c ? mountView(c.mountinfo, c.stage, c.member) : undefined;
}

export function treeOf(view: MountView | undefined): string {
  if (!view) return '';
  return `\nmount tree of ${view.where}:\n${indent(mountTreeText(view.table))}`;
}

export function mountName(e: MountinfoEntry, view: MountView | undefined): string {
  return `the mount at ${show(e.mountPoint)} (id ${e.mountId})${view ? ` in ${view.where}` : ''}`;
}

export function requireMount(h: Helpers, ctx: Ctx, what: string): MountinfoEntry {
  const s = h.subject(ctx);
  if (!isMountEntry(s)) {
    h.usage(
      ctx,
      `${what}: the subject is ${describeSubject(s)}, not a mount entry; ` + `start with expect(stage).to.have.mount(mountPoint)`,
    );
  }
  return s as MountinfoEntry;
}

/** The mount root check, for `.root()` on a mount entry (processes.ts owns the name). */
export function assertMountRoot(h: Helpers, ctx: Ctx, expected: string | RegExp): void {
  const e = requireMount(h, ctx, `root(${showExpected(expected)})`);
  const view = viewOfEntry(e);
  ctx.assert(
    matches(e.root, expected),
    `expected ${mountName(e, view)} to have root ${showExpected(expected)}, but it is ${show(e.root)}${treeOf(view)}`,
    `expected ${mountName(e, view)} not to have root ${showExpected(expected)}, but it is ${show(e.root)}${treeOf(view)}`,
  );
}

function showPropagation(p: Propagation): string {
  const parts: string[] = [p.kind];
  if (p.shared !== undefined) parts.push(`shared:${p.shared}`);
  if (p.master !== undefined) parts.push(`master:${p.master}`);
  if (p.propagateFrom !== undefined) parts.push(`propagate_from:${p.propagateFrom}`);
  return parts.join(' ');
}

export function addMountAssertions(h: Helpers): void {
  const { Assertion } = h.chai;
  const { utils } = h;

  Assertion.addMethod('mount', function (this: Ctx, mountPoint: string) {
    const s = h.subject(this);
    let view: MountView;
    if (s instanceof Stage) view = mountView(s.mountinfo, s, 'mountinfo.self');
    else if (s instanceof Mountinfo) {
      adoptMountinfo(s);
      const c = s.entries.length > 0 ? contextOfMount(s.entries[0]!) : undefined;
      view = c && c.mountinfo === s ? mountView(s, c.stage, c.member) : mountView(s);
    } else {
      return h.usage(this, `mount(${show(mountPoint)}): the subject is ${describeSubject(s)}, not a Stage or a Mountinfo`);
    }
    const entry = view.table.at(mountPoint);
    this.assert(
      entry !== undefined,
      `expected a mount at ${show(mountPoint)} in ${view.where}, but there is none${treeOf(view)}`,
      `expected no mount at ${show(mountPoint)} in ${view.where}, but found ` + `${entry ? Mountinfo.describe(entry) : ''}${treeOf(view)}`,
    );
    if (entry && !h.negated(this)) utils.flag(this, 'object', entry);
  });

  const mountField = (name: 'type' | 'from', field: 'fsType' | 'source', noun: string): void => {
    Assertion.addMethod(name, function (this: Ctx, expected: string | RegExp) {
      const e = requireMount(h, this, `${name}(${showExpected(expected)})`);
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
    const e = requireMount(h, this, 'parent');
    const view = viewOfEntry(e);
    const parent = view ? view.table.parentOf(e) : undefined;
    if (!parent) {
      h.usage(
        this,
        `${mountName(e, view)} has no parent in this view (parent id ${e.parentId}` +
          `${e.parentId === e.mountId ? ', itself' : ', not listed'})${treeOf(view)}`,
      );
    }
    utils.flag(this, 'object', parent);
  });

  const optionCheck = (method: 'option' | 'superOption', field: 'options' | 'superOptions', noun: string): void => {
    Assertion.addMethod(method, function (this: Ctx, name: string, value?: string | RegExp) {
      const what = `${method}(${show(name)}${value === undefined ? '' : `, ${showExpected(value)}`})`;
      const e = requireMount(h, this, what);
      const view = viewOfEntry(e);
      const opts = parseOptions(e[field]);
      const has = opts.has(name);
      const actual = opts.get(name);
      const ok = has && (value === undefined || matches(actual ?? '', value));
      const want = value === undefined ? `${noun} ${show(name)}` : `${noun} ${show(name)} = ${showExpected(value)}`;
      const is = !has
        ? `its ${noun}s are ${show(e[field])}`
        : `it has ${name}${actual === undefined ? '' : `=${actual}`} (${noun}s ${show(e[field])})`;
      this.assert(
        ok,
        `expected ${mountName(e, view)} to have ${want}, but ${is}${treeOf(view)}`,
        `expected ${mountName(e, view)} not to have ${want}, but ${is}${treeOf(view)}`,
      );
    });
  };
  optionCheck('option', 'options', 'mount option');
  optionCheck('superOption', 'superOptions', 'super option');

  Assertion.addMethod('propagation', function (this: Ctx, kind: Propagation['kind'], group?: number) {
    const e = requireMount(h, this, `propagation(${show(kind)})`);
    const view = viewOfEntry(e);
    const p = propagationOf(e);
    const groupOf = kind === 'slave' ? p.master : p.shared;
    const ok =
      (p.kind === kind || (p.kind === 'shared+slave' && (kind === 'shared' || kind === 'slave'))) &&
      (group === undefined || groupOf === group);
    const want = `${kind}${group === undefined ? '' : ` (${kind === 'slave' ? 'master' : 'shared'}:${group})`}`;
    this.assert(
      ok,
      `expected ${mountName(e, view)} to be ${want}, but it is ${showPropagation(p)}${treeOf(view)}`,
      `expected ${mountName(e, view)} not to be ${want}, but it is ${showPropagation(p)}${treeOf(view)}`,
    );
  });

  Assertion.addMethod('movedFrom', function (this: Ctx, other: Stage, mountPoint: string) {
    const e = requireMount(h, this, `movedFrom(stage, ${show(mountPoint)})`);
    if (!(other instanceof Stage))
      h.usage(this, `movedFrom(stage, ${show(mountPoint)}): the first argument is ${describeSubject(other)}, not a Stage`);
    const view = viewOfEntry(e);
    const before = other.mountinfo.at(mountPoint);
    const otherView = mountView(other.mountinfo, other, 'mountinfo.self');
    if (!before) {
      h.usage(this, `movedFrom: stage ${show(other.name)} has no mount at ${show(mountPoint)}${treeOf(otherView)}`);
    }
    const same = before!.mountId === e.mountId;
    const moved =
      before!.mountPoint !== e.mountPoint
        ? `moved from ${show(before!.mountPoint)} to ${show(e.mountPoint)}`
        : `at ${show(e.mountPoint)} in both`;
    this.assert(
      same,
      `expected ${mountName(e, view)} to be the mount at ${show(mountPoint)} in stage ${show(other.name)} (id ${before!.mountId}), moved; ` +
        `but it is another mount: ${Mountinfo.describe(e)} vs ${Mountinfo.describe(before!)}${treeOf(view)}${treeOf(otherView)}`,
      `expected ${mountName(e, view)} not to be the mount at ${show(mountPoint)} in stage ${show(other.name)}, but it is (id ${e.mountId}, ${moved})`,
    );
  });
}
