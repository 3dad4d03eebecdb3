/**
 * Setup and API gaps of issue 13 (items 9-11): importTar through the package's exports, a
 * scenario named twice runs once with a note, and the doctor checks what every provider and
 * feature declares (harness/host.ts), which is what the providers check too.
 */
import { expect } from 'chai';
import { promises as fs, readdirSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { hostNeeds, requireFor } from '../harness/host.ts';
import { SetupError } from '../harness/errors.ts';
import { cli, run, ROOT, BIN } from './support/cli.ts';

describe('the package exports importTar', () => {
  it('import { importTar } from "rootprobe" works in a consumer package and imports a GNU tar archive', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'exports-test-'));
    try {
      await fs.mkdir(path.join(dir, 'node_modules'));
      await fs.symlink(ROOT, path.join(dir, 'node_modules', 'rootprobe'));
      await fs.writeFile(path.join(dir, 'package.json'), '{"type":"module"}');
      await fs.mkdir(path.join(dir, 'src'));
      await fs.writeFile(path.join(dir, 'src', 'hello'), 'hello\n');
      await run('tar', ['-C', path.join(dir, 'src'), '-cf', path.join(dir, 'root.tar'), '.']);
      await fs.writeFile(
        path.join(dir, 'use.ts'),
        `import { importTar, ImageTree } from 'rootprobe';\n` +
          `const t = new ImageTree('x');\n` +
          `const s = await importTar(t, 'root.tar');\n` +
          `console.log(JSON.stringify({ files: s.files, paths: (await t.list()).map((e) => e.path) }));\n`,
      );
      // tsx as the consumer's own dev dependency would be: a link to ours.
      await fs.symlink(path.join(ROOT, 'node_modules', 'tsx'), path.join(dir, 'node_modules', 'tsx'));
      const r = await run(process.execPath, ['--import', 'tsx', 'use.ts'], { cwd: dir });
      expect(r.code, r.stderr).to.equal(0);
      const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
      expect(out.files).to.equal(1);
      expect(out.paths).to.include('/hello');
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});

describe('doctor: one list of what providers and features need', () => {
  it('a source build needs libelf-dev, flex, bison, bc, perl and tar, and the doctor reports each', async () => {
    const build = hostNeeds('build').map((n) => n.debianPackage);
    expect(build).to.include.members(['libelf-dev', 'flex', 'bison', 'bc', 'perl', 'tar', 'make', 'gcc', 'patch']);
    const r = await cli(['doctor']);
    for (const n of hostNeeds()) expect(r.stdout, n.name).to.include(n.name);
  });

  it('with flex, bison and bc out of PATH: the doctor says MISSING with the package and who needs it (exit 2), and a build stops naming them all', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'doctor-test-'));
    try {
      const bin = path.join(dir, 'bin');
      await fs.mkdir(bin);
      const hidden = new Set(['flex', 'bison', 'bc']);
      for (const d of ['/usr/local/bin', '/usr/bin', '/bin']) {
        for (const n of (() => {
          try {
            return readdirSync(d);
          } catch {
            return [];
          }
        })()) {
          if (hidden.has(n)) continue;
          await fs.symlink(path.join(d, n), path.join(bin, n)).catch(() => {});
        }
      }
      const r = await run(process.execPath, [BIN, 'doctor'], { env: { ...process.env, PATH: bin } });
      expect(r.code).to.equal(2);
      for (const n of hidden) expect(r.stdout).to.match(new RegExp(`^${n}\\s+MISSING \\(Debian package ${n}; for build\\)`, 'm'));
      expect(r.stdout).to.match(/missing: flex bison bc/);
      const saved = process.env.PATH;
      process.env.PATH = bin;
      try {
        expect(() => requireFor('build', 'to build kernels from source')).to.throw(
          SetupError,
          /flex \(Debian package flex\), bison \(Debian package bison\), bc \(Debian package bc\) are not installed/,
        );
      } finally {
        process.env.PATH = saved;
      }
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it('.ci/run sets up through the doctor, with no package list of its own', async () => {
    const text = await fs.readFile(path.join(ROOT, '.ci/run'), 'utf8');
    expect(text).to.match(/npx rootprobe doctor --install/);
    expect(text).to.not.match(/apt-get install/);
  });
});

describe('a scenario named twice @boot', function () {
  this.timeout(300_000);
  it('runs once, with a note', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'dup-test-'));
    try {
      const r = await cli(
        ['run', 'switch_root', 'switch_root', '--jobs', '1', '--json', path.join(dir, 'r.json'), '--artifacts', path.join(dir, 'a')],
        { env: { TMPDIR: dir } },
      );
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stderr).to.include('note: scenario switch_root is named 2 times; it runs once');
      const rep = JSON.parse(await fs.readFile(path.join(dir, 'r.json'), 'utf8'));
      expect(rep.runs).to.have.length(1);
      expect(r.stdout).to.match(/1 passed, 0 failed/);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
