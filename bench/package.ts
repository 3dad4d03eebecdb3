/**
 * The bench's `startup` and `same-images` sections: rootprobe as a user installs it (the
 * `npm pack` tarball installed into an empty project) and run through that installed bin with
 * plain `node` (not npx, not tsx):
 *
 *   startup      `rootprobe list` beside `node -e 0`, interleaved, medians. Target <= 0.15 s.
 *   same-images  per scenario: `rootprobe run S` against a plain QEMU boot of the very same
 *                images, i.e. the qemu.sh that `rootprobe build S` writes (same kernel,
 *                initramfs, disks and command line; the disks restored from a pristine copy
 *                before every boot, outside the timing). Pair by pair (plain, then rootprobe),
 *                the ratio of each pair, and the median of those ratios. Target <= 1.05. Then
 *                the default suite with `--jobs 2` against every scenario's qemu.sh through two
 *                workers (the same pool shape), pair by pair. Target <= 1.03.
 */
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { ROOT, median } from './lib.ts';

export interface Timed {
  ms: number;
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Spawn to exit, output collected (so a console on stdout costs what a pipe costs). */
export function spawnTimed(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Timed> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ ms: performance.now() - t0, code, stdout, stderr }));
  });
}

async function must(p: Promise<Timed>, what: string): Promise<Timed> {
  const r = await p;
  if (r.code !== 0) throw new Error(`${what} exited ${r.code}:\n${r.stderr.slice(-2000)}`);
  return r;
}

/** npm pack of this checkout, installed into an empty project under `work`; the installed bin. */
export async function installPackage(work: string): Promise<string> {
  await fs.mkdir(work, { recursive: true });
  const packed = await must(spawnTimed('npm', ['pack', '--json', '--pack-destination', work], { cwd: ROOT }), 'npm pack');
  const [{ filename }] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as Array<{ filename: string }>;
  const project = path.join(work, 'project');
  await fs.mkdir(project, { recursive: true });
  await fs.writeFile(path.join(project, 'package.json'), JSON.stringify({ name: 'bench-user', private: true, type: 'module' }));
  await must(
    spawnTimed('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', path.join(work, filename)], { cwd: project }),
    'npm install',
  );
  return path.join(project, 'node_modules/rootprobe/bin/rootprobe.js');
}

export interface StartupResult {
  nodeMedianMs: number;
  listMedianMs: number;
  listMs: number[];
  nodeMs: number[];
}

export async function startup(bin: string, reps: number): Promise<StartupResult> {
  const nodeMs: number[] = [];
  const listMs: number[] = [];
  const cwd = path.dirname(path.dirname(path.dirname(path.dirname(bin)))); // the project
  await must(spawnTimed(process.execPath, [bin, 'list'], { cwd }), 'rootprobe list'); // warm the page cache
  for (let i = 0; i < reps; i++) {
    nodeMs.push((await must(spawnTimed(process.execPath, ['-e', '0'], { cwd }), 'node -e 0')).ms);
    listMs.push((await must(spawnTimed(process.execPath, [bin, 'list'], { cwd }), 'rootprobe list')).ms);
  }
  return { nodeMedianMs: median(nodeMs), listMedianMs: median(listMs), listMs, nodeMs };
}

interface Built {
  scenario: string;
  dir: string;
  disks: string[];
}

/** `rootprobe build S --out DIR` through the installed bin, with a pristine copy of each disk. */
async function build(bin: string, scenario: string, kernel: string, dir: string): Promise<Built> {
  await must(spawnTimed(process.execPath, [bin, 'build', scenario, '--kernel', kernel, '--out', dir]), `rootprobe build ${scenario}`);
  const manifest = JSON.parse(await fs.readFile(path.join(dir, 'build.json'), 'utf8')) as { disks: Array<{ file: string }> };
  const disks = manifest.disks.map((d) => path.join(dir, d.file));
  for (const d of disks) await fs.copyFile(d, `${d}.pristine`);
  return { scenario, dir, disks };
}

async function restore(b: Built): Promise<void> {
  for (const d of b.disks) await fs.copyFile(`${d}.pristine`, d);
}

async function plainBoot(b: Built): Promise<Timed> {
  await restore(b);
  await fs.rm(path.join(b.dir, 'result.stream'), { force: true });
  return must(spawnTimed(path.join(b.dir, 'qemu.sh'), [], { cwd: b.dir }), `qemu.sh of ${b.scenario}`);
}

