/**
 * The public API (harness/index.ts, the package's `.` export) is what a scenario author or a
 * library user writes against: every name the README, docs/reference.md, the examples, the
 * GitHub action, the `rootprobe new` template and the package tests import from 'rootprobe' is there, and the
 * result channel's framing, the snapshot parser, the runner and the CLI's helpers are not.
 */
import { expect } from 'chai';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { ROOT } from './support/cli.ts';

const INDEX = readFileSync(path.join(ROOT, 'harness/index.ts'), 'utf8');

/** Every file whose text may show `import ... from 'rootprobe'` to a user. */
function userFacing(): string[] {
  const out = ['README.md', 'docs/reference.md', 'harness/cli/new.ts', 'test/package.test.ts', 'test/setup.test.ts'].map((f) =>
    path.join(ROOT, f),
  );
  const walk = (d: string): void => {
    for (const n of readdirSync(d)) {
      const p = path.join(d, n);
      if (statSync(p).isDirectory()) walk(p);
      else if (/\.(ts|mjs|js|md)$/.test(n)) out.push(p);
    }
  };
  walk(path.join(ROOT, 'examples'));
  walk(path.join(ROOT, '.github/action'));
  return out;
}

/** The names imported from 'rootprobe' in `text`: values, and types (`type X`). */
function importedNames(text: string): Array<{ name: string; type: boolean }> {
  const out: Array<{ name: string; type: boolean }> = [];
  for (const m of text.matchAll(/import\s+(type\s+)?\{([^}]*)\}\s+from\s+['"]rootprobe['"]/g)) {
    for (const part of m[2]!
      .split(',')
      .map((p) => p.trim())
      .filter(Boolean)) {
      const type = Boolean(m[1]) || part.startsWith('type ');
      out.push({ name: part.replace(/^type\s+/, '').split(/\s+as\s+/)[0]!, type });
    }
  }
  return out;
}

describe('the public API (harness/index.ts)', () => {
  it('exports what a scenario author or a library user writes against, and no protocol internals', async () => {
    const api = await import('../harness/index.ts');
    expect(Object.keys(api).sort()).to.deep.equal(
      [
        'DefinitionError',
        'ImageTree',
        'Mountinfo',
        'RunReadback',
        'SetupError',
        'Stage',
        'UsageError',
        'boot',
        'detectAccel',
        'importTar',
        'parseOptions',
        'propagationOf',
        'resolveKernel',
        'rootprobeChai',
        'scenario',
      ].sort(),
    );
  });

  it('every name the docs, the examples, the action, the new template and the package tests import from rootprobe is exported', async () => {
    const api = await import('../harness/index.ts');
    const seen: string[] = [];
    for (const f of userFacing()) {
      for (const { name, type } of importedNames(readFileSync(f, 'utf8'))) {
        seen.push(name);
        const where = `${name} (imported in ${path.relative(ROOT, f)})`;
        if (type) expect(INDEX, where).to.match(new RegExp(`export (type )?\\{[^}]*\\b${name}\\b|export (interface|type) ${name}\\b`));
        else expect(api, where).to.have.property(name);
      }
    }
    expect(seen, 'the docs were read').to.include.members(['scenario', 'boot', 'detectAccel', 'resolveKernel']);
    // docs/reference.md's own examples: chai.use(rootprobeChai), Stage.fromJSON, parseOptions(e.options) ...
    for (const name of ['rootprobeChai', 'Stage', 'RunReadback', 'Mountinfo', 'parseOptions', 'propagationOf', 'importTar', 'ImageTree'])
      expect(api, name).to.have.property(name);
  });
});
