#!/usr/bin/env node
// The action's job summary: reads rootprobe's JSON report and appends Markdown to
// $GITHUB_STEP_SUMMARY (or prints it when that is not set): the counts, the verdict table
// (a row per scenario, a column per kernel) and, for each run that did not pass, its
// message, the last console lines, where its artifacts are and how to rerun it.
//
//   summary.mjs REPORT.json [TITLE]
//
// Plain JavaScript with no imports from rootprobe, so it runs even when the run failed to
// start (a missing report is said in the summary, and is exit 1).
import { appendFileSync, readFileSync } from 'node:fs';

const [file, title = 'rootprobe'] = process.argv.slice(2);
const ICON = {
  passed: '✅ pass',
  failed: '❌ FAIL',
  panic: '💥 PANIC',
  timeout: '⏱️ TIMEOUT',
  'missing-stage': '❓ MISSING STAGE',
  error: '⚠️ ERROR',
};

function cellText(s) {
  // a table cell: no pipes, no line breaks
  return String(s).replaceAll('|', '\\|').replace(/\r?\n/g, ' ');
}

function fence(text) {
  const longest = Math.max(2, ...[...text.matchAll(/`+/g)].map((m) => m[0].length));
  const f = '`'.repeat(longest + 1);
  return `${f}\n${text}\n${f}`;
}

export function summaryMarkdown(report, heading = 'rootprobe') {
  const runs = report.runs ?? [];
  const s = report.summary ?? {};
  const out = [`## ${heading}`, ''];
  const failed = runs.filter((r) => r.outcome !== 'passed');
  const flaky = runs.filter((r) => r.flaky);
  out.push(
    `**${s.passed ?? 0} passed, ${(s.total ?? runs.length) - (s.passed ?? 0)} did not** in ${((report.durationMs ?? 0) / 1000).toFixed(1)} s` +
      `${flaky.length ? `, ${flaky.length} flaky` : ''} · accel ${report.accel} (${cellText(report.accelReason ?? '')}) · rootprobe ${report.version}`,
    '',
  );
  if (runs.length === 0) {
    out.push('No runs (an empty shard, or nothing matched).', '');
    return out.join('\n');
  }
  const scenarios = [...new Set(runs.map((r) => r.scenario))];
  const kernels = [...new Set(runs.map((r) => r.kernel))];
  out.push(`| scenario | ${kernels.map(cellText).join(' | ')} |`, `|---|${kernels.map(() => '---|').join('')}`);
  for (const sc of scenarios) {
    const cells = kernels.map((k) => {
      const r = runs.find((x) => x.scenario === sc && x.kernel === k);
      if (!r) return '-';
      return `${ICON[r.outcome] ?? r.outcome}${r.flaky ? ' (flaky)' : ''} ${(r.durationMs / 1000).toFixed(1)} s`;
    });
    out.push(`| \`${cellText(sc)}\` | ${cells.join(' | ')} |`);
  }
  out.push('');
  for (const r of failed) {
    out.push(
      `### ${ICON[r.outcome] ?? r.outcome}: \`${r.scenario}\` on \`${r.kernel}\` (${r.kernelRelease || 'no release'}, ${r.accel})`,
      '',
    );
    out.push(fence(r.message ?? r.outcome), '');
    if (r.consoleTail?.length) {
      out.push('<details><summary>last console lines</summary>', '', fence(r.consoleTail.join('\n')), '', '</details>', '');
    }
    if (r.attempts?.length > 1) out.push(`attempts: ${r.attempts.map((a) => a.outcome).join(', ')}`, '');
    if (r.artifacts) out.push(`artifacts: \`${r.artifacts.dir}\` (uploaded with this job's artifacts)`, '');
    out.push(`rerun: \`${r.rerun}\``, '');
  }
  for (const r of flaky.filter((x) => x.outcome === 'passed')) {
    out.push(`### flaky: \`${r.scenario}\` on \`${r.kernel}\` passed on attempt ${r.attempts.length}`, '');
    out.push(...r.attempts.map((a, i) => `${i + 1}. ${a.outcome}${a.message ? `: ${cellText(a.message.split('\n')[0])}` : ''}`), '');
  }
  return out.join('\n');
}

function write(md) {
  if (process.env.GITHUB_STEP_SUMMARY) appendFileSync(process.env.GITHUB_STEP_SUMMARY, md + '\n');
  else process.stdout.write(md + '\n');
}

if (!file) {
  process.stderr.write('usage: summary.mjs REPORT.json [TITLE]\n');
  process.exit(2);
}
let report;
try {
  report = JSON.parse(readFileSync(file, 'utf8'));
} catch (e) {
  write(
    `## ${title}\n\nNo report: ${file} could not be read (${e.code ?? e.message}). The run did not get as far as writing it; see the log of the run step.\n`,
  );
  process.exit(1);
}
write(summaryMarkdown(report, title));
