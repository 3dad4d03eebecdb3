/**
 * What the assertion families share: how a value is shown in a message, how a subject is
 * matched and named, and the helpers bound to chai (subject, negation, usage errors).
 */
/// <reference types="chai" />
import type { MountinfoEntry } from '../readback/mountinfo.ts';
import type { CommandResult, ProcessInfo } from '../readback/snapshot.ts';

export type Ctx = Chai.AssertionStatic;

export function show(s: string | null | undefined): string {
  return s === null || s === undefined ? String(s) : JSON.stringify(s);
}

export function showExpected(x: string | RegExp): string {
  return x instanceof RegExp ? String(x) : JSON.stringify(x);
}

export function matches(actual: string | null | undefined, expected: string | RegExp, mode: 'exact' | 'contains' = 'exact'): boolean {
  if (actual === null || actual === undefined) return false;
  if (expected instanceof RegExp) {
    expected.lastIndex = 0;
    return expected.test(actual);
  }
  return mode === 'exact' ? actual === expected : actual.includes(expected);
}

export function indent(text: string, by = '  '): string {
  return text
    .split('\n')
    .map((l) => by + l)
    .join('\n');
}

export function isMountEntry(x: unknown): x is MountinfoEntry {
  return (
    typeof x === 'object' &&
    x !== null &&
    typeof (x as MountinfoEntry).mountId === 'number' &&
    typeof (x as MountinfoEntry).fsType === 'string' &&
    typeof (x as MountinfoEntry).mountPoint === 'string'
  );
}

export function isProcess(x: unknown): x is ProcessInfo {
  return (
    typeof x === 'object' &&
    x !== null &&
    typeof (x as ProcessInfo).pid === 'number' &&
    typeof (x as ProcessInfo).comm === 'string' &&
    'exe' in x
  );
}

export function isCommand(x: unknown): x is CommandResult {
  return (
    typeof x === 'object' &&
    x !== null &&
    typeof (x as CommandResult).status === 'number' &&
    typeof (x as CommandResult).output === 'string'
  );
}

export function describeSubject(x: unknown): string {
  if (x === undefined || x === null) return String(x);
  if (typeof x === 'object') return `a ${(x as object).constructor?.name ?? 'object'}`;
  return `${typeof x} ${JSON.stringify(x)}`;
}

/** chai bound helpers, one set per chai.use(). */
export interface Helpers {
  chai: Chai.ChaiStatic;
  utils: Chai.ChaiUtils;
  subject(ctx: Ctx): unknown;
  negated(ctx: Ctx): boolean;
  /** A misuse of an assertion (wrong subject): always thrown, also under `.not`. */
  usage(ctx: Ctx, text: string): never;
}

export function helpers(chai: Chai.ChaiStatic, utils: Chai.ChaiUtils): Helpers {
  return {
    chai,
    utils,
    subject: (ctx) => utils.flag(ctx, 'object'),
    negated: (ctx) => Boolean(utils.flag(ctx, 'negate')),
    usage: (ctx, text) => {
      const prefix = utils.flag(ctx, 'message');
      throw new chai.AssertionError(prefix ? `${prefix}: ${text}` : text, undefined, utils.flag(ctx, 'ssfi'));
    },
  };
}
