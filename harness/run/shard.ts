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
