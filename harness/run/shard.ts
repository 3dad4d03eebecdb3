/**
 * Sharding: `--shard i/n` runs the i-th of n disjoint parts of the scenario x kernel matrix,
 * so a CI matrix of n jobs covers every cell exactly once.
 *
 * The split is deterministic and independent of the order names are given in: the cells are
 * sorted by kernel spec, then by scenario name (plain code-unit order), numbered from 0, and
 * cell k goes to shard (k mod n) + 1. Round robin rather than a hash keeps the shards within
 * one cell of each other in size. Every job of a CI matrix must be given the same scenarios
 * and kernels (the same command line but for --shard), or the parts do not fit together.
 *
 * Also here: junitMerge(), which merges the JUnit reports of the shards into one.
 */
import { UsageError } from '../errors.ts';

export interface Shard {
  /** 1-based */
  index: number;
  count: number;
}

/** Parses `i/n` (1 <= i <= n); anything else is a UsageError. */
export function parseShard(text: string): Shard {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(text);
  const i = m ? Number(m[1]) : NaN;
  const n = m ? Number(m[2]) : NaN;
  if (!m || !Number.isSafeInteger(i) || !Number.isSafeInteger(n) || n < 1 || i < 1 || i > n) {
    throw new UsageError(`--shard takes i/n with 1 <= i <= n, like 1/2 or 2/2 (got '${text}')`);
  }
  return { index: i, count: n };
}

/** A shard and where its numbers came from (for the run's first line). */
export interface ResolvedShard extends Shard {
  from: string;
}

function wholeNumber(env: NodeJS.ProcessEnv, name: string): number {
  const v = env[name] ?? '';
  if (!/^\s*\d+\s*$/.test(v)) throw new UsageError(`--shard auto: ${name} must be a whole number (got '${v}')`);
  return Number(v);
}

/**
 * `--shard auto` or `--shard auto/N`: the index and total from the CI the run is in.
 *
 *   ROOTPROBE_JOB_INDEX, ROOTPROBE_JOB_TOTAL   given by you, 0-based like GitHub's
 *                                              ${{ strategy.job-index }} / ${{ strategy.job-total }}
 *   CI_NODE_INDEX, CI_NODE_TOTAL               GitLab CI's `parallel:` (1-based)
 *   JOB_COMPLETION_INDEX                       a Kubernetes Indexed Job (0-based); the total is
 *                                              the Job's `completions`, which its pods are not
 *                                              told: give it as --shard auto/N
 *
 * Looked for in that order; the first set found is used. With `auto/N` the total found must be
 * N. Anything missing or out of range is a UsageError (exit 2) saying what was looked for.
 */
export function resolveShard(text: string, env: NodeJS.ProcessEnv = process.env): ResolvedShard {
  const m = /^\s*auto\s*(?:\/\s*(\d+)\s*)?$/.exec(text);
  if (!m) return { ...parseShard(text), from: '--shard' };
  const given = m[1] !== undefined ? Number(m[1]) : undefined;
  if (given !== undefined && given < 1) throw new UsageError(`--shard auto/N takes N >= 1 (got '${text}')`);
  const set = (n: string): boolean => env[n] !== undefined && env[n] !== '';
  let index: number;
  let count: number;
  let from: string;
  if (set('ROOTPROBE_JOB_INDEX') || set('ROOTPROBE_JOB_TOTAL')) {
    if (!set('ROOTPROBE_JOB_INDEX')) throw new UsageError('--shard auto: ROOTPROBE_JOB_TOTAL is set but ROOTPROBE_JOB_INDEX is not');
    index = wholeNumber(env, 'ROOTPROBE_JOB_INDEX') + 1;
    if (set('ROOTPROBE_JOB_TOTAL')) count = wholeNumber(env, 'ROOTPROBE_JOB_TOTAL');
    else if (given !== undefined) count = given;
    else throw new UsageError('--shard auto: ROOTPROBE_JOB_INDEX is set but not the total: set ROOTPROBE_JOB_TOTAL or give --shard auto/N');
    from = 'ROOTPROBE_JOB_INDEX (0-based)' + (set('ROOTPROBE_JOB_TOTAL') ? ', ROOTPROBE_JOB_TOTAL' : `, --shard auto/${given}`);
  } else if (set('CI_NODE_INDEX') || set('CI_NODE_TOTAL')) {
    if (!set('CI_NODE_INDEX') || !set('CI_NODE_TOTAL')) {
      throw new UsageError(
        `--shard auto: GitLab sets CI_NODE_INDEX and CI_NODE_TOTAL together (a job with parallel:), but only ${set('CI_NODE_INDEX') ? 'CI_NODE_INDEX' : 'CI_NODE_TOTAL'} is set`,
      );
    }
    index = wholeNumber(env, 'CI_NODE_INDEX');
    count = wholeNumber(env, 'CI_NODE_TOTAL');
    from = 'GitLab CI_NODE_INDEX, CI_NODE_TOTAL';
  } else if (set('JOB_COMPLETION_INDEX')) {
    if (given === undefined) {
      throw new UsageError(
        `--shard auto: JOB_COMPLETION_INDEX=${env.JOB_COMPLETION_INDEX} (a Kubernetes Indexed Job) gives the index but not the total: ` +
          "give the Job's completions as --shard auto/N",
      );
    }
    index = wholeNumber(env, 'JOB_COMPLETION_INDEX') + 1;
    count = given;
    from = `Kubernetes JOB_COMPLETION_INDEX (0-based), --shard auto/${given}`;
  } else {
    throw new UsageError(
      '--shard auto found no CI shard variables: none of ROOTPROBE_JOB_INDEX/ROOTPROBE_JOB_TOTAL (0-based; e.g. from ' +
        "GitHub's strategy.job-index and strategy.job-total), GitLab's CI_NODE_INDEX/CI_NODE_TOTAL (parallel:) or a " +
        "Kubernetes Indexed Job's JOB_COMPLETION_INDEX is set. Give --shard I/N instead",
    );
  }
  if (given !== undefined && given !== count) {
    throw new UsageError(`--shard auto/${given}: the total from ${from} is ${count}, not ${given}`);
  }
  if (count < 1 || index < 1 || index > count) {
    throw new UsageError(`--shard auto: ${from} make it shard ${index} of ${count}, outside 1..${count}`);
  }
  return { index, count, from };
}

