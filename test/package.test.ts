/**
 * The package as a user gets it: `npm pack` (which runs `prepare`, the build into dist/), the
 * tarball installed into an empty project, then used from plain JavaScript (a scenario of its
 * own booted with boot()), from TypeScript (types checked by tsc --noEmit, and a .ts scenario
 * loaded by the compiled CLI through tsx's loader) and through its CLI (`list`, and `run
 * switch_root`, whose guest scripts, probe source and recipes come from dist/).
 */
import { expect } from 'chai';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ROOT, run, type Ran } from './support/cli.ts';

const TSC = path.join(ROOT, 'node_modules/typescript/bin/tsc');

function ok(r: Ran, what: string): Ran {
  expect(r.code, `${what}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`).to.equal(0);
  return r;
}

describe('the npm package', function () {
  this.timeout(900_000);
  let work: string;
  let project: string;
  let tarball: string;
  let bin: string;
  let files: string[];

  before(async () => {
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'rootprobe-package-'));
    const packed = ok(await run('npm', ['pack', '--json', '--pack-destination', work], { cwd: ROOT }), 'npm pack');
    const info = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as Array<{ filename: string; files: Array<{ path: string }> }>;
    tarball = path.join(work, info[0].filename);
    files = info[0].files.map((f) => f.path);
    project = path.join(work, 'project');
    await fs.mkdir(project);
    await fs.writeFile(path.join(project, 'package.json'), JSON.stringify({ name: 'user-project', private: true, type: 'module' }));
    ok(
      await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball], { cwd: project }),
      'npm install of the tarball',
    );
    bin = path.join(project, 'node_modules/rootprobe/bin/rootprobe.js');
  });

  after(async () => {
    if (work) await fs.rm(work, { recursive: true, force: true });
  });

  it('ships the compiled tree and the guest files, but no sources, tests or fixtures', () => {
    expect(files).to.include.members([
      'bin/rootprobe.js',
      'dist/harness/index.js',
      'dist/harness/index.d.ts',
      'dist/harness/cli/main.js',
      'dist/harness/guest/probe.c',
      'dist/harness/guest/lib.sh',
      'dist/harness/external/guest/init.sh',
      'dist/scenarios/switch_root/scenario.js',
      'dist/scenarios/switch_root/init.sh',
      'dist/scenarios/lib/sleeper.c',
      'dist/scenarios/pivot_root/nochdir.c',
      'dist/kernels/recipes/base.config',
      'dist/kernels/recipes/arch/arm64.config',
      'dist/kernels/recipes/nonroot-6.1/recipe.json',
      // zod bundled into one module (start-up), with its licence
      'dist/vendor/zod.js',
      'dist/vendor/zod.LICENSE',
      'package.json',
    ]);
    expect(files.filter((f) => f.startsWith('test/') || f.includes('fixtures'))).to.deep.equal([]);
    expect(files.filter((f) => /\.ts$/.test(f) && !f.endsWith('.d.ts'))).to.deep.equal([]);
  });

  it('runs its CLI from the compiled tree, with no TypeScript loader', async () => {
    const list = ok(await run(process.execPath, [bin, 'list'], { cwd: project }), 'rootprobe list');
    expect(list.stdout).to.match(/^switch_root\s/m);
    expect(list.stdout).to.match(/^loop_root_shutdown_holder\s/m);
    // npx finds the installed bin the way a user runs it
    const npx = ok(await run('npx', ['--no-install', 'rootprobe', 'list'], { cwd: project }), 'npx rootprobe list');
    expect(npx.stdout).to.equal(list.stdout);
    // bad input is still exit 2 before anything boots
    const bad = await run(process.execPath, [bin, 'run', 'no_such_scenario'], { cwd: project });
    expect(bad.code).to.equal(2);
    expect(bad.stderr).to.include('unknown scenario: no_such_scenario');
  });

  it("lists the built-in scenarios from the build's index as the sources list them, and not once a module changed", async () => {
    const installed = path.join(project, 'node_modules/rootprobe/dist/scenarios');
    const index = JSON.parse(await fs.readFile(path.join(installed, 'builtin-index.json'), 'utf8')) as {
      files: Record<string, string>;
      scenarios: Array<{ name: string }>;
    };
    expect(Object.keys(index.files)).to.include('switch_root/scenario.js');
    const fromSources = ok(await run(process.execPath, [path.join(ROOT, 'bin/rootprobe.js'), 'list'], { cwd: ROOT }), 'list (sources)');
    const fromIndex = ok(await run(process.execPath, [bin, 'list'], { cwd: project }), 'list (package)');
    expect(fromIndex.stdout).to.equal(fromSources.stdout);
    expect(index.scenarios.map((s) => s.name)).to.deep.equal(
      fromSources.stdout
        .trim()
        .split('\n')
        .map((l) => l.split(/\s+/)[0]),
    );
    // A module edited in place (same size: one letter): its description is read from the module, not the index.
    const file = path.join(installed, 'switch_root/scenario.js');
    const text = await fs.readFile(file, 'utf8');
    const edited = text.replace(/description:\s*['"`](.)/, (m, c: string) => m.slice(0, -1) + (c === 'Q' ? 'R' : 'Q'));
    expect(edited).to.not.equal(text);
    expect(edited.length).to.equal(text.length);
    await fs.writeFile(file, edited);
    try {
      const changed = ok(await run(process.execPath, [bin, 'list'], { cwd: project }), 'list (edited module)');
      expect(changed.stdout).to.not.equal(fromIndex.stdout);
      expect(changed.stdout.split('\n').filter((l, i) => l !== fromIndex.stdout.split('\n')[i])).to.have.length(1);
    } finally {
      await fs.writeFile(file, text);
    }
  });

  it('type-checks a TypeScript user of the package with tsc --noEmit, and catches a wrong type', async () => {
    const dir = path.join(project, 'ts');
    await fs.mkdir(path.join(dir, 'scenarios'), { recursive: true });
    await fs.writeFile(
      path.join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          noEmit: true,
          skipLibCheck: false,
        },
        include: ['*.ts', 'scenarios/*.ts'],
      }),
    );
    const good = `import { boot, scenario, type RunRecord, type Scenario } from 'rootprobe';
export const sc: Scenario = scenario({
  name: 'typed_user',
  description: 'a TypeScript user scenario',
  features: ['initrd', 'proc', 'serial'],
  initramfs(t) { t.file('/init', '#!/bin/sh\\n. /.rootprobe/lib.sh\\nmount -t proc proc /proc\\nprobe one\\nrp_finish\\n', 0o755); },
  stages: ['one'],
  check({ stage, expect }) { expect(stage('one')).to.have.mount('/').of.type('rootfs'); },
}, import.meta);
export async function go(): Promise<string> {
  const r: RunRecord = await boot(sc, { kernel: 'debian/bookworm' });
  return r.outcome;
}
`;
    await fs.writeFile(path.join(dir, 'scenarios/typed.ts'), good);
    await fs.writeFile(path.join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
    ok(await run(process.execPath, [TSC, '-p', dir], { cwd: dir }), 'tsc --noEmit on a correct user');
    // a mistake the types must catch: boot() takes a scenario and an options object
    await fs.writeFile(path.join(dir, 'wrong.ts'), `import { boot } from 'rootprobe';\nawait boot('switch_root', { kernel: 6 });\n`);
    const wrong = await run(process.execPath, [TSC, '-p', dir], { cwd: dir });
    expect(wrong.code).to.not.equal(0);
    expect(wrong.stdout).to.match(/wrong\.ts\(2,\d+\): error TS2345/);
    await fs.rm(path.join(dir, 'wrong.ts'));
    // the compiled CLI loads the .ts scenario (tsx's loader, registered for it)
    const list = ok(
      await run(process.execPath, [bin, 'list', '--scenarios', path.join(dir, 'scenarios')], { cwd: dir }),
      'list --scenarios',
    );
    expect(list.stdout).to.match(/^typed_user\s/m);
  });

  it('boots a plain-JavaScript scenario with boot() from the installed package @boot', async () => {
    const dir = path.join(project, 'js');
    await fs.mkdir(dir);
    await fs.writeFile(
      path.join(dir, 'init.sh'),
      '#!/bin/sh\n. /.rootprobe/lib.sh\nmount -t proc proc /proc\nmount -t devtmpfs devtmpfs /dev\nprobe before\nmkdir -p /scratch\nmount -t tmpfs scratch /scratch\nprobe after\nrp_finish\n',
    );
    await fs.writeFile(
      path.join(dir, 'main.js'),
      `import { boot, scenario } from 'rootprobe';
const sc = scenario({
  name: 'plain_js',
  description: 'a scenario in plain JavaScript',
  features: ['initrd', 'proc', 'devtmpfs', 'tmpfs', 'serial'],
  initramfs(t, ctx) { t.script('/init', ctx.here('init.sh')); },
  stages: ['before', 'after'],
  check({ stage, expect }) {
    expect(stage('before')).to.not.have.mount('/scratch');
    expect(stage('after')).to.have.mount('/scratch').of.type('tmpfs');
  },
}, import.meta);
const run = await boot(sc, { kernel: 'debian/bookworm', artifactsRoot: 'artifacts' });
console.log(JSON.stringify({ outcome: run.outcome, message: run.message, stages: run.stagesReported, file: sc.file }));
`,
    );
    const r = ok(await run(process.execPath, ['main.js'], { cwd: dir }), 'node main.js');
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { outcome: string; message?: string; stages: string[]; file: string };
    expect(out.outcome, out.message).to.equal('passed');
    expect(out.stages).to.deep.equal(['before', 'after', 'done']);
    expect(out.file).to.equal(path.join(dir, 'main.js'));
  });

  it('runs the built-in switch_root through the installed CLI @boot', async () => {
    const r = await run(process.execPath, [bin, 'run', 'switch_root', '--jobs', '1', '--json', 'r.json'], {
      cwd: project,
      env: { ...process.env, CI: '1' },
    });
    expect(r.code, r.stdout + r.stderr).to.equal(0);
    expect(r.stdout).to.match(/PASS\s+switch_root/);
    const rep = JSON.parse(await fs.readFile(path.join(project, 'r.json'), 'utf8')) as {
      runs: Array<{ outcome: string; stagesReported: string[] }>;
    };
    expect(rep.runs[0].stagesReported).to.deep.equal(['initramfs', 'realroot', 'done']);
  });
});
