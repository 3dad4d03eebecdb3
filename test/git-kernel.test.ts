/**
 * The git: provider's parts that need no kernel build: its spec forms and errors, the
 * configuration options, what the cache key sees of a work tree, and `rootprobe bisect`'s
 * checks before anything is built (on a small git repository shaped like a kernel tree).
 */
import { expect } from 'chai';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseKernelSpec } from '../kernels/index.ts';
import { UsageError } from '../harness/errors.ts';
import { withCliExtras } from '../kernels/spec-options.ts';
import { compilerErrors } from '../kernels/kbuild.ts';
import type { GitSpec } from '../kernels/git.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.join(ROOT, 'bin/rootprobe.js');

function fakeTree(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), 'rp-fake-linux-'));
  mkdirSync(path.join(d, 'init'));
  writeFileSync(path.join(d, 'Makefile'), 'all:\n');
  writeFileSync(path.join(d, 'Kconfig'), '');
  writeFileSync(path.join(d, 'init/main.c'), 'int x;\n');
  const g = (...a: string[]): string =>
    execFileSync('git', ['-C', d, ...a], {
      encoding: 'utf8',
      env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t' },
    });
  g('init', '-q', '-b', 'main');
  g('add', '-A');
  g('commit', '-q', '-m', 'one');
  g('tag', 'one');
  writeFileSync(path.join(d, 'init/main.c'), 'int y;\n');
  g('commit', '-qam', 'two');
  return d;
}

describe('git: kernels (kernels/git.ts, kernels/providers/git.ts)', () => {
  it('parses a tree, a revision and the configuration options into a canonical id', () => {
    const frag = path.join(ROOT, 'kernels/recipes/base.config');
    const s = parseKernelSpec(`git:rel/linux@v6.1~2,config=${frag},fragment=${frag},config-add=CONFIG_LKDTM=y`);
    expect(s).to.deep.include({ kind: 'git', path: path.resolve('rel/linux'), rev: 'v6.1~2' });
    expect(s.id).to.equal(`git:${path.resolve('rel/linux')}@v6.1~2,config=${frag},fragment=${frag},config-add=CONFIG_LKDTM=y`);
    expect(parseKernelSpec('git:/src/linux')).to.not.have.property('rev');
    expect(parseKernelSpec('git:~/src/linux@HEAD~3')).to.include({ path: path.join(os.homedir(), 'src/linux'), rev: 'HEAD~3' });
    const at = mkdtempSync(path.join(os.tmpdir(), 'rp@tree-'));
    expect(parseKernelSpec(`git:${at}`))
      .to.include({ path: at })
      .and.not.have.property('rev');
    expect(parseKernelSpec(`git:${at}@v6.1`)).to.include({ path: at, rev: 'v6.1' });
    rmSync(at, { recursive: true, force: true });
  });

  it('starts the configuration from defconfig with base=defconfig (tinyconfig is the default and not in the id)', () => {
    const s = parseKernelSpec('git:/src/linux,base=defconfig,config-add=CONFIG_LKDTM=y') as GitSpec;
    expect(s.id).to.equal('git:/src/linux,base=defconfig,config-add=CONFIG_LKDTM=y');
    expect(s.extras.base).to.equal('defconfig');
    expect(parseKernelSpec('git:/src/linux,base=tinyconfig').id).to.equal('git:/src/linux');
    expect(() => parseKernelSpec('git:/src/linux,base=allyesconfig')).to.throw(
      UsageError,
      /base=allyesconfig is not one of tinyconfig, defconfig/,
    );
    expect(() => parseKernelSpec(`git:/src/linux,base=defconfig,config=${path.join(ROOT, 'kernels/recipes/base.config')}`)).to.throw(
      UsageError,
      /config= and base= both name where the configuration starts/,
    );
    expect(() => parseKernelSpec('build/nonroot-6.1,base=defconfig')).to.throw(UsageError);
  });

  it('refuses what it cannot build, saying why', () => {
    expect(() => parseKernelSpec('git:')).to.throw(UsageError, /names no source tree/);
    expect(() => parseKernelSpec('git:/x,config=/no/such/file')).to.throw(UsageError, /config \/no\/such\/file is not a file/);
    expect(() => parseKernelSpec('git:/x,config-add=CONFIG_X')).to.throw(UsageError, /not CONFIG_NAME=value/);
    expect(() => parseKernelSpec('debian/bookworm,config-add=CONFIG_X=y')).to.throw(UsageError);
  });

  it('--config-add and --fragment go onto build/ and git: specs only', () => {
    expect(withCliExtras('build/stock-6.1', ['CONFIG_LKDTM=y'], [])).to.equal('build/stock-6.1,config-add=CONFIG_LKDTM=y');
    expect(withCliExtras('git:/l', [], ['f.config'])).to.equal(`git:/l,fragment=${path.resolve('f.config')}`);
    expect(withCliExtras('debian/sid', ['CONFIG_LKDTM=y'], [])).to.equal('debian/sid');
  });

  it("a failed build shows the compiler's error lines", () => {
    const lines = [
      '  CC      init/main.o',
      'init/main.c:12:1: error: expected ‘;’ before ‘}’ token',
      'make[2]: *** [scripts/Makefile.build:250: init/main.o] Error 1',
      '  LD      vmlinux',
    ];
    expect(compilerErrors(lines)).to.deep.equal(lines.slice(1, 3));
  });

  it('bisect refuses bad revisions, a non-git kernel and a tree that is not a kernel before anything is built', () => {
    const tree = fakeTree();
    try {
      const run = (...a: string[]) => spawnSync(process.execPath, [BIN, 'bisect', 'switch_root', ...a], { encoding: 'utf8', cwd: ROOT });
      let r = run('--kernel', `git:${tree}`, '--good', 'nope', '--bad', 'main');
      expect(r.status, r.stderr).to.equal(2);
      expect(r.stderr).to.match(/--good revision nope does not exist/);
      r = run('--kernel', `git:${tree}`, '--good', 'main', '--bad', 'one');
      expect(r.status).to.equal(2);
      expect(r.stderr).to.match(/is not an ancestor of --bad one/);
      r = run('--kernel', 'debian/bookworm', '--good', 'a', '--bad', 'b');
      expect(r.stderr).to.match(/bisect needs a git: kernel/);
      r = run('--kernel', `git:${tree}@one`, '--good', 'a', '--bad', 'b');
      expect(r.stderr).to.match(/without @one/);
      r = run('--kernel', `git:${tree}`, '--good', 'one', '--bad', 'main', '--runs', '0');
      expect(r.stderr).to.match(/--runs takes a whole number/);
      const notKernel = mkdtempSync(path.join(os.tmpdir(), 'rp-notkernel-'));
      r = spawnSync(process.execPath, [BIN, 'run', 'switch_root', '--kernel', `git:${notKernel}`], { encoding: 'utf8', cwd: ROOT });
      expect(r.status).to.equal(2);
      expect(r.stderr).to.match(/is not a kernel source tree \(it has no Makefile\)/);
      rmSync(notKernel, { recursive: true, force: true });
      expect(execFileSync('git', ['-C', tree, 'status', '--porcelain'], { encoding: 'utf8' })).to.equal('');
    } finally {
      rmSync(tree, { recursive: true, force: true });
    }
  });
});