export interface Cell<S extends { name: string }> {
  scenario: S;
  kernel: string;
}

/** The whole matrix in shard order: by kernel spec, then scenario name. */
export function matrixCells<S extends { name: string }>(scenarios: S[], kernels: string[]): Array<Cell<S>> {
  const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
  const ks = [...new Set(kernels)].sort(cmp);
  const ss = [...scenarios].sort((a, b) => cmp(a.name, b.name));
  return ks.flatMap((kernel) => ss.map((scenario) => ({ scenario, kernel })));
}

/** The cells of one shard (all of them without a shard), in shard order. */
export function shardCells<S extends { name: string }>(scenarios: S[], kernels: string[], shard?: Shard): Array<Cell<S>> {
  const all = matrixCells(scenarios, kernels);
  if (!shard) return all;
  return all.filter((_, k) => (k % shard.count) + 1 === shard.index);
}

// ---------------------------------------------------------------------------------------
// JUnit merge: the testsuite elements of several reports under one <testsuites>, suites of
// the same name (one per kernel) joined, their counts and times summed.

interface Suite {
  name: string;
  attrs: Record<string, string>;
  body: string[];
}

function attrsOf(tag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of tag.matchAll(/([A-Za-z_:][-A-Za-z0-9_:.]*)\s*=\s*"([^"]*)"/g)) out[m[1]] = m[2];
  return out;
}

function num(v: string | undefined): number {
  const n = Number(v ?? 0);
  return Number.isFinite(n) ? n : 0;
}

/** Merges JUnit XML documents (rootprobe's, or any with <testsuite> elements) into one. */
export function junitMerge(docs: Array<{ name: string; text: string }>): string {
  const suites = new Map<string, Suite>();
  for (const { name, text } of docs) {
    if (!/<testsuites?[\s>]/.test(text)) throw new UsageError(`${name} is not a JUnit report (no <testsuites> or <testsuite>)`);
    const re = /<testsuite(\s[^>]*)?(\/>|>([\s\S]*?)<\/testsuite>)/g;
    for (const m of text.matchAll(re)) {
      const attrs = attrsOf(m[1] ?? '');
      const key = attrs.name ?? '';
      const s = suites.get(key) ?? { name: key, attrs: { name: key, tests: '0', failures: '0', errors: '0', time: '0' }, body: [] };
      for (const a of ['tests', 'failures', 'errors', 'skipped']) {
        if (attrs[a] !== undefined || s.attrs[a] !== undefined) s.attrs[a] = String(num(s.attrs[a]) + num(attrs[a]));
      }
      s.attrs.time = (num(s.attrs.time) + num(attrs.time)).toFixed(3);
      const body = (m[3] ?? '').replace(/^\n+|\s+$/g, '');
      if (body) s.body.push(body);
      suites.set(key, s);
    }
  }
  let tests = 0;
  let failures = 0;
  let errors = 0;
  let time = 0;
  const out = ['<?xml version="1.0" encoding="UTF-8"?>'];
  const inner: string[] = [];
  for (const s of suites.values()) {
    tests += num(s.attrs.tests);
    failures += num(s.attrs.failures);
    errors += num(s.attrs.errors);
    time += num(s.attrs.time);
    const attrs = Object.entries(s.attrs)
      .map(([k, v]) => `${k}="${v}"`)
      .join(' ');
    inner.push(`  <testsuite ${attrs}>`, ...s.body, '  </testsuite>');
  }
  out.push(`<testsuites name="rootprobe" tests="${tests}" failures="${failures}" errors="${errors}" time="${time.toFixed(3)}">`);
  out.push(...inner, '</testsuites>', '');
  return out.join('\n');
}
