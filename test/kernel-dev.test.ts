/**
 * The kernel developer's loop on a real kernel tree: a git repository made from Debian's
 * linux-source-6.1 with a short series on top (fixtures/kernels/kernel-repo.ts), built with
 * `git:` (out of tree, incremental), every scenario booted on it, a behaviour change bisected
 * to its commit through the CLI, the user's repository left as it was, and kernel warnings
 * provoked through LKDTM failing a run that otherwise passes.
 */
import { expect } from 'chai';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolveKernel } from '../kernels/index.ts';
import { runMatrix } from '../harness/run/matrix.ts';
import { loadScenarios } from '../scenarios/index.ts';
import { kernelRepo, SERIES } from './fixtures/kernels/kernel-repo.ts';
import type { JsonReport } from '../harness/report/json.ts';
import { reportSchemaErrors } from './support/report-schema.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.join(ROOT, 'bin/rootprobe.js');
const ART = path.join(ROOT, 'rootprobe-artifacts/kernel-dev-test');

function buildInfo(vmlinuz: string): { steps: number; buildSeconds: number; git?: { commit: string; subject: string } } {
  return JSON.parse(readFileSync(path.join(path.dirname(vmlinuz), 'kernel.json'), 'utf8'));
}

/** What must not change in the user's repository: HEAD, refs, status, the index file. */
function repoState(repo: string): string {
  // GIT_OPTIONAL_LOCKS=0: `git status` must not refresh (rewrite) the index it is checking.
  const g = (...a: string[]): string =>
    execFileSync('git', ['-C', repo, ...a], { encoding: 'utf8', env: { ...process.env, GIT_OPTIONAL_LOCKS: '0' } });
  const idx = statSync(path.join(repo, '.git/index'));
  return [
    g('rev-parse', 'HEAD'),
    g('for-each-ref'),
    g('status', '--porcelain'),
    g('worktree', 'list', '--porcelain'),
    `${idx.mtimeMs} ${idx.size}`,
  ].join('\n--\n');
}

