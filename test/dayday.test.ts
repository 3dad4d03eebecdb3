/**
 * Day-to-day use on real boots (Debian bookworm under QEMU): --jobs 2 gives the verdicts of
 * --jobs 1 with separate VMs; progress on a real pseudo-terminal and in CI; the JUnit, TAP
 * and JSON reports of a matrix with a failure; artifacts and the rerun line; the README's
 * from-scratch scenario copied as written into an empty folder and run with the CLI and
 * under mocha through the library; `rootprobe build`'s qemu.sh; `rootprobe shell` under tmux.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { promises as fs, existsSync, readdirSync, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkJUnit, checkTap } from './report-checks.ts';
import { readNewc } from '../harness/cpio/read.ts';
import { readRunStream } from '../harness/readback/result.ts';

import { run, type Ran } from './support/cli.ts';
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bin = path.join(root, 'bin/rootprobe.js');
const example = path.join(root, 'examples');
const dayday = path.join(root, 'test/fixtures/scenarios/dayday');

/** argv of the QEMU processes whose command line contains `marker`. */
function qemus(marker: string): string[][] {
  const out: string[][] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const argv = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').filter(Boolean);
      if (/qemu-system-x86_64$/.test(argv[0] ?? '') && argv.some((a) => a.includes(marker))) out.push(argv);
    } catch {
      /* gone */
    }
  }
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const withoutCI = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  delete env.CI;
  return env;
};
// eslint-disable-next-line no-control-regex
const plain = (s: string) => s.replace(/\x1b\[[0-9;]*[A-Za-z]/g, '').replace(/\r/g, '');

describe('the full default matrix with --jobs 1 and --jobs 2 (CI lines, a real terminal, reports, artifacts) @boot', function () {
  this.timeout(1_800_000);
  // every built-in scenario on the default kernel, plus the README's example and its broken twin
  const builtin = [
    'bind_root',
    'loop_root_shutdown',
    'loop_root_shutdown_holder',
    'nonroot_initramfs',
    'pivot_root',
    'switch_root',
    'switch_root_manual',
    'switch_root_util_linux',
    'sysvinit_loop_root',
    'sysvinit_loop_root_request',
    'sysvinit_loop_root_usr1',
  ];
  // Skipped before boot on bookworm (virtio-blk and the RAM disk driver are modules; 6.1 has no /sys/firmware/initrd).
  const skippedHere = ['initrd_linuxrc', 'kernel_root', 'retain_initrd', 'retain_initrd_without'];
  const booted = [...builtin, 'hello-initramfs', 'hello-nochdir'];
  const scen = [...booted, ...skippedHere];
  let dir: string;
  let one: Ran;
  let two: Ran;
  let concurrent: string[][] = [];
  let tmp1: string;
  let tmp2: string;

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rootprobe-dd-'));
    // Each run gets its own TMPDIR, so its QEMUs and temp folders can be told from those of
    // other tests (and checked for being gone at the end).
    tmp1 = path.join(dir, 't1');
    tmp2 = path.join(dir, 't2');
    await fs.mkdir(tmp1);
    await fs.mkdir(tmp2);
    const common = ['--all', '--scenarios', example, '--scenarios', dayday];
    one = await run(
      process.execPath,
      [
        bin,
        'run',
        ...common,
        '--jobs',
        '1',
        '--artifacts',
        path.join(dir, 'art1'),
        '--json',
        path.join(dir, 'one.json'),
        '--junit',
        path.join(dir, 'one.xml'),
        '--tap',
        path.join(dir, 'one.tap'),
      ],
      {
        env: { ...process.env, CI: '1', TMPDIR: tmp1 },
      },
    );
    // --jobs 2 on a pseudo-terminal (util-linux script), no CI: the live progress lines.
    const line = [bin, 'run', ...common, '--jobs', '2', '--artifacts', path.join(dir, 'art2'), '--json', path.join(dir, 'two.json')]
      .map((a) => `'${a}'`)
      .join(' ');
    const seen = new Map<string, string[]>();
    const poll = setInterval(() => {
      const now = qemus(tmp2);
      for (const a of now) seen.set(a.join(' '), a);
      if (now.length > concurrent.length) concurrent = now;
    }, 100);
    try {
      two = await run('script', ['-qfec', `'${process.execPath}' ${line}`, '/dev/null'], {
        env: withoutCI({ TMPDIR: tmp2, TERM: 'xterm' }),
      });
    } finally {
      clearInterval(poll);
    }
  });
  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('gives the same verdicts with --jobs 2 as with --jobs 1', async () => {
    const v = async (f: string) =>
      Object.fromEntries(
        JSON.parse(await fs.readFile(path.join(dir, f), 'utf8')).runs.map((r: { scenario: string; outcome: string }) => [
          r.scenario,
          r.outcome,
        ]),
      );
    const a = await v('one.json');
    expect(a).to.deep.equal({
      ...Object.fromEntries(builtin.map((n) => [n, 'passed'])),
      ...Object.fromEntries(skippedHere.map((n) => [n, 'skipped'])),
      'hello-initramfs': 'passed',
      'hello-nochdir': 'failed',
    });
    expect(await v('two.json')).to.deep.equal(a);
    expect(one.code).to.equal(1);
    expect(two.code).to.equal(1);
  });

  it('--jobs 2 ran two VMs at once, each with its own folder, socket and disk copies, no ports', () => {
    expect(concurrent.length, 'QEMUs seen at once').to.equal(2);
    const opt = (argv: string[], prefix: string) => argv.filter((a) => a.includes(prefix));
    const [a, b] = concurrent;
    expect(opt(a, 'socket,id=res')[0]).to.not.equal(opt(b, 'socket,id=res')[0]);
    expect(opt(a, 'qemu.pid')[0]).to.not.equal(opt(b, 'qemu.pid')[0]);
    expect(a[a.indexOf('-initrd') + 1]).to.not.equal(b[b.indexOf('-initrd') + 1]);
    for (const argv of concurrent) {
      expect(argv.join(' ')).to.not.match(/tcp:|hostfwd|-gdb|-vnc|telnet/);
      expect(argv[argv.indexOf('-m') + 1]).to.equal('256');
    }
  });

  it('states the memory per VM in the summary and the JSON', async () => {
    expect(one.stdout).to.include(`${booted.length - 1} passed, 1 failed, ${skippedHere.length} skipped`);
    expect(one.stdout).to.match(/, 256 MiB per VM, accel/);
    expect(one.stderr).to.match(/1 at once \(256 MiB each\)/);
    const j = JSON.parse(await fs.readFile(path.join(dir, 'two.json'), 'utf8'));
    expect(new Set(j.runs.map((r: { memoryMiB: number }) => r.memoryMiB))).to.deep.equal(new Set([256]));
    expect(j.runs).to.have.length(scen.length);
  });

  it('in CI: plain lines as each run starts, reaches a stage and ends, no escape codes', () => {
    const lines = one.stderr.split('\n');
    for (const s of booted) {
      expect(lines, s).to.include(`start  ${s} @ debian/bookworm`);
    }
    for (const s of skippedHere)
      expect(
        lines.some((l) => l.startsWith(`SKIP   ${s} @ debian/bookworm`)),
        s,
      ).to.equal(true);
    expect(lines.some((l) => /^stage {2}hello-initramfs @ debian\/bookworm: after \(\d+\.\d s\)$/.test(l))).to.equal(true);
    expect(lines.some((l) => /^PASS {3}switch_root @ debian\/bookworm \(\d+\.\d s\)$/.test(l))).to.equal(true);
    expect(lines.some((l) => /^FAIL {3}hello-nochdir @ debian\/bookworm \(\d+\.\d s\)$/.test(l))).to.equal(true);
    expect(one.stderr + one.stdout).to.not.include('\x1b[');
  });

  it('on a terminal: live lines with the last stage, erased and redrawn, coloured verdicts', () => {
    const out = two.stdout;
    expect(out).to.include('\x1b[J');
    expect(out).to.match(/\x1b\[\d+A/);
    expect(plain(out)).to.match(/\d+s {2}hello-initramfs @ debian\/bookworm {2}last stage: (before|after|done)/);
    expect(plain(out)).to.match(/\d+s {2}switch_root @ debian\/bookworm {2}(booting|last stage: \w+)/);
    expect(out).to.include('\x1b[32mPASS\x1b[0m');
    expect(plain(out)).to.match(/^scenario +debian\/bookworm/m);
  });

  it('JUnit: well-formed, one testcase each; the failure has the reason, console tail, folder and rerun', async () => {
    const cases = checkJUnit(await fs.readFile(path.join(dir, 'one.xml'), 'utf8'));
    expect(cases.map((c) => c.name).sort()).to.deep.equal(scen.map((s) => `${s} [debian/bookworm]`).sort());
    const bad = cases.find((c) => c.name.startsWith('hello-nochdir'))!;
    expect(bad.failure?.attrs.message).to.match(/sleep.* to have cwd "\/scratch"/);
    expect(bad.failure?.text).to.include('last console lines:');
    expect(bad.failure?.text).to.include(`artifacts: ${path.join(dir, 'art1', 'hello-nochdir--debian_bookworm')}`);
    expect(bad.failure?.text).to.match(/rerun: npx rootprobe run hello-nochdir --kernel debian\/bookworm --scenarios .* --keep/);
    expect(cases.filter((c) => c.failure || c.error)).to.have.length(1);
  });

  it('TAP: the plan matches the ok / not ok lines', async () => {
    const tests = checkTap(await fs.readFile(path.join(dir, 'one.tap'), 'utf8'));
    expect(tests.filter((t) => !t.ok).map((t) => t.desc)).to.deep.equal(['hello-nochdir [debian/bookworm] # failed']);
  });

  it('a failure prints its artifact folder and the one-line command; the folder has every artifact', async () => {
    const art = path.join(dir, 'art1', 'hello-nochdir--debian_bookworm');
    expect(one.stdout).to.include(`  artifacts: ${art}\n  rerun: npx rootprobe run hello-nochdir --kernel debian/bookworm`);
    expect(one.stdout).to.match(/expected pid \d+ \(sleep\) in stage "after" to have cwd "\/scratch", but it is "\/"/);
    for (const f of ['console.log', 'result.stream', 'readback.json', 'run.json', 'qemu.cmdline', 'qemu.sh', 'reproduce.sh']) {
      expect(existsSync(path.join(art, f)), f).to.equal(true);
    }
    const rerun = JSON.parse(await fs.readFile(path.join(art, 'run.json'), 'utf8')).rerun as string;
    expect(await fs.readFile(path.join(art, 'reproduce.sh'), 'utf8')).to.include(`exec ${rerun} "$@"`);
    expect(existsSync(path.join(dir, 'art1', 'switch_root--debian_bookworm')), 'no folder for a pass').to.equal(false);
  });

  it('leaves no QEMU and no temp folder behind', async () => {
    expect(qemus(dir)).to.deep.equal([]);
    // (tsx keeps a compile cache of its own in $TMPDIR/tsx-<uid>)
    const ours = async (d: string) => (await fs.readdir(d)).filter((n) => !n.startsWith('tsx-'));
    expect(await ours(tmp1)).to.deep.equal([]);
    expect(await ours(tmp2)).to.deep.equal([]);
  });
});

