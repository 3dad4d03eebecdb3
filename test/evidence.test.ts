/**
 * The evidence table: on a recorded matrix report (all scenarios on bookworm, trixie and sid,
 * one of them a panic), and through the CLI on a real boot.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { promises as fs, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SEED_CLAIMS, cell, evidenceMarkdown, runCell, type ScenarioSeeds } from '../harness/report/evidence.ts';
import type { MatrixReport } from '../harness/report/formats.ts';
import type { RunRecord } from '../harness/run/run-scenario.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const recorded = (): MatrixReport =>
  JSON.parse(
    readFileSync(path.join(root, 'test/fixtures/scenarios/loop_root_shutdown/recorded-matrix-report.json'), 'utf8'),
  ) as MatrixReport;

/** The seeds of the scenarios in the recorded report, as they were when it was recorded. */
const SCENARIOS: ScenarioSeeds[] = [
  { name: 'loop_root_shutdown', seeds: ['004'] },
  { name: 'loop_root_shutdown_holder', seeds: ['004'] },
  { name: 'nonroot_initramfs', seeds: ['002'] },
  { name: 'pivot_root', seeds: ['000', '001', '002'] },
  { name: 'switch_root', seeds: ['003', '000'] },
  { name: 'switch_root_manual', seeds: ['003', '000'] },
  { name: 'switch_root_util_linux', seeds: ['003', '000'] },
];
const NOW = new Date('2026-11-22T12:00:00Z');

/** The table's rows (lines starting with '|'), split into cells on unescaped pipes. */
function rows(md: string, heading?: string): string[][] {
  let text = md;
  if (heading) text = md.slice(md.indexOf(heading));
  const lines: string[] = [];
  for (const l of text.split('\n').slice(heading ? 1 : 0)) {
    if (l.startsWith('|')) lines.push(l);
    else if (lines.length > 0 && l.trim() === '') break;
    else if (lines.length > 0) break;
  }
  return lines.map((l) =>
    l
      .slice(1, -1)
      .split(/(?<!\\)\|/)
      .map((c) => c.trim()),
  );
}