export interface PairRow {
  scenario: string;
  plainMs: number[];
  rootprobeMs: number[];
  ratios: number[];
  plainMedianMs: number;
  rootprobeMedianMs: number;
  medianRatio: number;
  outcomes: string[];
}

const r3 = (x: number): number => Math.round(x * 1000) / 1000;

async function rootprobeRun(bin: string, args: string[], work: string): Promise<{ t: Timed; outcomes: string[] }> {
  const json = path.join(work, 'run.json');
  const t = await spawnTimed(process.execPath, [bin, 'run', ...args, '--json', json, '--artifacts', path.join(work, 'run-artifacts')], {
    env: { ...process.env, CI: '1' },
  });
  const rep = JSON.parse(await fs.readFile(json, 'utf8')) as { runs: Array<{ outcome: string }> };
  return { t, outcomes: rep.runs.map((r) => r.outcome) };
}

/** Per scenario, pair by pair: qemu.sh of its built images, then `rootprobe run` of it. */
export async function sameImages(
  bin: string,
  scenarios: string[],
  kernel: string,
  reps: number,
  work: string,
  log: (s: string) => void,
): Promise<{ rows: PairRow[]; suite: PairRow; built: Built[] }> {
  const built: Built[] = [];
  for (const s of scenarios) built.push(await build(bin, s, kernel, path.join(work, `build-${s}`)));
  const rows: PairRow[] = [];
  for (const b of built) {
    await rootprobeRun(bin, [b.scenario, '--kernel', kernel, '--jobs', '1'], work); // warm: images cached, accel known
    const row: PairRow = {
      scenario: b.scenario,
      plainMs: [],
      rootprobeMs: [],
      ratios: [],
      plainMedianMs: 0,
      rootprobeMedianMs: 0,
      medianRatio: 0,
      outcomes: [],
    };
    for (let i = 0; i < reps; i++) {
      const p = await plainBoot(b);
      const { t, outcomes } = await rootprobeRun(bin, [b.scenario, '--kernel', kernel, '--jobs', '1'], work);
      row.plainMs.push(Math.round(p.ms));
      row.rootprobeMs.push(Math.round(t.ms));
      row.ratios.push(r3(t.ms / p.ms));
      row.outcomes.push(...outcomes);
      log(
        `same-images ${b.scenario} #${i + 1}: qemu.sh ${(p.ms / 1000).toFixed(2)} s, rootprobe run ${(t.ms / 1000).toFixed(2)} s (${outcomes.join(',')}), ratio ${r3(t.ms / p.ms)}`,
      );
    }
    row.plainMedianMs = Math.round(median(row.plainMs));
    row.rootprobeMedianMs = Math.round(median(row.rootprobeMs));
    row.medianRatio = r3(median(row.ratios));
    rows.push(row);
  }
  // the suite at --jobs 2 against every qemu.sh through two workers
  const suite: PairRow = {
    scenario: `suite (${built.length}) --jobs 2`,
    plainMs: [],
    rootprobeMs: [],
    ratios: [],
    plainMedianMs: 0,
    rootprobeMedianMs: 0,
    medianRatio: 0,
    outcomes: [],
  };
  for (let i = 0; i < Math.max(1, Math.min(reps, 3)); i++) {
    for (const b of built) await restore(b);
    const t0 = performance.now();
    const queue = [...built];
    await Promise.all(
      [0, 1].map(async () => {
        for (let b = queue.shift(); b; b = queue.shift()) {
          await fs.rm(path.join(b.dir, 'result.stream'), { force: true });
          await must(spawnTimed(path.join(b.dir, 'qemu.sh'), [], { cwd: b.dir }), `qemu.sh of ${b.scenario}`);
        }
      }),
    );
    const plain = performance.now() - t0;
    const { t, outcomes } = await rootprobeRun(bin, [...scenarios, '--kernel', kernel, '--jobs', '2'], work);
    suite.plainMs.push(Math.round(plain));
    suite.rootprobeMs.push(Math.round(t.ms));
    suite.ratios.push(r3(t.ms / plain));
    suite.outcomes.push(...outcomes);
    log(
      `same-images suite --jobs 2 #${i + 1}: qemu.sh x${built.length} on 2 workers ${(plain / 1000).toFixed(2)} s, rootprobe run ${(t.ms / 1000).toFixed(2)} s, ratio ${r3(t.ms / plain)}`,
    );
  }
  suite.plainMedianMs = Math.round(median(suite.plainMs));
  suite.rootprobeMedianMs = Math.round(median(suite.rootprobeMs));
  suite.medianRatio = r3(median(suite.ratios));
  return { rows, suite, built };
}
