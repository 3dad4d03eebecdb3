/**
 * A scenario definition is checked whole, against the zod schema its TypeScript types come
 * from, before anything is built or booted: an unknown key names itself, the file, the line and
 * the nearest known key; every value's type and range, nested ones too. No boot here: these are
 * the errors a user sees at `rootprobe run` before any kernel is fetched (exit 2).
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  definitionIssues,
  editDistance,
  nearestKey,
  scenario,
  scenarioSchema,
  diskSchema,
  type ScenarioDefinition,
} from '../harness/scenario.ts';
import { DefinitionError } from '../harness/errors.ts';
import { cli } from './support/cli.ts';

const here = fileURLToPath(import.meta.url);
const fixtures = path.join(path.dirname(here), 'fixtures/scenarios');

function valid(): ScenarioDefinition {
  return {
    name: 'ok',
    description: 'a valid definition',
    features: ['initrd', 'proc'],
    initramfs: () => undefined,
    stages: ['one'],
    check: () => undefined,
  };
}

/** The problems of `def` (as if defined in this file at line 1). */
function issues(extra: Record<string, unknown>, drop: string[] = []): string[] {
  const def: Record<string, unknown> = { ...valid(), ...extra };
  for (const k of drop) delete def[k];
  return definitionIssues(def, here, 1);
}