describe('kernel developers: git: kernels, bisect, kernel warnings @boot', function () {
  this.timeout(3_600_000);
  let repo: string;
  let initial: string;

  before(async () => {
    repo = await kernelRepo((m) => process.stderr.write(`kernel repo: ${m}\n`));
    initial = repoState(repo);
  });

  it('builds git:<tree>@rp-stock out of tree and boots every scenario on it', async () => {
    const spec = `git:${repo}@rp-stock`;
    const report = await runMatrix(await loadScenarios([]), [spec], { jobs: 2, artifactsRoot: ART, keep: false });
    // every scenario passes, but those that do not apply to 6.1 (retain_initrd needs 6.8), which are skipped with their reason
    const bad = report.runs.filter(
      (r) => r.outcome !== 'passed' && !(r.outcome === 'skipped' && /retain_initrd/.test(r.scenario) && /6\.8/.test(r.message ?? '')),
    );
    expect(bad.map((r) => `${r.scenario}: ${r.outcome} ${r.message ?? ''}`)).to.deep.equal([]);
    expect(report.runs.filter((r) => r.outcome === 'passed').length).to.equal(
      report.runs.length - report.runs.filter((r) => r.outcome === 'skipped').length,
    );
    const k = await resolveKernel(spec);
    expect(k.release).to.match(/^6\.1\./);
    expect(buildInfo(k.vmlinuz).git?.subject).to.match(/^Debian linux-source-6\.1 /);
  });

  it('the next commit builds incrementally: a fraction of the make steps of the first build', async () => {
    const full = buildInfo((await resolveKernel(`git:${repo}@rp-stock`)).vmlinuz);
    const next = buildInfo(
      (await resolveKernel(`git:${repo}@rp-patched`, { onProgress: (m) => process.stderr.write(`  ${m}\n`) })).vmlinuz,
    );
    process.stderr.write(
      `    full build: ${full.steps} make steps in ${full.buildSeconds} s; the next commit: ${next.steps} steps in ${next.buildSeconds} s\n`,
    );
    expect(full.steps).to.be.above(500);
    expect(next.steps)
      .to.be.above(0)
      .and.below(full.steps / 5);
    expect(next.git?.subject).to.equal(SERIES[1]);
  });

  it('rootprobe bisect names the commit that made pivot_root work from the initramfs, with the readback difference', () => {
    const json = path.join(mkdtempSync(path.join(os.tmpdir(), 'rp-bisect-')), 'bisect.json');
    const r = spawnSync(
      process.execPath,
      [
        BIN,
        'bisect',
        'pivot_einval',
        '--scenarios',
        path.join(ROOT, 'test/fixtures/scenarios/bisect'),
        '--kernel',
        `git:${repo}`,
        '--good',
        'rp-stock',
        '--bad',
        'rp-tip',
        '--json',
        json,
        '--artifacts',
        ART,
      ],
      { encoding: 'utf8', cwd: ROOT },
    );
    process.stderr.write(
      r.stderr
        .split('\n')
        .filter((l) => !/^\s+build /.test(l))
        .join('\n'),
    );
    expect(r.status, r.stderr + r.stdout).to.equal(0);
    const planted = execFileSync('git', ['-C', repo, 'rev-parse', 'rp-tip~1'], { encoding: 'utf8' }).trim();
    expect(r.stdout).to.include(`first bad commit: ${planted} ${SERIES[2]}`);
    expect(r.stdout)
      .to.match(/errno/)
      .and.match(/EINVAL/);
    // The one report shape (schemas/report.schema.json): every run in runs[], the bisect's own part in `bisect`.
    const rep = JSON.parse(readFileSync(json, 'utf8')) as JsonReport;
    expect(reportSchemaErrors(rep)).to.deep.equal([]);
    expect(rep.command).to.equal('bisect');
    const b = rep.bisect!;
    expect(b.firstBad).to.deep.equal({ commit: planted, subject: SERIES[2] });
    expect(b.steps[0]).to.include({ mark: 'good' });
    expect(b.steps[1]).to.include({ mark: 'bad' });
    expect(rep.runs).to.have.length(b.steps.reduce((n, s) => n + s.runs.length, 0));
    expect(rep.runs[b.firstBadRun!]!.outcome).to.equal('failed');
    expect(b.differences.map((d) => d.what)).to.include('var errno');
    rmSync(path.dirname(json), { recursive: true, force: true });
  });

  it("--kcidb of a run on a git: kernel carries the checkout's commit and subject", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'rp-kcidb-git-'));
    const file = path.join(dir, 'k.json');
    const r = spawnSync(
      process.execPath,
      [
        BIN,
        'run',
        'pivot_einval',
        '--scenarios',
        path.join(ROOT, 'test/fixtures/scenarios/bisect'),
        '--kernel',
        `git:${repo}@rp-stock`,
        '--kcidb',
        file,
        '--artifacts',
        ART,
      ],
      { encoding: 'utf8', cwd: ROOT },
    );
    expect(r.status, r.stderr + r.stdout).to.equal(0);
    const k = JSON.parse(readFileSync(file, 'utf8'));
    const stock = execFileSync('git', ['-C', repo, 'rev-parse', 'rp-stock'], { encoding: 'utf8' }).trim();
    expect(k.checkouts[0]).to.include({ git_commit_hash: stock });
    expect(k.checkouts[0].git_commit_name).to.match(/^Debian linux-source-6\.1 /);
    rmSync(dir, { recursive: true, force: true });
  });

  it("leaves the user's repository as it was: HEAD, refs, index, status, worktrees", () => {
    expect(repoState(repo)).to.equal(initial);
  });

  it('a kernel WARNING and BUG fail a run whose assertions all hold, naming both; allowed, it passes', async () => {
    const spec = `git:${repo}@rp-stock`; // base.config has CONFIG_LKDTM
    const [sc] = await loadScenarios([path.join(ROOT, 'test/fixtures/scenarios/kernel-warning')]).then((all) =>
      all.filter((s) => s.name === 'kernel_warning'),
    );
    const plain = await runMatrix([sc], [spec], { jobs: 1, artifactsRoot: ART, keep: false });
    const run = plain.runs[0];
    expect(run.outcome, run.message).to.equal('failed');
    expect(run.message)
      .to.match(/the kernel reported 2 bugs/)
      .and.match(/WARNING at drivers\/misc\/lkdtm\/bugs\.c:\d+ lkdtm_WARNING/)
      .and.match(/kernel BUG at drivers\/misc\/lkdtm\/bugs\.c/);
    expect(run.kernelReports?.map((k) => k.kind)).to.include.members(['warning', 'bug']);
    const allowed = await runMatrix([sc], [spec], { jobs: 1, artifactsRoot: ART, keep: false, allowKernelLog: [/lkdtm/] });
    expect(allowed.runs[0].outcome, allowed.runs[0].message).to.equal('passed');
  });
});
