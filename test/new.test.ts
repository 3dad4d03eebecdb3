/**
 * `rootprobe new <name> [--disk]`: the folder it writes type-checks against rootprobe's types
 * with `tsc --noEmit` and its mocha test passes as written, booting a real kernel (both forms);
 * a slip in the scenario is caught by that type check; bad input is exit 2 and writes nothing.
 */
import { expect } from 'chai';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { cli, run, ROOT } from './support/cli.ts';

/** What `npm install` of rootprobe and the test tools would give, without the network: links. */
async function linkNodeModules(dir: string): Promise<void> {
  await fs.mkdir(path.join(dir, 'node_modules/.bin'), { recursive: true });
  await fs.mkdir(path.join(dir, 'node_modules/@types'), { recursive: true });
  await fs.symlink(ROOT, path.join(dir, 'node_modules/rootprobe'));
  for (const p of ['mocha', 'chai', 'tsx', 'typescript'])
    await fs.symlink(path.join(ROOT, 'node_modules', p), path.join(dir, 'node_modules', p));
  for (const p of ['node', 'mocha', 'chai'])
    await fs.symlink(path.join(ROOT, 'node_modules/@types', p), path.join(dir, 'node_modules/@types', p));
}

const tsc = (dir: string) =>
  run(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '--noEmit', '-p', dir], { cwd: dir });
const mocha = (dir: string, file: string) =>
  run(process.execPath, [path.join(ROOT, 'node_modules/mocha/bin/mocha.js'), file], { cwd: dir, env: { ...process.env, CI: '1' } });

describe('rootprobe new', () => {
  let dir: string;
  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rootprobe-new-'));
  });
  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('writes the scenario folder, and where missing package.json, tsconfig.json, .mocharc.json', async () => {
    const r = await cli(['new', 'my-first', '--dir', dir]);
    expect(r.code, r.stderr).to.equal(0);
    for (const f of [
      'my-first/scenario.ts',
      'my-first/init.sh',
      'my-first/my-first.test.ts',
      'package.json',
      'tsconfig.json',
      '.mocharc.json',
    ]) {
      expect((await fs.stat(path.join(dir, f))).isFile(), f).to.equal(true);
    }
    expect(JSON.parse(await fs.readFile(path.join(dir, 'package.json'), 'utf8'))).to.deep.include({ type: 'module' });
    expect((await fs.stat(path.join(dir, 'my-first/init.sh'))).mode & 0o111).to.not.equal(0);
    const pkg = await fs.readFile(path.join(dir, 'package.json'), 'utf8');
    const d = await cli(['new', 'my-disk', '--disk', '--dir', dir]);
    expect(d.code, d.stderr).to.equal(0);
    expect(d.stdout).to.include('kept');
    expect(await fs.readFile(path.join(dir, 'package.json'), 'utf8')).to.equal(pkg); // left alone
    expect(await fs.readFile(path.join(dir, 'my-disk/rootinit.sh'), 'utf8')).to.match(/^#!\/\.rootprobe\/busybox sh\n/);
  });

  it('refuses a bad name or an existing folder (exit 2), writing nothing', async () => {
    let r = await cli(['new', 'Bad Name', '--dir', dir]);
    expect(r.code).to.equal(2);
    expect(r.stderr).to.include("scenario name 'Bad Name' must be lowercase");
    r = await cli(['new', 'my-first', '--dir', dir]);
    expect(r.code).to.equal(2);
    expect(r.stderr).to.include('exists already');
    r = await cli(['new', '--dir', dir]);
    expect(r.code).to.equal(2);
    expect(r.stderr).to.include('usage: rootprobe new <name>');
    expect((await fs.readdir(dir)).sort()).to.deep.equal(['.mocharc.json', 'my-disk', 'my-first', 'package.json', 'tsconfig.json']);
  });

  it("both forms type-check against rootprobe's types with tsc --noEmit; a misspelt key does not", async () => {
    await linkNodeModules(dir);
    const ok = await tsc(dir);
    expect(ok.code, ok.stdout + ok.stderr).to.equal(0);
    // the same folder with a slip: tsc names the file, the line and the key
    const file = path.join(dir, 'my-disk/scenario.ts');
    const text = await fs.readFile(file, 'utf8');
    await fs.writeFile(file, text.replace('sizeMiB: 16,', 'sizeMiB: 16,\n      files: [],'));
    const bad = await tsc(dir);
    await fs.writeFile(file, text);
    expect(bad.code).to.not.equal(0);
    expect(bad.stdout).to.match(
      /my-disk\/scenario\.ts\(\d+,\d+\): error TS2353: Object literal may only specify known properties, and 'files' does not exist/,
    );
  });

  it("@boot the initramfs form's mocha test passes as written", async () => {
    const r = await mocha(dir, 'my-first/my-first.test.ts');
    expect(r.code, r.stdout + r.stderr).to.equal(0);
    expect(r.stdout).to.match(/1 passing/);
  });

  it("@boot the --disk form's mocha test passes as written (switch_root onto the disk)", async () => {
    const r = await mocha(dir, 'my-disk/my-disk.test.ts');
    expect(r.code, r.stdout + r.stderr).to.equal(0);
    expect(r.stdout).to.match(/1 passing/);
  });
});