/** The README's marked blocks: files to write and commands to run. */
function readmeBlocks(): { setup: string; files: Map<string, string>; runs: Map<string, string> } {
  const text = readFileSync(path.join(root, 'README.md'), 'utf8');
  const files = new Map<string, string>();
  const runs = new Map<string, string>();
  let setup = '';
  for (const m of text.matchAll(/<!-- readme-(file|run|setup):? ?([^ ]*) -->\n```\w*\n([\s\S]*?)```/g)) {
    if (m[1] === 'file') files.set(m[2], m[3]);
    else if (m[1] === 'run') runs.set(m[2], m[3].trim());
    else setup = m[3];
  }
  return { setup, files, runs };
}

describe("the README's from-scratch scenario, copied as written into an empty folder @boot", function () {
  this.timeout(900_000);
  let dir: string;
  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rootprobe-readme-'));
  });
  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('the README blocks are the files of examples/hello-initramfs', () => {
    const { setup, files, runs } = readmeBlocks();
    expect([...files.keys()]).to.deep.equal([
      'scenarios/hello-initramfs/init.sh',
      'scenarios/hello-initramfs/scenario.ts',
      'scenarios/hello-initramfs/hello.test.ts',
    ]);
    expect([...runs.keys()]).to.deep.equal(['cli', 'mocha']);
    expect(setup).to.match(/npm pkg set type=module/);
    for (const [rel, body] of files) {
      expect(readFileSync(path.join(example, 'hello-initramfs', path.basename(rel)), 'utf8'), rel).to.equal(body);
    }
  });

  it('runs with the CLI and under mocha through the library API', async () => {
    const { files, runs } = readmeBlocks();
    // What the setup block does (npm init, type=module, npm install of rootprobe by path and of
    // the test tools), done without the network: package.json and node_modules links.
    await fs.writeFile(path.join(dir, 'package.json'), JSON.stringify({ name: 'my-tests', private: true, type: 'module' }));
    await fs.mkdir(path.join(dir, 'node_modules/.bin'), { recursive: true });
    await fs.symlink(root, path.join(dir, 'node_modules/rootprobe'));
    for (const p of ['mocha', 'chai', 'tsx']) await fs.symlink(path.join(root, 'node_modules', p), path.join(dir, 'node_modules', p));
    await fs.symlink('../rootprobe/bin/rootprobe.js', path.join(dir, 'node_modules/.bin/rootprobe'));
    await fs.symlink('../mocha/bin/mocha.js', path.join(dir, 'node_modules/.bin/mocha'));
    for (const [rel, body] of files) {
      await fs.mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
      await fs.writeFile(path.join(dir, rel), body);
    }
    const env = { ...process.env, CI: '1', npm_config_offline: 'true' };
    const viaCli = await run('sh', ['-c', runs.get('cli')!], { cwd: dir, env });
    expect(viaCli.code, viaCli.stdout + viaCli.stderr).to.equal(0);
    expect(viaCli.stdout).to.match(/^hello-initramfs +PASS/m);
    expect(viaCli.stdout).to.match(/after: \/scratch is mount \d+, parent \d+/);
    const viaMocha = await run('sh', ['-c', runs.get('mocha')!], { cwd: dir, env });
    expect(viaMocha.code, viaMocha.stdout + viaMocha.stderr).to.equal(0);
    expect(viaMocha.stdout).to.match(/1 passing/);
    expect(existsSync(path.join(dir, 'rootprobe-artifacts'))).to.equal(false);
  });
});