describe('evidence table on a recorded matrix report', () => {
  const report = recorded();
  const md = evidenceMarkdown(report, SCENARIOS, { now: NOW });
  const table = rows(md);

  it('has one claim per seed of the source material, 000 to 004', () => {
    expect(SEED_CLAIMS.map((c) => c.seed)).to.deep.equal(['000', '001', '002', '003', '004']);
    for (const c of SEED_CLAIMS) {
      expect(c.file.startsWith(`${c.seed}_`)).to.equal(true);
      expect(c.mustShow.length).to.be.greaterThan(20);
    }
  });

  it('heads the table with the date, the kernels with their releases and the accelerator', () => {
    expect(md).to.match(/^- date: 2026-11-22 \(run started 2026-11-22T/m);
    expect(md).to.include('`debian/bookworm` (6.1.0-50-cloud-amd64)');
    expect(md).to.include('`debian/trixie` (6.12.107+deb13-cloud-amd64)');
    expect(md).to.include('`debian/sid` (7.2.13+deb14-cloud-amd64)');
    expect(md).to.match(/^- accelerator: tcg \(/m);
    expect(md).to.match(/^- runs: 21, passed 20, not passed 1$/m);
  });

  it("is a well-formed table: every row has the header's number of cells", () => {
    const [header, sep, ...body] = table;
    expect(header.slice(0, 3)).to.deep.equal(['seed', 'claim: what rootprobe must show', 'scenario']);
    expect(header.slice(3)).to.have.length(3);
    expect(sep.every((c) => c === '---')).to.equal(true);
    for (const r of body) expect(r, r.join(' | ')).to.have.length(header.length);
  });

  it('maps each seed to the scenarios whose seeds name it, with one row per scenario', () => {
    const body = table.slice(2);
    const bySeed = new Map<string, string[]>();
    let seed = '';
    for (const r of body) {
      if (r[0]) seed = r[0];
      bySeed.set(seed, [...(bySeed.get(seed) ?? []), r[2]]);
    }
    expect([...bySeed.keys()]).to.deep.equal(['000', '001', '002', '003', '004']);
    expect(bySeed.get('004')).to.deep.equal(['`loop_root_shutdown`', '`loop_root_shutdown_holder`']);
    expect(bySeed.get('001')).to.deep.equal(['`pivot_root`']);
    expect(bySeed.get('003')).to.include.members(['`switch_root`', '`switch_root_manual`', '`switch_root_util_linux`']);
  });

  it("shows in seed 004's rows, on every kernel, the clean images and the holder that kept the loop root busy", () => {
    const header = table[0];
    const holder = table.find((r) => r[2] === '`loop_root_shutdown_holder`')!;
    const clean = table.find((r) => r[2] === '`loop_root_shutdown`')!;
    for (let i = 3; i < header.length; i++) {
      expect(clean[i], header[i]).to.match(/^\*\*PASS\*\*/);
      expect(clean[i]).to.include('host: partition image state "clean", no needs_recovery, e2fsck -fn exit 0');
      expect(holder[i], header[i]).to.match(/^\*\*PASS\*\*/);
      expect(holder[i]).to.match(/behaviour: partition left mounted: needs_recovery set/);
      expect(holder[i]).to.match(
        /stayed busy, held by pid \d+ \(sleep\): exe \/oldroot\/bin\/busybox, cwd \/oldroot\/var\/log, fd 0 \/oldroot\/run\/initctl/,
      );
    }
    expect(holder[1], 'the claim is written once per seed').to.equal('〃');
    expect(table.find((r) => r[0] === '004')![1]).to.match(
      /^\*\*sysvinit bug #33517, 2011-2013\*\*: a clean shutdown proved from the host/,
    );
  });

  it('shows a run that did not pass with its outcome and why', () => {
    const header = table[0];
    const col = header.findIndex((h) => h.startsWith('debian/trixie'));
    const manual = table.find((r) => r[2] === '`switch_root_manual`')!;
    expect(manual[col]).to.match(/^\*\*PANIC\*\* \([\d.]+ s\)<br>the kernel panicked before any stage: Kernel panic - not syncing/);
  });

  it('says when no scenario of the run checks a seed, and lists scenarios without a seed apart', () => {
    const onlyLoop: MatrixReport = { ...report, runs: report.runs.filter((r) => r.scenario.startsWith('loop_')) };
    const m = evidenceMarkdown(onlyLoop, [{ name: 'loop_root_shutdown', seeds: ['004'] }, { name: 'loop_root_shutdown_holder' }], {
      now: NOW,
    });
    const t = rows(m);
    expect(t.find((r) => r[0] === '000')![2]).to.equal('*no scenario in this run*');
    expect(t.find((r) => r[0] === '004')![2]).to.equal('`loop_root_shutdown`');
    const loose = rows(m, '## Scenarios not tied to a seed claim');
    expect(loose.slice(2).map((r) => r[0])).to.deep.equal(['`loop_root_shutdown_holder`']);
  });

  it('escapes what would break a cell, and caps the evidence lines', () => {
    expect(cell('a|b\nc <x>')).to.equal('a\\|b<br>c &lt;x&gt;');
    const r: RunRecord = {
      ...report.runs[0],
      outcome: 'failed',
      message: 'expected | this\nsecond line',
      behaviours: [],
      evidence: Array.from({ length: 15 }, (_, i) => `line ${i} | piped`),
    };
    const c = runCell(r, 12);
    expect(c).to.match(/^\*\*FAIL\*\* \([\d.]+ s\)<br>expected \\\| this<br>• line 0 \\\| piped/);
    expect(c).to.not.include('second line');
    expect(c).to.include('• line 11');
    expect(c).to.not.include('• line 12');
    expect(c).to.include('… 3 more');
    expect(c.split(/(?<!\\)\|/)).to.have.length(1);
  });
});

describe('rootprobe run --evidence through the CLI @boot', function () {
  this.timeout(600_000);
  let dir: string;
  let code: number | null;
  let out = '';
  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rootprobe-evidence-test-'));
    code = await new Promise<number | null>((resolve, reject) => {
      const child = spawn(
        process.execPath,
        [
          path.join(root, 'bin/rootprobe.js'),
          'run',
          'loop_root_shutdown',
          '--evidence',
          path.join(dir, 'evidence.md'),
          '--artifacts',
          path.join(dir, 'art'),
        ],
        { cwd: root, env: { ...process.env, CI: '1' } },
      );
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (out += d));
      child.on('error', reject);
      child.on('close', resolve);
    });
  });
  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('writes the table with the 004 row observed on bookworm, and the other seeds marked as not run', async () => {
    expect(code, out).to.equal(0);
    const md = await fs.readFile(path.join(dir, 'evidence.md'), 'utf8');
    expect(md).to.match(/^- kernels: `debian\/bookworm` \(6\.1\.0-[^)]+\)$/m);
    const t = rows(md);
    expect(t[0][3]).to.match(/^debian\/bookworm<br>6\.1\.0-/);
    const row = t.find((r) => r[0] === '004')!;
    expect(row[2]).to.equal('`loop_root_shutdown`');
    expect(row[3]).to.match(/^\*\*PASS\*\*/);
    expect(row[3]).to.include('• host: partition image state "clean", no needs_recovery, e2fsck -fn exit 0');
    for (const s of ['000', '001', '002', '003']) expect(t.find((r) => r[0] === s)![2]).to.equal('*no scenario in this run*');
  });
});
