/**
 * The GitHub Action's scripts (.github/action/), run here the way action.yml runs them there:
 * the KVM step on this machine (which says what it found and never fails the job), the run
 * step with the action's inputs as environment variables on the compiled tree, and the job
 * summary written from the real report of that run (passes, an assertion failure, a panic).
 */
import { expect } from 'chai';
import { existsSync, promises as fs, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ROOT, run, type Ran } from './support/cli.ts';

const ACTION = path.join(ROOT, '.github/action');

function out(r: Ran): string {
  return `--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

describe('the GitHub Action', function () {
  this.timeout(900_000);
  let work: string;

  before(async () => {
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'rootprobe-action-'));
    // the action runs the compiled tree (its install step's npm ci builds it by prepare)
    const b = await run(process.execPath, [path.join(ROOT, 'scripts/build.mjs')]);
    expect(b.code, out(b)).to.equal(0);
  });

  after(async () => {
    if (work) await fs.rm(work, { recursive: true, force: true });
  });

  it('action.yml runs the scripts that are here, passing every input through the environment', () => {
    const yml = readFileSync(path.join(ROOT, 'action.yml'), 'utf8');
    expect(yml).to.match(/using: composite/);
    for (const m of yml.matchAll(/\$GITHUB_ACTION_PATH\/([^"\s]+)/g)) expect(existsSync(path.join(ROOT, m[1])), m[1]).to.equal(true);
    const inputs = [...yml.matchAll(/^ {2}([a-z-]+):\n {4}description:/gm)].map((m) => m[1]);
    expect(inputs).to.include.members(['scenarios', 'kernels', 'shard', 'scenarios-folder']);
    // inputs reach shell only as environment variables, never pasted into a run: script
    for (const block of yml.split(/\n\s+- /)) {
      const script = /run: (?:\|\n)?([\s\S]*)$/.exec(block)?.[1] ?? '';
      expect(script, block).to.not.match(/\$\{\{\s*inputs\./);
    }
    for (const i of ['scenarios', 'kernels', 'shard', 'scenarios-folder', 'args']) {
      expect(yml).to.include(`INPUT_${i.toUpperCase().replace('-', '_')}: \${{ inputs.${i} }}`);
    }
  });

  it('the KVM step says what it found on this machine and goes on', async () => {
    const here = await run('bash', [path.join(ACTION, 'kvm.sh'), 'debian/bookworm'], { env: { ...process.env, ROOTPROBE_DIST: '1' } });
    expect(here.code, out(here)).to.equal(0);
    const last = here.stdout.trim().split('\n').pop()!;
    if (existsSync('/dev/kvm')) {
      // rootprobe's probe boot decides; the step reports its verdict as it is
      expect(last).to.match(/^kvm: (no usable KVM: tcg: |KVM works: kvm: )/);
    } else {
      expect(last).to.match(/^kvm: no \/dev\/kvm on this runner: .*TCG/);
    }
    const none = await run('bash', [path.join(ACTION, 'kvm.sh')], {
      env: { ...process.env, ROOTPROBE_KVM_DEVICE: path.join(work, 'no-kvm') },
    });
    expect(none.code, out(none)).to.equal(0);
    expect(none.stdout).to.include(`kvm: no ${path.join(work, 'no-kvm')} on this runner: rootprobe runs the guests under TCG`);
  });

  it('the run step runs the inputs, and the summary shows the verdict table and each failure from its real report @boot', async () => {
    const reports = path.join(work, 'reports');
    const artifacts = path.join(work, 'artifacts');
    const r = await run('bash', [path.join(ACTION, 'run.sh')], {
      cwd: ROOT,
      env: {
        ...process.env,
        CI: '1',
        ROOTPROBE_DIST: '1',
        ROOTPROBE_BIN: path.join(ROOT, 'bin/rootprobe.js'),
        ROOTPROBE_REPORTS: reports,
        ROOTPROBE_ARTIFACTS: artifacts,
        INPUT_SCENARIOS: 'switch_root\nbroken-assertion broken-panic',
        INPUT_KERNELS: 'debian/bookworm',
        INPUT_SHARD: '',
        INPUT_SCENARIOS_FOLDER: 'test/fixtures/scenarios/broken\n',
        INPUT_ARGS: '--jobs 1',
      },
    });
    expect(r.code, out(r)).to.equal(1); // two runs did not pass
    expect(r.stdout).to.include(
      'rootprobe run switch_root broken-assertion broken-panic --kernel debian/bookworm --scenarios test/fixtures/scenarios/broken --jobs 1',
    );
    for (const f of ['report.json', 'junit.xml', 'kcidb.json']) expect(existsSync(path.join(reports, f)), f).to.equal(true);
    const report = JSON.parse(readFileSync(path.join(reports, 'report.json'), 'utf8')) as {
      runs: Array<{ scenario: string; outcome: string; message?: string; artifacts?: { dir: string } }>;
    };
    const by = Object.fromEntries(report.runs.map((x) => [x.scenario, x]));
    expect(by.switch_root.outcome).to.equal('passed');
    expect(by['broken-assertion'].outcome).to.equal('failed');
    expect(by['broken-panic'].outcome).to.equal('panic');
    // the KCIDB file of the same run: the failed assertion's stage fails, the panic's missing one too
    const kcidb = JSON.parse(readFileSync(path.join(reports, 'kcidb.json'), 'utf8')) as { tests: Array<{ path: string; status: string }> };
    const status = Object.fromEntries(kcidb.tests.map((t) => [t.path, t.status]));
    expect(status).to.include({
      'rootprobe.switch_root': 'PASS',
      'rootprobe.switch_root.realroot': 'PASS',
      'rootprobe.broken-assertion': 'FAIL',
      'rootprobe.broken-assertion.initramfs': 'FAIL',
      'rootprobe.broken-panic': 'FAIL',
      'rootprobe.broken-panic.initramfs': 'PASS',
      'rootprobe.broken-panic.done': 'FAIL',
    });
    // only the runs that did not pass leave a folder to upload
    expect((await fs.readdir(artifacts)).sort()).to.deep.equal(['broken-assertion--debian_bookworm', 'broken-panic--debian_bookworm']);

    const summaryFile = path.join(work, 'summary.md');
    await fs.writeFile(summaryFile, '# earlier step\n');
    const s = await run(process.execPath, [path.join(ACTION, 'summary.mjs'), path.join(reports, 'report.json'), 'rootprobe 1/1'], {
      env: { ...process.env, GITHUB_STEP_SUMMARY: summaryFile },
    });
    expect(s.code, out(s)).to.equal(0);
    const md = readFileSync(summaryFile, 'utf8');
    expect(md.startsWith('# earlier step\n## rootprobe 1/1\n')).to.equal(true); // appended, as GitHub wants
    expect(md).to.include('**1 passed, 2 did not**');
    expect(md).to.include('| scenario | debian/bookworm |');
    expect(md).to.match(/^\| `switch_root` \| ✅ pass \d+\.\d s \|$/m);
    expect(md).to.match(/^\| `broken-assertion` \| ❌ FAIL \d+\.\d s \|$/m);
    expect(md).to.match(/^\| `broken-panic` \| 💥 PANIC \d+\.\d s \|$/m);
    for (const name of ['broken-assertion', 'broken-panic']) {
      const msg = by[name].message!;
      expect(md).to.include(`\`${name}\` on \`debian/bookworm\``);
      expect(md).to.include(msg.split('\n')[0]);
      expect(md).to.include(by[name].artifacts!.dir);
    }
    expect(md).to.not.match(/### .*`switch_root`/);

    // no report (the run never started): said in the summary, and a failed step
    const none = await run(process.execPath, [path.join(ACTION, 'summary.mjs'), path.join(work, 'nothing.json')], {
      env: { ...process.env, GITHUB_STEP_SUMMARY: summaryFile },
    });
    expect(none.code).to.equal(1);
    expect(readFileSync(summaryFile, 'utf8')).to.include('No report: ');
  });
});
