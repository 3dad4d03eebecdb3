/**
 * Output paths (harness/report/outputs.ts): every report file and the artifacts folder checked
 * before anything boots (exit 2 naming the path and why), and a write that fails at the end
 * reported after the summary with exit 3, leaving no temporary file.
 */
import { expect } from 'chai';
import { chmodSync, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { checkOutputs, outputProblem, writeReports } from '../harness/report/outputs.ts';
import { UsageError } from '../harness/errors.ts';
import { cli, run, ROOT } from './support/cli.ts';

describe('output paths: checked before anything boots', () => {
  let dir: string;
  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'outputs-test-'));
    await fs.writeFile(path.join(dir, 'afile'), 'x');
    await fs.mkdir(path.join(dir, 'adir'));
  });
  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  const file = (p: string, extra = {}) => ({ flag: '--json', path: p, kind: 'file' as const, ...extra });
  const folder = (p: string) => ({ flag: '--artifacts', path: p, kind: 'folder' as const });

  it('accepts new and existing files and folders, and - for --tap', async () => {
    expect(await outputProblem(file(path.join(dir, 'new.json')))).to.equal(undefined);
    expect(await outputProblem(file(path.join(dir, 'deep/er/new.json')))).to.equal(undefined);
    expect(await outputProblem(file(path.join(dir, 'afile')))).to.equal(undefined);
    expect(await outputProblem(folder(path.join(dir, 'adir')))).to.equal(undefined);
    expect(await outputProblem(folder(path.join(dir, 'new/folder')))).to.equal(undefined);
    expect(await outputProblem(file('-', { allowDash: true }))).to.equal(undefined);
  });

  it('names why a path cannot be written', async () => {
    const cases: Array<[ReturnType<typeof file> | ReturnType<typeof folder>, RegExp]> = [
      [file(path.join(dir, 'adir')), /is a folder/],
      [file(path.join(dir, 'afile/x.json')), /is a file, not a folder|a part of it is a file/],
      [file(path.join(dir, 'afile/deeper/x.json')), /is a file, not a folder|a part of it is a file/],
      [folder(path.join(dir, 'afile')), /is a file, not a folder/],
      [folder(path.join(dir, 'afile/sub')), /is a file, not a folder|a part of it is a file/],
      [file('/proc/x.json'), /\/proc is a kernel file system/],
      [file('/sys/kernel/x.json'), /\/sys is a kernel file system/],
      [folder('/proc/self/artifacts'), /\/proc is a kernel file system/],
      [file('/dev/null'), /\/dev is a kernel file system/],
      [file('-'), /only for --tap/],
      [file(''), /empty/],
      [file('/dev/zero/x'), /\/dev/],
    ];
    for (const [o, re] of cases) {
      const why = await outputProblem(o);
      expect(why, `${o.kind} ${o.path}`).to.match(re);
    }
  });

  it('a read-only file system is named (EROFS)', async function () {
    // /proc/sys is read-only for writes of new files even as root; a bind-mounted read-only
    // folder would need privileges a test should not take. /sys/fs/cgroup is often writable,
    // so use a file system mounted read-only if the machine has one.
    const mounts = await fs.readFile('/proc/self/mountinfo', 'utf8');
    const ro = mounts
      .split('\n')
      .map((l) => l.split(' '))
      .find((f) => f.length > 5 && /(^|,)ro(,|$)/.test(f[5]) && !/^\/(proc|sys|dev)(\/|$)/.test(f[4]) && f[4] !== '/');
    if (!ro) this.skip();
    const why = await outputProblem(folder(path.join(ro![4], 'rootprobe-artifacts-test')));
    expect(why).to.match(/read-only|cannot be written|cannot be looked at/);
  });

  it('checkOutputs lists every problem and a path given twice, as a usage error', async () => {
    const p = path.join(dir, 'r.json');
    let err: unknown;
    try {
      await checkOutputs([
        { flag: '--json', path: p, kind: 'file' },
        { flag: '--junit', path: p, kind: 'file' },
        { flag: '--tap', path: path.join(dir, 'adir'), kind: 'file', allowDash: true },
        undefined,
      ]);
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(UsageError);
    const m = (err as Error).message;
    expect(m).to.include(`--junit ${p}: the same path as --json`);
    expect(m).to.include(`--tap ${path.join(dir, 'adir')}: it is a folder`);
  });

  it('writeReports writes the others when one fails, and leaves no temporary file', async () => {
    const good = path.join(dir, 'good.json');
    const bad = path.join(dir, 'adir');
    const lost = await writeReports([
      { flag: '--json', path: bad, text: () => 'a' },
      { flag: '--junit', path: good, text: () => 'b' },
      { flag: '--tap', path: undefined, text: () => 'never' },
    ]);
    expect(lost.map((l) => l.flag)).to.deep.equal(['--json']);
    expect(lost[0].reason).to.match(/EISDIR/);
    expect(await fs.readFile(good, 'utf8')).to.equal('b');
    const left = await fs.readdir(dir);
    expect(left.filter((n) => n.includes('.tmp-'))).to.deep.equal([]);
  });
});