describe('rootprobe build writes the images and a qemu.sh that boots them @boot', function () {
  this.timeout(600_000);
  let dir: string;
  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rootprobe-build-'));
  });
  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('segments that read back, their concatenation, the kernel, build.json; qemu.sh reports every stage', async () => {
    const out = path.join(dir, 'out');
    const b = await run(process.execPath, [bin, 'build', 'switch_root', '--out', out], { env: { ...process.env, CI: '1' } });
    expect(b.code, b.stderr).to.equal(0);
    const manifest = JSON.parse(await fs.readFile(path.join(out, 'build.json'), 'utf8'));
    expect(manifest.segments.map((s: { name: string }) => s.name)).to.deep.equal(['base', 'modules', 'scenario', 'probe']);
    const parts: Buffer[] = [];
    for (const s of manifest.segments as Array<{ name: string; file: string }>) {
      const data = await fs.readFile(path.join(out, s.file));
      parts.push(data);
      const names = (await readNewc(data)).map((e) => e.path);
      if (s.name === 'scenario') expect(names).to.include('init');
      if (s.name === 'probe') expect(names).to.include.members(['.rootprobe/probe', '.rootprobe/busybox']);
      if (s.name === 'modules') expect(names.some((n) => n.endsWith('.ko'))).to.equal(true);
    }
    expect(Buffer.concat(parts).equals(await fs.readFile(path.join(out, 'initrd.cpio')))).to.equal(true);
    expect(manifest.disks).to.deep.equal([{ name: 'root', file: 'disk-root.img' }]);
    expect((await fs.stat(path.join(out, 'disk-root.img'))).size).to.equal(24 * 1024 * 1024);
    expect((await fs.stat(path.join(out, 'vmlinuz'))).size).to.be.above(1_000_000);
    const sh = await fs.readFile(path.join(out, 'qemu.sh'), 'utf8');
    expect(sh).to.include('-kernel ./vmlinuz -initrd ./initrd.cpio');
    expect(sh).to.include('-chardev file,id=res,path=result.stream');
    expect(sh).to.not.include(out); // relative: the folder can move
    // The folder moves elsewhere and boots there.
    const moved = path.join(dir, 'moved');
    await fs.rename(out, moved);
    const q = await run('timeout', ['300', path.join(moved, 'qemu.sh')]);
    expect(q.code, q.stderr).to.equal(0);
    expect(q.stdout).to.include('reboot: Power down');
    const { readback } = await readRunStream(await fs.readFile(path.join(moved, 'result.stream')));
    expect(readback.names).to.deep.equal(['initramfs', 'realroot', 'done']);
    expect(readback.stage('realroot').mountAt('/')?.fsType).to.equal('ext4');
  });
});