describe('scenario definitions checked whole (zod schema)', () => {
  it('accepts a valid definition, and every built-in scenario loads', () => {
    expect(issues({})).to.deep.equal([]);
    expect(() => scenario(valid(), import.meta)).to.not.throw();
  });

  it("the folder is import.meta's; without import.meta, a DefinitionError says what to pass (no folder guessed from the stack)", () => {
    expect(scenario(valid(), import.meta)).to.include({ file: here, dir: path.dirname(here) });
    for (const where of [undefined, {}, { url: '' }]) {
      // @ts-expect-error: the mistake under test
      expect(() => scenario(valid(), where)).to.throw(
        DefinitionError,
        /^scenario 'ok' \(.*validate-schema\.test\.ts:\d+\): scenario\(\) needs the file's import\.meta as its second argument, scenario\(\{ \.\.\. \}, import\.meta\)/,
      );
    }
  });

  it('an unknown key names itself and the nearest known key', () => {
    expect(issues({ modlues: ['overlay'] })).to.have.length(1);
    expect(issues({ modlues: ['overlay'] })[0]).to.include('`modlues`: did you mean `modules`?');
    expect(issues({ stagse: ['x'] })[0]).to.include('did you mean `stages`?');
    expect(issues({ timeout: 5 })[0]).to.include('did you mean `timeoutSec`?');
    // nothing near: the known keys are listed
    expect(issues({ zzzzzzzz: 1 })[0]).to.match(/`zzzzzzzz`: unknown key \(known: name, description, .*check\)/);
  });

  it("nested keys too: a disk's `files` is `content`, `fs` and `sizeMiB` are checked", () => {
    const disk = { name: 'root', fs: 'ext4', sizeMiB: 8 };
    expect(issues({ disks: [{ ...disk, files: () => undefined }] })[0]).to.include('`disks[0].files`: did you mean `disks[0].content`?');
    expect(issues({ disks: [{ ...disk, fs: 'xfs' }] })[0]).to.include("`disks[0].fs`: must be 'ext4' or 'raw' (got \"xfs\")");
    expect(issues({ disks: [{ ...disk, sizeMiB: 0 }] })[0]).to.include('`disks[0].sizeMiB`: must be at least 1');
    expect(issues({ disks: [{ ...disk, sizeMiB: 2.5 }] })[0]).to.include('`disks[0].sizeMiB`: must be a whole number');
    expect(issues({ disks: [{ ...disk, sizeMiB: 1 }] })[0]).to.include('an ext4 disk needs at least 2 MiB');
    expect(issues({ disks: [{ ...disk, fs: 'raw', content: () => undefined }] })[0]).to.include('a raw disk has no content');
    expect(issues({ disks: [{ ...disk, label: 'a-label-longer-than-16' }] })[0]).to.include('`disks[0].label`: must be at most 16 bytes');
    expect(issues({ disks: [disk, disk] })[0]).to.include("`disks[1].name`: disk 'root' is defined twice");
    const inner = { name: 'inner', fs: 'ext4', sizeMiB: 4, sizeMB: 4 };
    expect(issues({ disks: [{ ...disk, images: { '/root.img': inner } }] })[0]).to.include(
      '`disks[0].images./root.img.sizeMB`: did you mean `disks[0].images./root.img.sizeMiB`?',
    );
  });

  it("every value's type and range", () => {
    expect(issues({ name: 'Bad Name' })[0]).to.include('`name`: must be lowercase letters');
    expect(issues({}, ['description'])[0]).to.include('`description`: is missing');
    expect(issues({ description: '' })[0]).to.include('`description`: must not be empty');
    expect(issues({ stages: [] })[0]).to.include('`stages`: must list at least one stage');
    expect(issues({ stages: ['done'] })[0]).to.include('stage "done" is reserved');
    expect(issues({ stages: ['a b'] })[0]).to.include('is not a valid stage name');
    expect(issues({ stages: ['a', 'a'] })[0]).to.include("`stages[1]`: stage 'a' is listed twice");
    expect(issues({ stages: ['a'], optionalStages: ['a'] })[0]).to.include("`optionalStages[0]`: stage 'a' is listed twice");
    expect(issues({ optionalStages: ['guest-error'] })[0]).to.include('stage "guest-error" is reserved');
    expect(issues({ optionalStages: ['b'] })).to.deep.equal([]);
    expect(issues({ timeoutSec: -1 })[0]).to.include('`timeoutSec`: must be positive');
    expect(issues({ memoryMiB: 32 })[0]).to.include('`memoryMiB`: must be at least 64');
    expect(issues({ memoryMiB: '512' })[0]).to.include('`memoryMiB`: must be a number (MiB of guest memory), got the string "512"');
    expect(issues({ check: 'yes' })[0]).to.include('`check`: must be a function');
    expect(issues({}, ['check'])[0]).to.include('`check`: is missing');
    expect(issues({ initramfs: true })[0]).to.include('`initramfs`: must be a function (t, ctx) => ... that fills the initramfs, or false');
    expect(issues({ initramfs: false })).to.deep.equal([]);
    expect(issues({ skipIf: () => undefined })).to.deep.equal([]);
    expect(issues({ skipIf: 'always' })[0]).to.include('`skipIf`: must be a function');
    expect(issues({ seeds: ['3'] })[0]).to.include("`seeds[0]`: must be a seed number like '003'");
    expect(issues({ modules: ['over lay'] })[0]).to.include('`modules[0]`: must be a module name');
    // several mistakes: all of them, at once
    expect(issues({ memoryMiB: 32, timeoutSec: 0, modlues: [] })).to.have.length(3);
  });

  it('an unknown feature says how to load a module instead', () => {
    const [msg] = issues({ features: ['initrd', 'overlay'] });
    expect(msg).to.include('`features[1]`: unknown kernel feature "overlay"; known: initrd');
    expect(msg).to.include('to load a kernel module, name it in `modules` (e.g. modules: ["overlay"])');
  });

  it('the error of scenario() names the scenario, the file and the line of the key', () => {
    let err: unknown;
    try {
      scenario(
        {
          ...valid(),
          // @ts-expect-error: the slip under test
          modlues: ['overlay'],
        },
        import.meta,
      );
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(DefinitionError);
    const line = readFileSync(here, 'utf8').split('\n').indexOf("          modlues: ['overlay'],") + 1;
    expect(line).to.be.greaterThan(0);
    expect((err as Error).message).to.include(`scenario 'ok': ${here}:${line}: \`modlues\`: did you mean \`modules\`?`);
  });

  it('a misspelt scenario file fails `rootprobe run` with exit 2 before anything boots, naming file, line and key', async () => {
    const dir = path.join(fixtures, 'misspelt');
    const file = path.join(dir, 'overlay-root/scenario.ts');
    const r = await cli(['run', 'misspelt-overlay-root', '--scenarios', dir, '--kernel', 'file:/nonexistent/bzImage']);
    expect(r.code, r.stderr).to.equal(2);
    expect(r.stderr).to.include(`${file}:13: \`modlues\`: did you mean \`modules\`?`);
    expect(r.stderr).to.include(`${file}:22: \`disks[0].files\`: did you mean \`disks[0].content\`?`);
    expect(r.stderr).to.not.include('internal error');
  });

  it('the types come from the schema: its keys are the keys of ScenarioDefinition and DiskSpec', () => {
    // A key added to the type but not the schema cannot exist: the type is z.infer of the schema.
    type Keys = keyof ScenarioDefinition;
    const keys: Record<Keys, true> = {
      name: true,
      description: true,
      seeds: true,
      features: true,
      modules: true,
      initramfs: true,
      disks: true,
      cmdline: true,
      stages: true,
      optionalStages: true,
      timeoutSec: true,
      memoryMiB: true,
      skipIf: true,
      initrd: true,
      allowKernelLog: true,
      check: true,
    };
    expect(Object.keys(scenarioSchema.shape).sort()).to.deep.equal(Object.keys(keys).sort());
    expect(Object.keys(diskSchema.shape).sort()).to.deep.equal(['content', 'fs', 'images', 'label', 'name', 'sizeMiB']);
  });

  it('nearest key: a transposition counts one, far keys are not suggested', () => {
    expect(editDistance('modlues', 'modules')).to.equal(1);
    expect(editDistance('kitten', 'sitting')).to.equal(3);
    expect(nearestKey('featrues', ['features', 'stages'])).to.equal('features');
    expect(nearestKey('xyz', ['features', 'stages'])).to.equal(undefined);
  });
});

describe('validateScenarios() checks a Scenario made without scenario() the same way', () => {
  it('finds the unknown key of a hand-made Scenario object', async () => {
    const { definitionProblems } = await import('../harness/validate.ts');
    const made = { ...scenario(valid(), import.meta), modlues: ['overlay'] };
    const problems = definitionProblems([made]);
    expect(problems).to.have.length(1);
    expect(problems[0]).to.include("scenario 'ok': ").and.include('`modlues`: did you mean `modules`?');
    expect(definitionProblems([scenario(valid(), import.meta)])).to.deep.equal([]);
  });
});
