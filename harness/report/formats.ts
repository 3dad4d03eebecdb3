/**
 * Machine-readable reports of a matrix run: JSON (everything, including the stages'
 * readback), JUnit XML (one testcase per scenario x kernel) and TAP version 13.
 */
import type { RunRecord } from '../run/run-scenario.ts';
import { DEFAULT_ARCH } from '../arch/index.ts';

export interface MatrixReport {
  tool: 'rootprobe';
  version: string;
  startedAt: string;
  durationMs: number;
  accel: string;
  accelReason: string;
  host: { cpus: number; node: string };
  summary: Record<string, number>;
  runs: RunRecord[];
}

export function summarize(runs: RunRecord[]): Record<string, number> {
  const s: Record<string, number> = {
    total: runs.length,
    passed: 0,
    failed: 0,
    panic: 0,
    timeout: 0,
    'missing-stage': 0,
    error: 0,
    skipped: 0,
  };
  for (const r of runs) s[r.outcome] = (s[r.outcome] ?? 0) + 1;
  return s;
}

export function toJson(report: MatrixReport): string {
  return JSON.stringify(report, null, 1) + '\n';
}

function xml(s: string): string {
  // Characters XML 1.0 cannot carry at all are dropped (console text can hold anything).
  return s
    .replace(/[^\x09\x0A\x0D\x20-\uD7FF\uE000-\uFFFD]/gu, '')
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;');
}

export function caseName(r: RunRecord): string {
  return `${r.scenario} [${r.kernel}]`;
}

function failureBody(r: RunRecord): string {
  const parts = [r.message ?? ''];
  if (r.consoleTail.length) parts.push('', 'last console lines:', ...r.consoleTail.map((l) => `  ${l}`));
  if (r.artifacts) parts.push('', `artifacts: ${r.artifacts.dir}`);
  parts.push(`rerun: ${r.rerun}`);
  return parts.join('\n');
}

export function toJUnit(report: MatrixReport): string {
  const bySuite = new Map<string, RunRecord[]>();
  for (const r of report.runs) {
    const list = bySuite.get(r.kernel) ?? [];
    list.push(r);
    bySuite.set(r.kernel, list);
  }
  const out = ['<?xml version="1.0" encoding="UTF-8"?>'];
  const s = report.summary;
  const failures = s.failed;
  const skipped = s.skipped ?? 0;
  const errors = s.total - s.passed - s.failed - skipped;
  out.push(
    `<testsuites name="rootprobe" tests="${s.total}" failures="${failures}" errors="${errors}" skipped="${skipped}" time="${(report.durationMs / 1000).toFixed(3)}">`,
  );
  for (const [kernel, runs] of bySuite) {
    const f = runs.filter((r) => r.outcome === 'failed').length;
    const sk = runs.filter((r) => r.outcome === 'skipped').length;
    const e = runs.filter((r) => r.outcome !== 'failed' && r.outcome !== 'passed' && r.outcome !== 'skipped').length;
    const t = runs.reduce((a, r) => a + r.durationMs, 0) / 1000;
    out.push(
      `  <testsuite name="${xml(kernel)}" tests="${runs.length}" failures="${f}" errors="${e}" skipped="${sk}" time="${t.toFixed(3)}">`,
    );
    for (const r of runs) {
      out.push(
        `    <testcase classname="rootprobe.${xml(r.kernel)}" name="${xml(caseName(r))}" time="${(r.durationMs / 1000).toFixed(3)}">`,
      );
      if (r.outcome === 'skipped') {
        // Not booted: the scenario does not apply to this kernel (its skipIf said why).
        out.push(`      <skipped message="${xml(firstLine(r.message))}"/>`);
      } else if (r.outcome === 'failed') {
        out.push(`      <failure type="failed" message="${xml(firstLine(r.message))}">${xml(failureBody(r))}</failure>`);
      } else if (r.outcome !== 'passed') {
        out.push(`      <error type="${r.outcome}" message="${xml(firstLine(r.message))}">${xml(failureBody(r))}</error>`);
      }
      const attempts = (r.attempts ?? []).map((a, n) => `attempt ${n + 1}: ${a.outcome}${a.message ? ` - ${firstLine(a.message)}` : ''}`);
      const props = [
        `accel=${r.accel}`,
        `arch=${r.arch ?? DEFAULT_ARCH}`,
        `firmware=${r.firmware ?? 'bios'}${r.boot ? ` boot=${r.boot}` : ''}`,
        `release=${r.kernelRelease}`,
        ...(r.flaky ? ['flaky: the attempts disagreed'] : []),
        ...attempts,
        ...r.behaviours.map((b) => `behaviour: ${b}`),
        ...r.evidence,
      ];
      out.push(`      <system-out>${xml(props.join('\n'))}</system-out>`);
      out.push('    </testcase>');
    }
    out.push('  </testsuite>');
  }
  out.push('</testsuites>', '');
  return out.join('\n');
}

function firstLine(s: string | undefined): string {
  return (s ?? '').split('\n')[0].slice(0, 500);
}

export function toTap(report: MatrixReport): string {
  const out = ['TAP version 13', `1..${report.runs.length}`];
  report.runs.forEach((r, i) => {
    const skipped = r.outcome === 'skipped';
    const ok = r.outcome === 'passed' || skipped;
    // A skip is `ok ... # SKIP reason` (TAP's directive): not a pass, not a failure.
    const note = skipped
      ? ` # SKIP ${firstLine(r.message).replaceAll('#', '\\#')}`
      : ok
        ? r.flaky
          ? ` # flaky: passed on attempt ${r.attempts?.length}`
          : ''
        : ` # ${r.outcome}`;
    out.push(`${ok ? 'ok' : 'not ok'} ${i + 1} - ${caseName(r)}${note}`);
    const y: string[] = [
      `outcome: ${r.outcome}`,
      `duration_ms: ${r.durationMs}`,
      `accel: ${r.accel}`,
      `arch: ${r.arch ?? DEFAULT_ARCH}`,
      `firmware: ${r.firmware ?? 'bios'}${r.boot ? ` via ${r.boot}` : ''}`,
    ];
    if (r.message) y.push('message: |', ...r.message.split('\n').map((l) => `  ${l}`));
    if (r.behaviours.length) y.push('behaviours:', ...r.behaviours.map((b) => `  - ${JSON.stringify(b)}`));
    if (r.attempts)
      y.push('attempts:', ...r.attempts.map((a) => `  - ${JSON.stringify(a.outcome + (a.message ? `: ${firstLine(a.message)}` : ''))}`));
    if (r.artifacts) y.push(`artifacts: ${JSON.stringify(r.artifacts.dir)}`);
    if (!ok) y.push(`rerun: ${JSON.stringify(r.rerun)}`);
    out.push('  ---', ...y.map((l) => `  ${l}`), '  ...');
  });
  return out.join('\n') + '\n';
}
