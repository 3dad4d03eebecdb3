/**
 * `npm run soak -- --runs N`: runs the default matrix (every scenario on debian/bookworm, or
 * the --scenario/--kernel given) N times and counts flakes: any run whose outcome differs from
 * the first outcome of its cell. Images are built once; runs go --jobs at a time (default 2).
 *
 *   npm run soak -- --runs 100 [--jobs 2] [--scenario S]... [--kernel K]... [--out FILE]
 *
 * Writes bench/soak-results.json (per cell: outcomes counted, flakes with their messages,
 * median and slowest duration) and keeps the artifact folder of every run that did not pass
 * under rootprobe-artifacts/soak/<n>/. Exit status 0 when there was no flake, 1 otherwise.
 */
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { loadScenarios, pickScenarios } from '../scenarios/index.ts';
import { resolveKernel } from '../kernels/index.ts';
import { detectAccel } from '../harness/qemu/accel.ts';
import { runScenario, type RunRecord } from '../harness/run/run-scenario.ts';
import { prepareImages } from '../harness/run/prepare.ts';
import { pool } from '../harness/run/matrix.ts';
import { onCleanup } from '../harness/lifecycle.ts';
import { ROOT, machine, median } from './lib.ts';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '10' },
    jobs: { type: 'string', default: '2' },
    scenario: { type: 'string', multiple: true },
    kernel: { type: 'string', multiple: true },
    out: { type: 'string', default: path.join(ROOT, 'bench/soak-results.json') },
    artifacts: { type: 'string', default: 'rootprobe-artifacts/soak' },
  },
});
const runs = Number(values.runs);
const jobs = Number(values.jobs);
if (!Number.isInteger(runs) || runs < 1 || !Number.isInteger(jobs) || jobs < 1) {
  process.stderr.write('soak: --runs and --jobs take whole numbers >= 1\n');
  process.exit(2);
}
const all = await loadScenarios([]);
const scenarios = values.scenario?.length ? pickScenarios(all, values.scenario) : all;
const kernels = await Promise.all((values.kernel?.length ? values.kernel : ['debian/bookworm']).map((k) => resolveKernel(k)));
const accel = (await detectAccel(kernels[0].vmlinuz)).accel as 'kvm' | 'tcg';
const started = Date.now();
const m = machine();

const cells = scenarios.flatMap((s) => kernels.map((k) => ({ s, k, key: `${s.name}@${k.id}` })));
const images = new Map<string, Awaited<ReturnType<typeof prepareImages>>>();
for (const c of cells) images.set(c.key, await prepareImages(c.s, c.k));

interface RunNote {
  run: number;
  outcome: string;
  message?: string;
  artifacts?: string;
}
interface CellStats {
  notes: RunNote[];
  durationsMs: number[];
}
const stats = new Map<string, CellStats>(cells.map((c) => [c.key, { notes: [], durationsMs: [] }]));
/** The cell's first outcome is that of its lowest-numbered run (runs finish out of order). */
function judgeCell(v: CellStats) {
  const notes = [...v.notes].sort((a, b) => a.run - b.run);
  const first = notes[0]?.outcome;
  const outcomes: Record<string, number> = {};
  for (const x of notes) outcomes[x.outcome] = (outcomes[x.outcome] ?? 0) + 1;
  return { first, outcomes, flakes: notes.filter((x) => x.outcome !== first) };
}
// Run n of every cell goes before run n+1 of any, so a cell's first outcome is its earliest.
const work = Array.from({ length: runs }, (_, n) => cells.map((c) => ({ ...c, n }))).flat();
const abort = new AbortController();
let done = 0;

const summary = () => {
  const perCell = Object.fromEntries(
    [...stats].map(([k, v]) => [
      k,
      {
        runs: v.durationsMs.length,
        ...judgeCell(v),
        medianMs: Math.round(median(v.durationsMs)),
        slowestMs: v.durationsMs.length ? Math.max(...v.durationsMs) : null,
      },
    ]),
  );
  const flakes = [...stats.values()].reduce((a, v) => a + judgeCell(v).flakes.length, 0);
  return {
    date: new Date(started).toISOString(),
    machine: { ...m, loadavgEnd: undefined },
    accel,
    jobs,
    runsAsked: runs,
    runsDone: done,
    interrupted: abort.signal.aborted,
    durationMs: Date.now() - started,
    flakes,
    cells: perCell,
  };
};
// Synchronous, so that a summary written while the process exits is whole (an async write
// from the exit-time cleanup truncated the file and never finished).
const writeSummary = (): void => {
  writeFileSync(values.out, JSON.stringify(summary(), null, 1) + '\n');
};
const stopOnInterrupt = onCleanup(() => {
  abort.abort();
  writeSummary();
});

await pool(work, jobs, async ({ s, k, key, n }) => {
  if (abort.signal.aborted) return;
  const r: RunRecord = await runScenario(s, k, {
    accel,
    artifactsRoot: path.join(values.artifacts, String(n + 1)),
    images: images.get(key),
    signal: abort.signal,
  });
  if (abort.signal.aborted) return;
  done++;
  const st = stats.get(key)!;
  st.notes.push({ run: n + 1, outcome: r.outcome, message: r.message?.split('\n')[0], artifacts: r.artifacts?.dir });
  st.durationsMs.push(r.durationMs);
  const first = judgeCell(st).first;
  const flag = r.outcome !== first ? `  FLAKE? (first so far: ${first})` : '';
  process.stderr.write(`soak ${done}/${work.length}: ${key} run ${n + 1}: ${r.outcome} ${(r.durationMs / 1000).toFixed(1)} s${flag}\n`);
});

stopOnInterrupt();
writeSummary();
const s = summary();
for (const [k, v] of Object.entries(s.cells)) {
  process.stdout.write(
    `${k}: ${v.runs} runs, ${Object.entries(v.outcomes)
      .map(([o, c]) => `${c} ${o}`)
      .join(', ')}; ${v.flakes.length} flake(s); ` +
      `median ${(v.medianMs / 1000).toFixed(1)} s, slowest ${((v.slowestMs ?? 0) / 1000).toFixed(1)} s\n`,
  );
}
process.stdout.write(
  `${s.flakes} flake(s) in ${s.runsDone} runs, --jobs ${jobs}, ${accel}, ${(s.durationMs / 60000).toFixed(1)} min; written ${path.relative(process.cwd(), values.out)}\n`,
);
process.exitCode = s.flakes === 0 ? 0 : 1;