describe('CLI: an output path that cannot be written is exit 2 before any boot', () => {
  let dir: string;
  let cache: string;
  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'outputs-cli-'));
    await fs.writeFile(path.join(dir, 'afile'), 'x');
    await fs.mkdir(path.join(dir, 'adir'));
    // An empty cache: a CLI that got past the check would start downloading a kernel.
    cache = path.join(dir, 'cache');
  });
  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  const cases: Array<[string, string[], RegExp]> = [
    ['--artifacts naming a file', ['run', 'switch_root', '--artifacts', 'afile'], /--artifacts afile: it is a file, not a folder/],
    ['--json naming a folder', ['run', 'switch_root', '--json', 'adir'], /--json adir: it is a folder/],
    ['--json in /proc', ['run', 'switch_root', '--json', '/proc/x.json'], /--json \/proc\/x.json: \/proc is a kernel file system/],
    [
      '--junit under a file',
      ['run', 'switch_root', '--junit', 'afile/j.xml'],
      /--junit afile\/j.xml: .*(file, not a folder|a part of it is a file)/,
    ],
    ['--tap naming a folder', ['run', 'switch_root', '--tap', 'adir'], /--tap adir: it is a folder/],
    ['--evidence in /sys', ['run', 'switch_root', '--evidence', '/sys/e.md'], /\/sys is a kernel file system/],
    ['--json and --junit on one file', ['run', 'switch_root', '--json', 'r', '--junit', 'r'], /--junit r: the same path as --json/],
    [
      'diff --json naming a folder',
      ['diff', '--kernel', 'debian/bookworm', '--kernel', 'debian/trixie', '--json', 'adir'],
      /--json adir: it is a folder/,
    ],
    [
      'diff --artifacts naming a file',
      ['diff', '--kernel', 'debian/bookworm', '--kernel', 'debian/trixie', '--artifacts', 'afile'],
      /--artifacts afile/,
    ],
    [
      'external --json in /proc',
      ['run', 'external', '--initramfs', 'afile', '--kernel', 'debian/bookworm', '--json', '/proc/1/x'],
      /--json \/proc\/1\/x/,
    ],
    [
      'external --artifacts naming a file',
      ['run', 'external', '--initramfs', 'afile', '--kernel', 'debian/bookworm', '--artifacts', 'afile'],
      /--artifacts afile/,
    ],
    ['junit-merge into a folder', ['junit-merge', 'adir', 'afile'], /OUT adir: it is a folder/],
  ];
  for (const [title, args, re] of cases) {
    it(title, async () => {
      const r = await cli(args, { cwd: dir, env: { ROOTPROBE_CACHE: cache } });
      expect(r.code, r.stderr).to.equal(2);
      expect(r.stderr).to.match(re);
      expect(r.stderr).to.not.match(/internal error|\n\s+at /);
      expect(await fs.readdir(dir)).to.not.include('cache');
    });
  }

  it('as a user who cannot write the working folder (nobody): exit 2 naming rootprobe-artifacts', async function () {
    if (process.getuid?.() !== 0) this.skip();
    chmodSync(dir, 0o755); // mkdtemp made it 0700: nobody must be able to reach its cwd
    const home = path.join(dir, 'nobody-home');
    await fs.mkdir(home);
    await fs.chown(home, 65534, 65534);
    const ro = path.join(dir, 'root-owned');
    await fs.mkdir(ro, { mode: 0o755 });
    chmodSync(ro, 0o755);
    const r = await run(
      'setpriv',
      ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, path.join(ROOT, 'bin/rootprobe.js'), 'run', 'switch_root'],
      { cwd: ro, env: { ...process.env, CI: '1', HOME: home, TMPDIR: home, ROOTPROBE_CACHE: path.join(home, 'cache') } },
    );
    expect(r.code, r.stderr).to.equal(2);
    expect(r.stderr).to.match(/--artifacts rootprobe-artifacts: .*this user cannot write there/);
  });
});

