/**
 * The scenarios rootprobe knows: every `scenarios/<name>/scenario.ts` here, plus those in
 * folders a user names with --scenarios (same layout: one folder per scenario, or .ts files
 * whose default export is a scenario()).
 */
import { createHash } from 'node:crypto';
import { promises as fs, readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { DefinitionError, UsageError } from '../harness/errors.ts';
import { nearestKey } from '../harness/nearest.ts';
import { stableJson } from '../harness/cache.ts';
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
      const f = await folderScenarioFile(p);
      if (f) out.push(f);
    } else if (/\.(ts|mts|js|mjs)$/.test(e.name) && !/\.(test|d)\.m?ts$/.test(e.name) && dir !== BUILTIN_DIR) {
      out.push(p);
    }
  }
  return out;
}

/** A scenario folder's scenario.ts (or .mts, .js, .mjs), if it has one. */
async function folderScenarioFile(dir: string): Promise<string | undefined> {
  for (const f of ['scenario.ts', 'scenario.mts', 'scenario.js', 'scenario.mjs']) {
    if (
      await fs.stat(path.join(dir, f)).then(
        (st) => st.isFile(),
        () => false,
      )
    )
      return path.join(dir, f);
  }
  return undefined;
}

function isScenario(v: unknown): v is Scenario {
  return Boolean(v && typeof v === 'object' && 'name' in v && 'check' in v && 'file' in v);
}

/** The "type" of the package.json nearest above `file` ('commonjs' when there is none). */
async function packageType(file: string): Promise<string> {
  for (let dir = path.dirname(file); ; dir = path.dirname(dir)) {
    const text = await fs.readFile(path.join(dir, 'package.json'), 'utf8').catch(() => undefined);
    if (text !== undefined) {
      try {
        return (JSON.parse(text) as { type?: string }).type ?? 'commonjs';
      } catch {
        return 'commonjs';
      }
    }
    if (path.dirname(dir) === dir) return 'commonjs';
  }
}

/**
 * The compiled package (dist/) runs as plain JavaScript with no loader, so that a command
 * starts in a tenth of a second; tsx's loader is registered only when a TypeScript scenario
 * file is about to be loaded, once per process. When this module is itself TypeScript (the
 * sources, run through tsx by bin/rootprobe.js or mocha), a loader is already there.
 */
let tsLoader: Promise<void> | undefined;
function typeScriptLoader(): Promise<void> {
  if (import.meta.url.endsWith('.ts')) return Promise.resolve();
  tsLoader ??= import('tsx/esm/api').then(({ register }) => {
    register();
  });
  return tsLoader;
}

/**
 * Imports one scenario file. A scenario file that fails to load is the scenario's mistake
 * (exit 2, naming the file), not an internal error; the commonest one, a .ts file outside any
 * package with "type": "module", gets said in so many words (Node then loads it as CommonJS,
 * and its `import` of the harness fails with a require() cycle).
 */
