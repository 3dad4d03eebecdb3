/**
 * docs/reference.md is complete: every key of a scenario definition, of a disk and of boot()'s
 * options (from the zod schemas the types come from), and every public member of ImageTree,
 * BuildContext, CheckContext, RunReadback, Stage, ProcessInfo, Mountinfo, MountinfoEntry and
 * every rootprobe assertion (read from the sources with the TypeScript compiler), has a row with
 * an example in its section. A member added without a line in the reference fails here.
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import ts from 'typescript';
import { diskSchema, scenarioSchema } from '../harness/scenario.ts';
import { bootOptionsSchema } from '../harness/boot-options.ts';
import { ROOT } from './support/cli.ts';

const doc = readFileSync(path.join(ROOT, 'docs/reference.md'), 'utf8');

/** The table rows of the section headed `## <title>`: first cell (unquoted) -> the other cells. */
function section(title: string): Map<string, string[]> {
  const start = doc.indexOf(`\n## ${title}\n`);
  expect(start, `docs/reference.md has a section "## ${title}"`).to.be.greaterThan(-1);
  const end = doc.indexOf('\n## ', start + 4);
  const rows = new Map<string, string[]>();
  for (const line of doc.slice(start, end < 0 ? undefined : end).split('\n')) {
    const m = /^\| `([^`]+)` \|(.*)\|$/.exec(line);
    if (m)
      rows.set(
        m[1]!,
        m[2]!.split(/(?<!\\)\|/).map((c) => c.trim()),
      );
  }
  return rows;
}

const program = ts.createProgram(
  [
    'harness/image/tree.ts',
    'harness/scenario.ts',
    'harness/readback/snapshot.ts',
    'harness/readback/mountinfo.ts',
    'harness/readback/result.ts',
    'harness/assert/chai-rootprobe.ts',
  ].map((f) => path.join(ROOT, f)),
  {
    noEmit: true,
    allowImportingTsExtensions: true,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
  },
);

/** The public members of a class or interface declared in `file` (no private, protected, constructor). */
function members(file: string, name: string): string[] {
  const sf = program.getSourceFile(path.join(ROOT, file));
  expect(sf, file).to.not.equal(undefined);
  const out = new Set<string>();
  const visit = (n: ts.Node): void => {
    if ((ts.isClassDeclaration(n) || ts.isInterfaceDeclaration(n)) && n.name?.text === name) {
      for (const m of n.members) {
        const mods = ts.canHaveModifiers(m) ? (ts.getModifiers(m) ?? []) : [];
        if (mods.some((x) => x.kind === ts.SyntaxKind.PrivateKeyword || x.kind === ts.SyntaxKind.ProtectedKeyword)) continue;
        if (m.name && (ts.isIdentifier(m.name) || ts.isStringLiteral(m.name))) out.add(m.name.text);
      }
    }
    ts.forEachChild(n, visit);
  };
  visit(sf!);
  expect(out.size, `${name} in ${file} has members`).to.be.greaterThan(0);
  return [...out];
}

const SECTIONS: Array<[title: string, keys: () => string[]]> = [
  ['Scenario definition', () => Object.keys(scenarioSchema.shape)],
  ['Disk', () => Object.keys(diskSchema.shape)],
  ['t: ImageTree', () => members('harness/image/tree.ts', 'ImageTree')],
  ['ctx: BuildContext', () => members('harness/scenario.ts', 'BuildContext')],
  ['Check context', () => members('harness/scenario.ts', 'CheckContext')],
  ['RunReadback (ctx.result)', () => members('harness/readback/result.ts', 'RunReadback')],
  ['Stage', () => members('harness/readback/snapshot.ts', 'Stage')],
  ['ProcessInfo', () => members('harness/readback/snapshot.ts', 'ProcessInfo')],
  ['Mountinfo', () => members('harness/readback/mountinfo.ts', 'Mountinfo')],
  ['MountinfoEntry', () => members('harness/readback/mountinfo.ts', 'MountinfoEntry')],
  ['Assertions', () => members('harness/assert/chai-rootprobe.ts', 'Assertion')],
  ['boot() options', () => Object.keys(bootOptionsSchema.shape)],
];

describe('docs/reference.md documents every key, member and assertion', () => {
  for (const [title, keys] of SECTIONS) {
    it(`## ${title}: a row with what and an example for each`, () => {
      const rows = section(title);
      const names = keys();
      const missing = names.filter((k) => !rows.has(k));
      expect(missing, `undocumented in "## ${title}"`).to.deep.equal([]);
      for (const k of names) {
        const [what, example] = rows.get(k)!;
        expect(what, `${title}: ${k} says what it is`).to.match(/\w{3}/);
        expect(example, `${title}: ${k} has an example`).to.match(/^`.+`$/);
      }
      // and nothing documented that is not there (a renamed member leaves a stale row)
      const stale = [...rows.keys()].filter((k) => !names.includes(k));
      expect(stale, `rows in "## ${title}" for members that do not exist`).to.deep.equal([]);
    });
  }

  it('the reference test itself can fail: a made-up member is found missing', () => {
    expect(section('Stage').has('noSuchMember')).to.equal(false);
  });
});