describe('CLI: a report that fails to be written at the end @boot', function () {
  this.timeout(300_000);

  it('the summary and the other reports are still written; the lost one is named; exit 3; no temporary left', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'outputs-late-'));
    try {
      await fs.mkdir(path.join(dir, 'sub'));
      const { spawn } = await import('node:child_process');
      const child = spawn(
        process.execPath,
        [
          path.join(ROOT, 'bin/rootprobe.js'),
          'run',
          'switch_root',
          '--jobs',
          '1',
          '--json',
          'sub/r.json',
          '--junit',
          'j.xml',
          '--tap',
          't.tap',
          '--artifacts',
          'arts',
        ],
        {
          cwd: dir,
          env: { ...process.env, CI: '1', TMPDIR: dir },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let stdout = '';
      let stderr = '';
      let swapped = false;
      child.stderr.on('data', (d) => (stderr += d));
      const onOut = async (d: Buffer): Promise<void> => {
        stdout += d;
        // Once the boot has started (the check passed), the report's folder becomes a file.
        if (!swapped && /^start /m.test(stdout + stderr)) {
          swapped = true;
          await fs.rm(path.join(dir, 'sub'), { recursive: true });
          await fs.writeFile(path.join(dir, 'sub'), 'in the way');
        }
      };
      child.stdout.on('data', (d: Buffer) => void onOut(d));
      child.stderr.on('data', (_d: Buffer) => void onOut(Buffer.alloc(0)));
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
      expect(swapped, stdout + stderr).to.equal(true);
      expect(code, stderr).to.equal(3);
      expect(stdout).to.match(/1 passed, 0 failed/);
      expect(stderr).to.match(/could not write --json sub\/r.json: (ENOTDIR|EEXIST)/);
      expect(stderr).to.not.match(/internal error/);
      expect(await fs.readFile(path.join(dir, 'j.xml'), 'utf8')).to.include('<testsuite');
      expect(await fs.readFile(path.join(dir, 't.tap'), 'utf8')).to.match(/^TAP version 13/);
      const left = await fs.readdir(dir);
      expect(left.filter((n) => n.includes('.tmp-'))).to.deep.equal([]);
      expect(left.filter((n) => n.startsWith('rootprobe-'))).to.deep.equal([]);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});

describe('CLI: the artifacts folder fails during the run @boot', function () {
  this.timeout(300_000);

  it('the cell ends as error naming it; the summary and the JSON report are still written; nothing left in TMPDIR', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'outputs-arts-'));
    try {
      const { spawn } = await import('node:child_process');
      const child = spawn(
        process.execPath,
        [path.join(ROOT, 'bin/rootprobe.js'), 'run', 'switch_root', '--jobs', '1', '--keep', '--json', 'r.json', '--artifacts', 'arts'],
        {
          cwd: dir,
          env: { ...process.env, CI: '1', TMPDIR: dir },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let out = '';
      let swapped = false;
      const seen = async (d: Buffer): Promise<void> => {
        out += d;
        if (!swapped && /^start /m.test(out)) {
          swapped = true;
          await fs.rm(path.join(dir, 'arts'), { recursive: true, force: true });
          await fs.writeFile(path.join(dir, 'arts'), 'in the way');
        }
      };
      child.stdout.on('data', (d: Buffer) => void seen(d));
      child.stderr.on('data', (d: Buffer) => void seen(d));
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
      expect(swapped).to.equal(true);
      expect(code, out).to.equal(1);
      expect(out).to.not.match(/internal error/);
      expect(out).to.match(/the run's artifacts could not be kept under arts: (ENOTDIR|EEXIST)/);
      expect(out).to.match(/0 passed, 1 failed/);
      const rep = JSON.parse(await fs.readFile(path.join(dir, 'r.json'), 'utf8'));
      expect(rep.runs[0].outcome).to.equal('error');
      const left = (await fs.readdir(dir)).filter((n) => n.startsWith('rootprobe-'));
      expect(left).to.deep.equal([]);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
