/**
 * Checks of scenario definitions that need no boot, run before any kernel is fetched or image
 * built (runMatrix, `rootprobe build`, `rootprobe shell`, boot()). Each mistake is a
 * DefinitionError (exit 2) naming the scenario and its file (with the line, where there is one):
 *
 *  - the definition itself, whole (the zod schema of scenario.ts: unknown keys, types, ranges),
 *    for Scenario objects that did not come through scenario();
 *  - two scenarios with the same name;
 *  - check() asserts on a stage the scenario does not declare: the text of check() is scanned
 *    for `stage('name')` calls (also `ctx.stage(...)`, `result.stage(...)`; any quotes);
 *  - check() asserts on a stage that no guest script ever probes: the guest scripts are
 *    scanned for `probe <name>` (and `rp_finish`, which probes `done`). The scripts are every
 *    `*.sh` in the scenario's folder (recursively, when the folder holds only this scenario,
 *    i.e. its file is `scenario.ts`), every file its source names with `here('...')`, and
 *    the scenario's own source (scripts written inline). A name given through a variable
 *    (`probe "$stage"`) cannot be read statically: then, and when no probe call is found at
 *    all (the scripts come from elsewhere), this check stays silent rather than guess.
 *
 * A disk whose content does not fit is found by the image builder (a DefinitionError, before
 * anything boots); withScenario() adds the scenario's name and file to such an error.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { DefinitionError, isPeopleError, SetupError } from './errors.ts';
import { definitionIssues, declaredStages, RESERVED_STAGES, type Scenario } from './scenario.ts';

/** `stage('x')`, `ctx.stage("x")`, `stage(\`x\`)`: the stage names check() asks for. */
const STAGE_CALL = /\bstage\(\s*(['"`])([^'"`$\\]+)\1\s*\)/g;
/** `probe name`, `probe "name"` at the start of a command. */
const PROBE_CALL = /(?:^|[\s;&|(){}`'"]|\$\()probe[ \t]+(["']?)([^\s"';&|)\\]+)\1/g;
const DYNAMIC_NAME = /^\$|\$\{?/;

function readText(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

function lineOf(text: string | undefined, needle: RegExp): number | undefined {
  if (!text) return undefined;
  const m = needle.exec(text);
  return m ? text.slice(0, m.index).split('\n').length : undefined;
}

function shellFiles(dir: string, recursive: boolean, depth = 0): string[] {
  let ents;
  try {
    ents = readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const e of ents) {
    const p = path.join(dir, e.name);
    if (e.isFile() && e.name.endsWith('.sh')) out.push(p);
    else if (recursive && e.isDirectory() && depth < 4 && e.name !== 'node_modules' && !e.name.startsWith('.')) {
      out.push(...shellFiles(p, recursive, depth + 1));
    }
  }
  return out;
}

/** The stages asked for in check(), in order of first appearance. */
export function assertedStages(sc: Scenario): string[] {
  const src = sc.check.toString();
  const names: string[] = [];
  for (const m of src.matchAll(STAGE_CALL)) if (!names.includes(m[2])) names.push(m[2]);
  return names;
}

export interface GuestProbes {
  /** Stage names probed by literal name. */
  names: Set<string>;
  /** Some probe call names its stage through a variable. */
  dynamic: boolean;
  /** The files scanned. */
  files: string[];
}

/** The stage names the scenario's guest scripts probe (statically, see the file comment). */
export function guestProbes(sc: Scenario): GuestProbes {
  const source = readText(sc.file) ?? '';
  const files = new Set<string>(shellFiles(sc.dir, path.basename(sc.file).startsWith('scenario.')));
  for (const m of source.matchAll(/\bhere\(\s*(['"`])([^'"`$]+)\1\s*\)/g)) {
    const p = path.resolve(sc.dir, m[2]);
    try {
      if (statSync(p).isFile()) files.add(p);
    } catch {
      /* a missing file is the image builder's error to report */
    }
  }
  const names = new Set<string>();
  let dynamic = false;
  const scan = (text: string): void => {
    // Comment lines say things like "probe the mount tree": not calls.
    const code = text
      .split('\n')
      .filter((l) => !/^\s*(#|\/\/|\*)/.test(l))
      .join('\n');
    for (const m of code.matchAll(PROBE_CALL)) {
      if (DYNAMIC_NAME.test(m[2])) dynamic = true;
      else names.add(m[2]);
    }
    if (/(?:^|[\s;&|(){}])rp_finish\b/.test(code)) names.add('done');
  };
  for (const f of files) scan(readText(f) ?? '');
  // Scripts written inline in the .ts are string literals: their line breaks are `\n` escapes,
  // and a script may start right after the quote.
  scan(source.replace(/\\[nt]/g, '\n'));
  return { names, dynamic, files: [...files] };
}

function where(sc: Scenario, line?: number): string {
  return `scenario '${sc.name}' (${sc.file}${line ? `:${line}` : ''})`;
}

/** Every definition mistake that can be seen without building or booting, or nothing. */
export function definitionProblems(scenarios: Scenario[]): string[] {
  const problems: string[] = [];
  const seen = new Map<string, Scenario>();
  for (const sc of scenarios) {
    const twin = seen.get(sc.name);
    if (twin && twin !== sc) {
      problems.push(`scenario name '${sc.name}' is defined twice: in ${twin.file} and in ${sc.file}`);
      continue;
    }
    seen.set(sc.name, sc);
    // A Scenario made without scenario() (an object spread, a library's own) gets the same
    // whole-definition check scenario() does; for one that came through it, this finds nothing.
    const { file: _file, dir: _dir, ...def } = sc;
    const issues = definitionIssues(def, sc.file);
    if (issues.length) {
      problems.push(...issues.map((i) => `scenario '${sc.name}': ${i}`));
      continue;
    }
    const source = readText(sc.file);
    const declared = declaredStages(sc);
    const asserted = assertedStages(sc);
    const at = (name: string): number | undefined =>
      lineOf(source, new RegExp(`\\bstage\\(\\s*['"\`]${name.replace(/[.]/g, '\\.')}['"\`]`));
    for (const name of asserted) {
      if (!declared.includes(name) && !RESERVED_STAGES.includes(name)) {
        problems.push(
          `${where(sc, at(name))}: check() asserts on stage '${name}', which the scenario does not declare ` +
            `(stages: ${[...sc.stages, ...(sc.optionalStages ?? [])].join(', ')}); add it to stages, or fix the name`,
        );
      }
    }
    const probes = guestProbes(sc);
    if (probes.dynamic || probes.names.size === 0) continue;
    for (const name of asserted) {
      if (!declared.includes(name) || probes.names.has(name)) continue;
      problems.push(
        `${where(sc, at(name))}: check() asserts on stage '${name}', but no guest script probes it ` +
          `(no \`probe ${name}\` in ${[sc.file, ...probes.files].map((f) => path.relative(sc.dir, f) || path.basename(f)).join(', ')}; ` +
          `probed: ${[...probes.names].join(', ')})`,
      );
    }
  }
  return problems;
}

/** Throws one DefinitionError listing every problem of definitionProblems(). */
export function validateScenarios(scenarios: Scenario[]): void {
  const problems = definitionProblems(scenarios);
  if (problems.length === 1) throw new DefinitionError(problems[0]);
  if (problems.length > 1) throw new DefinitionError(`${problems.length} scenario definition problems:\n  ${problems.join('\n  ')}`);
}

/**
 * A people error from building a scenario's images (its definition, or a host file it names that
 * this machine lacks), with the scenario's name and file added; the error keeps its class.
 */
export function withScenario(e: unknown, sc: Scenario): unknown {
  if (!(e instanceof DefinitionError || e instanceof SetupError) || !isPeopleError(e) || e.message.includes(sc.file)) return e;
  const wrapped =
    e instanceof SetupError ? new SetupError(`${where(sc)}: ${e.message}`) : new DefinitionError(`${where(sc)}: ${e.message}`);
  wrapped.stack = e.stack;
  return wrapped;
}
