/**
 * Every default of a boot is in harness/plan/defaults.ts (DEFAULTS): no other code spells the
 * default kernel, the artifacts folder or the guest memory, so changing one there changes it
 * everywhere (the CLI, the library's boot(), the matrix, the KVM probe, the help).
 */
import { expect } from 'chai';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { COMMANDS, helpContext, helpText } from '../harness/cli/options.ts';
import { DEFAULTS } from '../harness/plan/defaults.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DEFAULTS_FILE = path.join(ROOT, 'harness/plan/defaults.ts');

/** Each line of code (comments left out) of the .ts files under `dirs`, but DEFAULTS_FILE. */
function codeLines(dirs: string[]): Array<{ where: string; code: string }> {
  const out: Array<{ where: string; code: string }> = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const p = path.join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name.endsWith('.ts') && p !== DEFAULTS_FILE) {
        readFileSync(p, 'utf8')
          .split('\n')
          .forEach((line, i) => {
            const code = line.replace(/\/\/.*$|\/\*.*?\*\/|^\s*\*.*$/g, '');
            out.push({ where: `${path.relative(ROOT, p)}:${i + 1}: ${line.trim()}`, code });
          });
      }
    }
  };
  for (const d of dirs) walk(path.join(ROOT, d));
  return out;
}

describe('the defaults (harness/plan/defaults.ts)', () => {
  it('no code outside it names the default kernel, the artifacts folder or the guest memory', () => {
    const spelled = [
      { what: 'the default kernel', re: new RegExp(`['"\`]${DEFAULTS.kernel}['"\`]`) },
      { what: 'the artifacts folder', re: new RegExp(`['"\`]\\.?/?${DEFAULTS.artifactsRoot}['"\`]|default \\./${DEFAULTS.artifactsRoot}`) },
      { what: 'the guest memory', re: new RegExp(`(memoryMiB:|\\?\\?|\\|\\|)\\s*${DEFAULTS.memoryMiB}\\b(?!\\s*[*<])`) },
      // A boot's firmware option (a report's `r.firmware ?? 'bios'` shows a record that has none).
      { what: 'the firmware', re: /\b(opts|spec)\.firmware\s*\?\?\s*'bios'/ },
    ];
    const lines = codeLines(['harness', 'kernels', 'scenarios', 'images']);
    const offenders = spelled.flatMap(({ what, re }) => lines.filter((l) => re.test(l.code)).map((l) => `${what}: ${l.where}`));
    expect(offenders).to.deep.equal([]);
  });

  it('the help names them from DEFAULTS', () => {
    const ctx = helpContext([]);
    expect(helpText(COMMANDS.run, ctx)).to.include(`${DEFAULTS.kernel} (default)`).and.include(`(default ./${DEFAULTS.artifactsRoot})`);
    expect(helpText(COMMANDS['run external'], ctx)).to.include(`deadline under KVM (default ${DEFAULTS.externalTimeoutSec};`);
  });
});