describe('rootprobe shell under a terminal (tmux) @boot', function () {
  this.timeout(600_000);
  const sock = path.join(os.tmpdir(), `rootprobe-tmux-${process.pid}`); // a private tmux server
  const tmux = (...args: string[]) => spawnSync('tmux', ['-S', sock, ...args], { encoding: 'utf8' });
  let tmpdir: string;
  before(async () => {
    tmpdir = await fs.mkdtemp(path.join(os.tmpdir(), 'rootprobe-sh-'));
  });
  after(async () => {
    tmux('kill-server');
    await fs.rm(sock, { force: true });
    await fs.rm(tmpdir, { recursive: true, force: true });
  });

  const screen = () => plain(tmux('capture-pane', '-p', '-S', '-200', '-t', 's').stdout ?? '');
  async function waitFor(re: RegExp, secs: number): Promise<string> {
    for (let i = 0; i < secs * 4; i++) {
      const s = screen();
      if (re.test(s)) return s;
      await sleep(250);
    }
    throw new Error(`waited ${secs} s for ${re} on the terminal; it shows:\n${screen()}`);
  }

  /** Types a command line until `re` shows (keys typed the moment a prompt appears can be
   *  dropped while the guest's shell sets up its line editing: typed again then). */
  async function type(line: string, re: RegExp): Promise<string> {
    await sleep(500);
    for (let attempt = 1; ; attempt++) {
      tmux('send-keys', '-t', 's', line, 'Enter');
      try {
        return await waitFor(re, 15);
      } catch (e) {
        if (attempt === 3) throw e;
      }
    }
  }

  function start(args: string): void {
    tmux('kill-session', '-t', 's');
    const r = tmux(
      'new-session',
      '-d',
      '-s',
      's',
      '-x',
      '150',
      '-y',
      '50',
      `TMPDIR='${tmpdir}' '${process.execPath}' '${bin}' shell ${args}; echo "SHELL-EXIT=$?"; sleep 600`,
    );
    expect(r.status, r.stderr).to.equal(0);
  }

  it('stops in a guest shell after the stage; ls / works; exit lets the guest finish', async () => {
    start(`hello-initramfs --scenarios '${example}' --stage after`);
    // the prompt, maybe with a late kernel line after it ("[after] / # [    2.12] tsc: Refined TSC ...")
    await waitFor(/^\[after\] \/ #/m, 240);
    const s = await type('ls /; cat /proc/mounts | grep -c scratch', /^1\s*$/m);
    expect(s).to.match(/\bscratch\b/);
    expect(s).to.match(/\binit\b/);
    expect(qemus(tmpdir)).to.have.length(1);
    tmux('send-keys', '-t', 's', 'exit', 'Enter');
    const end = await waitFor(/SHELL-EXIT=\d+/, 120);
    expect(end).to.match(/stages reported: before, after, done/);
    expect(end).to.match(/SHELL-EXIT=0/);
    expect(qemus(tmpdir)).to.deep.equal([]);
  });

  it('after a root switch too; Ctrl-a x quits QEMU and nothing is left running', async () => {
    start(`switch_root --stage realroot`);
    await waitFor(/^\[realroot\] \/ #/m, 240);
    await type('ls /etc/rootprobe-disk', /^\/etc\/rootprobe-disk\s*$/m);
    tmux('send-keys', '-t', 's', 'C-a', 'x');
    const end = await waitFor(/SHELL-EXIT=\d+/, 60);
    expect(end).to.match(/stages reported: initramfs, realroot\n/);
    expect(end).to.match(/SHELL-EXIT=0/);
    expect(qemus(tmpdir)).to.deep.equal([]);
    expect((await fs.readdir(tmpdir)).filter((n) => !n.startsWith('tsx-'))).to.deep.equal([]);
  });
});
