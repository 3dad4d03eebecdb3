/**
 * The scenarios rootprobe knows: every `scenarios/<name>/scenario.ts` here, plus those in
 * folders a user names with --scenarios (same layout: one folder per scenario, or .ts files
 * whose default export is a scenario()).
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { DefinitionError, UsageError } from '../harness/errors.ts';
import type { Scenario } from '../harness/scenario.ts';

export const BUILTIN_DIR = path.dirname(fileURLToPath(import.meta.url));

async function scenarioFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  let ents;
  try {
    ents = await fs.readdir(dir, { withFileTypes: true });
  } catch {
    throw new UsageError(`scenario folder ${dir} does not exist or cannot be read`);
  }
  for (const e of ents.sort((a, b) => a.name.localeCompare(b.name))) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) {
      for (const f of ['scenario.ts', 'scenario.js', 'scenario.mjs']) {
        if (await fs.stat(path.join(p, f)).then(() => true, () => false)) {
          out.push(path.join(p, f));
          break;
        }
      }
    } else if (/\.(ts|js|mjs)$/.test(e.name) && !/\.(test|d)\.ts$/.test(e.name) && dir !== BUILTIN_DIR) {
      out.push(p);
    }
  }
  return out;
}

function isScenario(v: unknown): v is Scenario {
  return Boolean(v && typeof v === 'object' && 'name' in v && 'check' in v && 'file' in v);
}

/** Loads the scenarios of the given folders (the built-in ones first). Duplicate names are an error. */
export async function loadScenarios(extraDirs: string[] = []): Promise<Scenario[]> {
  const dirs = [BUILTIN_DIR, ...extraDirs.map((d) => path.resolve(d))];
  const all: Scenario[] = [];
  for (const dir of dirs) {
    for (const file of await scenarioFiles(dir)) {
      const mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
      const found = Object.values(mod).filter(isScenario);
      if (found.length === 0) {
        if (dir === BUILTIN_DIR) throw new DefinitionError(`${file} exports no scenario(); export default scenario({...})`);
        continue;
      }
      for (const s of new Set(found)) {
        const twin = all.find((o) => o.name === s.name);
        if (twin) throw new DefinitionError(`scenario name '${s.name}' is defined twice: in ${twin.file} and in ${s.file}`);
        all.push(s);
      }
    }
  }
  return all;
}

/** The named scenarios, or a UsageError listing the known ones. */
export function pickScenarios(all: Scenario[], names: string[]): Scenario[] {
  const unknown = names.filter((n) => !all.some((s) => s.name === n));
  if (unknown.length > 0) {
    throw new UsageError(
      `unknown scenario${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')}. Known: ${all.map((s) => s.name).join(', ')}`,
    );
  }
  return names.map((n) => all.find((s) => s.name === n)!);
}