async function importScenarioFile(file: string): Promise<Record<string, unknown>> {
  if (/\.(ts|mts)$/.test(file)) await typeScriptLoader();
  try {
    return (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (e) {
    if (e instanceof DefinitionError || e instanceof UsageError) throw e;
    const err = e as NodeJS.ErrnoException;
    const where = err.stack
      ?.split('\n')
      .find((l) => l.includes(path.dirname(file)))
      ?.trim();
    if (/\.(ts|js)$/.test(file) && (await packageType(file)) !== 'module') {
      throw new DefinitionError(
        `${file} could not be loaded: no package.json with "type": "module" above it, so Node reads it as ` +
          `CommonJS. Add one to its folder (or a parent), or name it .mts/.mjs. (${err.code ?? err.name}: ${err.message.split('\n')[0]})`,
      );
    }
    throw new DefinitionError(`${file} could not be loaded: ${err.message.split('\n')[0]}${where ? `\n  ${where}` : ''}`);
  }
}

/** Loads the scenarios of the given folders (the built-in ones first). Duplicate names are an error. */
export async function loadScenarios(extraDirs: string[] = []): Promise<Scenario[]> {
  const dirs = [BUILTIN_DIR, ...extraDirs.map((d) => path.resolve(d))];
  const all: Scenario[] = [];
  for (const dir of dirs) {
    const before = all.length;
    for (const file of await scenarioFiles(dir)) {
      const mod = await importScenarioFile(file);
      const found = Object.values(mod).filter(isScenario);
      if (found.length === 0) {
        // A loose helper module in a --scenarios folder is fine; a scenario.ts is not.
        if (dir === BUILTIN_DIR || /^scenario\.m?[tj]s$/.test(path.basename(file))) {
          throw new DefinitionError(`${file} exports no scenario(); export default scenario({...})`);
        }
        continue;
      }
      for (const s of new Set(found)) {
        const twin = all.find((o) => o.name === s.name);
        if (twin) throw new DefinitionError(`scenario name '${s.name}' is defined twice: in ${twin.file} and in ${s.file}`);
        all.push(s);
      }
    }
    if (dir !== BUILTIN_DIR && all.length === before) {
      throw new UsageError(
        `--scenarios ${dir} holds no scenario (a <name>/scenario.ts, or a .ts file whose default export is a scenario())`,
      );
    }
  }
  return all;
}

/** The named scenarios, or a UsageError listing the known ones. */
export function pickScenarios(all: Scenario[], names: string[]): Scenario[] {
  const unknown = names.filter((n) => !all.some((s) => s.name === n));
  if (unknown.length > 0) {
    throw new UsageError(
      `unknown scenario${unknown.length > 1 ? 's' : ''}: ${unknown
        .map((n) => {
          const near = nearestKey(
            n,
            all.map((s) => s.name),
          );
          return near ? `${n} (did you mean ${near}?)` : n;
        })
        .join(', ')}. Known: ${all.map((s) => s.name).join(', ')}`,
    );
  }
  return names.map((n) => all.find((s) => s.name === n)!);
}

/**
 * The named scenarios: what pickScenarios(await loadScenarios(extraDirs), names) gives, but
 * when every name is a built-in scenario in the folder of its name (and no --scenarios
 * folder is given, whose names could clash with them), only those folders are loaded:
 * `rootprobe run switch_root` then imports one scenario, not all of them (start-up). Any
 * other case, including a misspelt name, loads them all, for the error and its suggestion.
 */
export async function loadNamedScenarios(names: string[], extraDirs: string[] = []): Promise<Scenario[]> {
  if (extraDirs.length === 0 && names.length > 0 && names.every((n) => /^[A-Za-z0-9_.-]+$/.test(n) && !n.startsWith('.'))) {
    const found: Scenario[] = [];
    for (const name of names) {
      const file = await folderScenarioFile(path.join(BUILTIN_DIR, name));
      const sc = file
        ? Object.values(await importScenarioFile(file)).find((v): v is Scenario => isScenario(v) && v.name === name)
        : undefined;
      if (!sc) break;
      found.push(sc);
    }
    if (found.length === names.length) return found;
  }
  return pickScenarios(await loadScenarios(extraDirs), names);
}

/** What `rootprobe list` shows of a scenario. */
export interface ScenarioSummary {
  name: string;
  description: string;
  seeds?: string[];
}

/** The index of the built-in scenarios that the package build writes beside them (dist/scenarios/). */
export const BUILTIN_INDEX = 'builtin-index.json';

interface BuiltinIndex {
  /** Every module under the folder with the sha256 of its text: the index holds while they are the same. */
  files: Record<string, string>;
  scenarios: ScenarioSummary[];
}

/** The folder's modules and their hashes (by content: npm pack and install do not keep mtimes). */
function moduleHashes(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const rel of readdirSync(BUILTIN_DIR, { recursive: true, encoding: 'utf8' }).sort()) {
    if (!/\.(m?js|m?ts)$/.test(rel) || /\.d\.m?ts$/.test(rel)) continue;
    out[rel.split(path.sep).join('/')] = createHash('sha256')
      .update(readFileSync(path.join(BUILTIN_DIR, rel)))
      .digest('hex');
  }
  return out;
}

/**
 * The built-in scenarios' names and descriptions. The compiled package answers from the index
 * its build wrote (writeBuiltinIndex) as long as every module of the folder has the text it
 * had then: `rootprobe list` then imports no scenario (start-up). The sources, or
 * a changed file, load them all.
 */
export async function builtinSummaries(): Promise<ScenarioSummary[]> {
  try {
    const index = JSON.parse(readFileSync(path.join(BUILTIN_DIR, BUILTIN_INDEX), 'utf8')) as BuiltinIndex;
    if (stableJson(moduleHashes()) === stableJson(index.files)) return index.scenarios;
  } catch {
    // no index (the sources), or an unreadable one: load them
  }
  return (await loadScenarios([])).map(summaryOf);
}

function summaryOf(s: Scenario): ScenarioSummary {
  return { name: s.name, description: s.description, ...(s.seeds?.length ? { seeds: [...s.seeds] } : {}) };
}

/** Writes the index builtinSummaries() reads (scripts/build.mjs, in dist/scenarios/): returns how many scenarios it lists. */
export async function writeBuiltinIndex(): Promise<number> {
  const scenarios = (await loadScenarios([])).map(summaryOf);
  const index: BuiltinIndex = { files: moduleHashes(), scenarios };
  await fs.writeFile(path.join(BUILTIN_DIR, BUILTIN_INDEX), `${JSON.stringify(index, null, 1)}\n`);
  return scenarios.length;
}
