/**
 * The guest probe (harness/guest/probe.c), built as the toolkit builds it and run here on the
 * host: it reads the host's /proc the way it reads a guest's, so its frame and snapshot can be
 * checked against what this process knows about itself. The guest side is covered by every
 * booting test.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { probeBinary, staticProgram } from '../harness/guest/toolkit.ts';
import { decodeFrames, type FrameEvent } from '../harness/readback/frame.ts';
import { parseSnapshot } from '../harness/readback/snapshot.ts';
import { readNewc } from '../harness/cpio/index.ts';
import { isStatic, readElf } from '../harness/image/elf.ts';
import { usePrivateCache } from './support/cache.ts';

function runProbe(bin: string, args: string[], cwd?: string) {
  return spawnSync(bin, args, { cwd, encoding: 'buffer', timeout: 20_000 });
}

describe('the guest probe, run on the host', function () {
  this.timeout(60_000);
  let bin: string;
  let dir: string;

  before(async () => {
    bin = await probeBinary();
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rootprobe-probe-test-'));
  });
  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('is a static binary (it must run on roots with no libc)', async () => {
    const elf = await readElf(bin);
    expect(isStatic(elf), `needs ${elf.interp ?? ''} ${elf.needed.join(' ')}`).to.equal(true);
  });

  it('sends one whole frame whose snapshot holds the mount tree, itself, files, commands and values', async () => {
    const file = path.join(dir, 'hostname-copy');
    await fs.writeFile(file, 'witness-text\n');
    const r = runProbe(bin, [
      'host-1',
      '-f',
      file,
      '-f',
      '/no/such/file',
      '-c',
      'greet',
      'echo hi; echo err >&2; exit 3',
      '-v',
      'answer=4=2',
    ]);
    // without -o it writes to a ttyS1 it does not have here: status 74, and says so
    expect(r.status, r.stderr.toString()).to.equal(74);
    expect(r.stderr.toString()).to.match(/cannot send stage host-1/);

    const out = runProbe(bin, [
      'host-1',
      '-f',
      file,
      '-f',
      '/no/such/file',
      '-c',
      'greet',
      'echo hi; echo err >&2; exit 3',
      '-v',
      'answer=4=2',
      '-o',
      '-',
    ]);
    expect(out.status, out.stderr.toString()).to.equal(0);
    const events = decodeFrames(out.stdout);
    expect(events.map((e) => e.kind)).to.deep.equal(['frame']);
    const frame = events[0] as FrameEvent;
    expect(frame.stage).to.equal('host-1');
    const stage = await parseSnapshot(frame.payload);
    expect(stage.name).to.equal('host-1');
    expect(stage.uname).to.equal(os.release());
    expect(stage.meta.probe).to.equal('c');
    expect(stage.meta.own_proc).to.equal('0');
    expect(stage.mountinfo.entries.some((m) => m.mountPoint === '/')).to.equal(true);
    expect(stage.pid1Mountinfo.entries.length).to.be.greaterThan(0);

    const me = stage.processes.find((p) => p.pid === stage.probePid)!;
    expect(me, 'the probe itself').to.exist;
    expect(me.probe).to.equal(true);
    expect(me.comm).to.equal('probe');
    expect(me.exe).to.equal(await fs.realpath(bin));
    expect(me.cwd).to.equal(process.cwd());
    expect(me.root).to.equal('/');
    expect(me.ppid).to.equal(process.pid);
    expect(me.cmdline.slice(1, 2)).to.deep.equal(['host-1']);
    expect(me.fds.map((f) => f.fd)).to.include.members([0, 1, 2]);

    const parent = stage.processes.find((p) => p.pid === process.pid)!;
    expect(parent.probe).to.equal(false);
    expect(parent.cmdline[0]).to.match(/node/);
    expect(parent.fds.length).to.be.greaterThan(2);
    const kthread = stage.processes.find((p) => p.ppid === 2);
    if (kthread) expect(kthread.cmdline).to.deep.equal([]);

    expect(stage.files[file]?.toString()).to.equal('witness-text\n');
    expect(Object.keys(stage.files)).to.not.include('/no/such/file');
    expect(stage.commands.greet).to.deep.equal({ output: 'hi\nerr\n', status: 3 });
    expect(stage.vars.answer).to.equal('4=2');
  });

  it('writes a gzip payload whose members are plain files with the protocol names', async () => {
    const out = runProbe(bin, ['names', '-o', '-']);
    const frame = decodeFrames(out.stdout)[0] as FrameEvent;
    expect(frame.payload.subarray(0, 2).toString('hex')).to.equal('1f8b');
    const names = (await readNewc(frame.payload)).map((e) => e.path);
    expect(names).to.include.members(['meta', 'mountinfo.self', 'mountinfo.1', `proc/1/comm`]);
    for (const n of names) expect(n).to.match(/^(meta|mountinfo\.(self|1)|proc\/[0-9]+\/(comm|ppid|cmdline|exe|cwd|root|fd))$/);
  });

  it('refuses bad calls before it reads anything, with status 64 and a message', () => {
    const cases: Array<[string[], RegExp]> = [
      [[], /usage: probe STAGE/],
      [['-f', 'x'], /usage: probe STAGE/],
      [['bad stage'], /bad stage name 'bad stage'/],
      [['x'.repeat(65)], /bad stage name/],
      [['s', '-f'], /-f needs a path/],
      [['s', '-c', 'name'], /-c needs a name and a command/],
      [['s', '-c', 'a/b', 'true'], /bad command name 'a\/b'/],
      [['s', '-v', 'novalue'], /-v needs NAME=VALUE/],
      [['s', '-v', '../x=1'], /bad value name '\.\.\/x'/],
      [['s', '--frobnicate'], /unknown argument '--frobnicate'/],
    ];
    for (const [args, message] of cases) {
      const r = runProbe(bin, args);
      expect(r.status, `probe ${args.join(' ')}`).to.equal(64);
      expect(r.stderr.toString(), `probe ${args.join(' ')}`).to.match(message);
      expect(r.stdout.length, `probe ${args.join(' ')} sent something`).to.equal(0);
    }
  });

  it('keeps the decorations of link texts: a deleted cwd reads " (deleted)"', async () => {
    const gone = path.join(dir, 'gone');
    await fs.mkdir(gone);
    // the shell enters the folder, removes it, and runs the probe from there
    const r = spawnSync('sh', ['-c', `cd '${gone}' && rmdir '${gone}' && exec '${bin}' deleted-cwd -o -`], { encoding: 'buffer' });
    expect(r.status, r.stderr.toString()).to.equal(0);
    const stage = await parseSnapshot((decodeFrames(r.stdout)[0] as FrameEvent).payload);
    const me = stage.processes.find((p) => p.pid === stage.probePid)!;
    expect(me.cwd).to.equal(`${gone} (deleted)`);
  });
});

describe("a scenario's C helper (ctx.program)", function () {
  this.timeout(60_000);
  // The test helpers are built into a cache of their own, not the user's.
  const tmp = usePrivateCache('rootprobe-program-test-');

  it('is built static from its source, runs, and is cached by its content', async () => {
    const src = path.join(tmp.dir, 'hello.c');
    await fs.writeFile(src, '#include <stdio.h>\nint main(void) { puts("hello from a helper"); return 3; }\n');
    const bin = await staticProgram(src, { purpose: 'a test helper' });
    expect(isStatic(await readElf(bin))).to.equal(true);
    const r = spawnSync(bin, [], { encoding: 'utf8' });
    expect(r.status).to.equal(3);
    expect(r.stdout).to.equal('hello from a helper\n');
    expect(bin.startsWith(path.join(tmp.dir, 'cache', 'programs') + path.sep), bin).to.equal(true);
    // Another source: another binary, another cache entry.
    const src2 = path.join(tmp.dir, 'other', 'hello.c');
    await fs.mkdir(path.dirname(src2));
    await fs.writeFile(src2, 'int main(void) { return 4; }\n');
    const bin2 = await staticProgram(src2, { purpose: 'a test helper' });
    expect(bin2).to.not.equal(bin);
    expect(spawnSync(bin2, []).status).to.equal(4);
  });

  it("names the helper and quotes the compiler when it does not build, and a missing file is the scenario's mistake", async () => {
    const bad = path.join(tmp.dir, 'bad.c');
    await fs.writeFile(bad, 'int main(void) { return undefined_thing; }\n');
    const e1 = await staticProgram(bad, { purpose: "helper bad.c of scenario 'x'" }).then(
      () => null,
      (e: Error) => e,
    );
    expect(e1?.name).to.equal('SetupError');
    expect(e1?.message).to.match(/building helper bad\.c of scenario 'x' failed:[\s\S]*undefined_thing/);
    const e2 = await staticProgram(path.join(tmp.dir, 'missing.c'), { purpose: 'a test helper' }).then(
      () => null,
      (e: Error) => e,
    );
    expect(e2?.name).to.equal('DefinitionError');
    expect(e2?.message).to.include('missing.c');
  });
});
