/**
 * The README's disk example (an overlay root: the disk read-only as the lower layer, a tmpfs
 * upper, switch_root into the overlay, a binary init on the disk), copied as written into an
 * empty folder, passes with the CLI on a real kernel.
 */
import { expect } from 'chai';
import { existsSync, promises as fs, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ROOT, run } from './support/cli.ts';

function diskBlocks(): { files: Map<string, string>; runs: Map<string, string> } {
  const text = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const files = new Map<string, string>();
  const runs = new Map<string, string>();
  for (const m of text.matchAll(/<!-- readme-disk-(file|run): ([^ ]*) -->\n```\w*\n([\s\S]*?)```/g)) {
    if (m[1] === 'file') files.set(m[2]!, m[3]!);
    else runs.set(m[2]!, m[3]!.trim());
  }
  return { files, runs };
}

describe("the README's overlay-root disk example, copied as written @boot", function () {
  this.timeout(900_000);
  let dir: string;
  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rootprobe-readme-disk-'));
  });
  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('has the three files and the command', () => {
    const { files, runs } = diskBlocks();
    expect([...files.keys()]).to.deep.equal([
      'scenarios/overlay-root/init.sh',
      'scenarios/overlay-root/rootinit.sh',
      'scenarios/overlay-root/scenario.ts',
    ]);
    expect([...runs.keys()]).to.deep.equal(['cli']);
  });

  it("passes with the CLI: / is the overlay with lowerdir=/lower, /proc moved, PID 1 the disk's binary init", async () => {
    const { files, runs } = diskBlocks();
    await fs.writeFile(path.join(dir, 'package.json'), JSON.stringify({ name: 'my-tests', private: true, type: 'module' }));
    await fs.mkdir(path.join(dir, 'node_modules/.bin'), { recursive: true });
    await fs.symlink(ROOT, path.join(dir, 'node_modules/rootprobe'));
    await fs.symlink('../rootprobe/bin/rootprobe.js', path.join(dir, 'node_modules/.bin/rootprobe'));
    for (const [rel, body] of files) {
      await fs.mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
      await fs.writeFile(path.join(dir, rel), body, { mode: rel.endsWith('.sh') ? 0o755 : 0o644 });
    }
    const env = { ...process.env, CI: '1', npm_config_offline: 'true' };
    const r = await run('sh', ['-c', `${runs.get('cli')!} --json r.json`], { cwd: dir, env });
    expect(r.code, r.stdout + r.stderr).to.equal(0);
    expect(r.stdout).to.match(/^overlay-root +PASS/m);
    expect(r.stdout).to.match(/realroot: \/ is overlay mount \d+, the lower disk stays read-only/);
    const report = JSON.parse(await fs.readFile(path.join(dir, 'r.json'), 'utf8')) as {
      runs: Array<{ stages: Array<{ name: string; mountinfo: Array<{ mountPoint: string; fsType: string; superOptions: string }> }> }>;
    };
    const real = report.runs[0]!.stages.find((s) => s.name === 'realroot')!;
    expect(real.mountinfo.find((m) => m.mountPoint === '/')).to.deep.include({ fsType: 'overlay' });
    expect(existsSync(path.join(dir, 'rootprobe-artifacts'))).to.equal(false);
  });
});
