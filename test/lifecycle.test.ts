import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import {
  closeSync,
  existsSync,
  ftruncateSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { runGuarded, settled, spawnGuarded, terminate, trackTempDir, tracked } from '../harness/lifecycle.ts';
import { buildEsp } from '../harness/firmware/esp.ts';
import { readUserEsp } from '../harness/firmware/user-esp.ts';
import { splitUki } from '../harness/firmware/uki.ts';
import { inspectInitramfs } from '../harness/external/segment.ts';
import { moveRunDir } from '../harness/run/run-scenario.ts';
import { buildInitramfs, FIXTURES } from './fixtures/qemu/initramfs.ts';

const CHILD = path.join(FIXTURES, 'lifecycle-child.ts');

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  // A zombie is dead for our purpose: read its state.
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

async function waitDead(pid: number, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (!pidAlive(pid)) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return !pidAlive(pid);
}

interface Started {
  child: ChildProcess;
  info: { pid: number; dir: string; privDir?: string; pdeathsig?: boolean };
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr: () => string;
}

/** Everything a test started, killed and removed after each test even when an assertion failed. */
const leftovers: Array<{ pids: number[]; dirs: string[] }> = [];
afterEach(() => {
  for (const l of leftovers.splice(0)) {
    for (const pid of l.pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone, as it should be */
      }
    }
    for (const d of l.dirs) rmSync(d, { recursive: true, force: true });
  }
});

/** Runs the fixture in its own node process and waits for its JSON line. */
async function startChild(mode: string, marker: string, initrd?: string): Promise<Started> {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, mode, marker, ...(initrd ? [initrd] : [])], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ROOTPROBE_KEEP_TMP: '' },
  });
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const left = { pids: [child.pid!], dirs: [] as string[] };
  leftovers.push(left);
  const info = await new Promise<Started['info']>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve(JSON.parse(out.slice(0, nl)));
    });
    void exit.then((e) => reject(new Error(`fixture exited early (${e.code ?? e.signal}): ${err}`)));
  });
  left.pids.push(info.pid);
  left.dirs.push(info.dir, ...(info.privDir ? [info.privDir] : []));
  return { child, info, exit, stderr: () => err };
}

describe('lifecycle: temp dirs and children in this process', () => {
  it('terminate() escalates to SIGKILL when a child ignores SIGTERM, within about 1 s', async () => {
    const { child } = spawnGuarded('sh', ['-c', 'trap "" TERM; echo ready; while :; do sleep 1; done'], {
      stdio: ['ignore', 'pipe', 'ignore'],
      detached: true,
    });
    await new Promise((r) => child.stdout!.once('data', r));
    const t0 = Date.now();
    await terminate(child, 1000);
    const took = Date.now() - t0;
    expect(child.signalCode).to.equal('SIGKILL');
    expect(took).to.be.within(900, 2500);
    expect(tracked().children).to.not.include(child.pid);
  });

  it('settled() gives the values in order, and throws the first failure only once every promise has ended', async () => {
    expect(await settled([Promise.resolve(1), new Promise<string>((r) => setTimeout(() => r('b'), 20))] as const)).to.deep.equal([1, 'b']);
    let slowEnded = false;
    const slow = new Promise<void>((r) =>
      setTimeout(() => {
        slowEnded = true;
        r();
      }, 50),
    );
    const err = await settled([Promise.reject(new Error('first')), slow, Promise.reject(new Error('second'))]).catch((e: Error) => e);
    expect((err as Error).message).to.equal('first');
    // Promise.all would have thrown at once, with the slow write still going
    expect(slowEnded).to.equal(true);
  });

  it('trackTempDir returns an untrack function', () => {
    const d = mkdtempSync(path.join(os.tmpdir(), 'rootprobe-lcunit-'));
    const untrack = trackTempDir(d);
    expect(tracked().tempDirs).to.include(d);
    untrack();
    expect(tracked().tempDirs).to.not.include(d);
    rmSync(d, { recursive: true });
  });
});

/** The process group of a live process (field 5 of /proc/PID/stat). */
function pgrpOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
}

/**
 * Runs `start` with a stand-in for the host tool `tool` first on PATH (it writes its pid and
 * sleeps), and says, while it runs, whether it is tracked and leads its own process group;
 * then kills it and returns how `start` ended.
 */
async function withStandIn(tool: string, start: () => Promise<unknown>): Promise<{ tracked: boolean; ownGroup: boolean; error: unknown }> {
  const bin = mkdtempSync(path.join(os.tmpdir(), 'rootprobe-lcunit-bin-'));
  const pidFile = path.join(bin, 'pid');
  writeFileSync(path.join(bin, tool), '#!/bin/sh\necho $$ > "$STANDIN_PIDFILE"\nexec sleep 30\n', { mode: 0o755 });
  const saved = { PATH: process.env.PATH, STANDIN_PIDFILE: process.env.STANDIN_PIDFILE };
  process.env.PATH = `${bin}:${process.env.PATH}`;
  process.env.STANDIN_PIDFILE = pidFile;
  const left = { pids: [] as number[], dirs: [bin] };
  leftovers.push(left);
  try {
    const ended = start().then(
      () => undefined,
      (e: unknown) => e,
    );
    const until = Date.now() + 10_000;
    while (!existsSync(pidFile) || !readFileSync(pidFile, 'utf8').trim()) {
      if (Date.now() > until) throw new Error(`the stand-in ${tool} never started: ${String(await ended)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    left.pids.push(pid);
    const out = { tracked: tracked().children.includes(pid), ownGroup: pgrpOf(pid) === pid };
    process.kill(pid, 'SIGKILL');
    return { ...out, error: await ended };
  } finally {
    process.env.PATH = saved.PATH;
    if (saved.STANDIN_PIDFILE === undefined) delete process.env.STANDIN_PIDFILE;
    else process.env.STANDIN_PIDFILE = saved.STANDIN_PIDFILE;
  }
}

describe("lifecycle: the firmware's and external mode's host tools run guarded", () => {
  let work: string;
  before(() => {
    work = mkdtempSync(path.join(os.tmpdir(), 'rootprobe-lcunit-tools-'));
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  it('runGuarded gives a Buffer to a command that stops reading early: its output, no EPIPE', async () => {
    const r = await runGuarded('head', ['-c', '3'], { input: Buffer.alloc(8 << 20, 0x61) });
    expect(r.code).to.equal(0);
    expect(r.stdout.toString()).to.equal('aaa');
  });

  const cases: Array<[string, string, () => Promise<unknown>]> = [
    ['buildEsp', 'mkfs.vfat', () => buildEsp([], path.join(work, 'esp.img'))],
    [
      'readUserEsp',
      'mdir',
      async () => {
        writeFileSync(path.join(work, 'user-esp.img'), Buffer.alloc(4096));
        return readUserEsp(path.join(work, 'user-esp.img'), mkdtempSync(path.join(work, 'copy-')));
      },
    ],
    [
      'splitUki',
      'objcopy',
      async () => {
        // The smallest PE that has a .linux section: what splitUki reads before objcopy runs.
        const pe = Buffer.alloc(0x400);
        pe.write('MZ', 0, 'latin1');
        pe.writeUInt32LE(0x80, 0x3c);
        pe.write('PE\0\0', 0x80, 'latin1');
        pe.writeUInt16LE(1, 0x86);
        pe.writeUInt16LE(0xf0, 0x94);
        pe.writeUInt16LE(0x20b, 0x98);
        pe.write('.linux', 0x98 + 0xf0, 'latin1');
        writeFileSync(path.join(work, 'uki.efi'), pe);
        return splitUki(path.join(work, 'uki.efi'), mkdtempSync(path.join(work, 'uki-')));
      },
    ],
    [
      'inspectInitramfs (an xz segment)',
      'xz',
      async () => {
        writeFileSync(path.join(work, 'initrd.xz'), Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 1, 2, 3, 4]));
        return inspectInitramfs(path.join(work, 'initrd.xz'));
      },
    ],
  ];
  for (const [what, tool, start] of cases) {
    it(`${what}: ${tool} is tracked, leads its own process group, and its death is an error naming it`, async () => {
      const r = await withStandIn(tool, start);
      expect(r.tracked, 'tracked').to.equal(true);
      expect(r.ownGroup, 'own process group').to.equal(true);
      expect(String((r.error as Error)?.message))
        .to.include(tool)
        .and.match(/killed by SIGKILL/);
    });
  }
});

describe('lifecycle: a separate rootprobe process', () => {
  let work: string;
  before(() => {
    work = mkdtempSync(path.join(os.tmpdir(), 'rootprobe-lctest-work-'));
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  for (const [sig, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
    ['SIGHUP', 129],
  ] as const) {
    it(`on ${sig}: kills its child, runs the cleanup callback, removes its temp dir, exits ${code}`, async () => {
      const marker = path.join(work, `marker-${sig}`);
      const s = await startChild('wait', marker);
      expect(pidAlive(s.info.pid)).to.equal(true);
      expect(existsSync(s.info.dir)).to.equal(true);
      s.child.kill(sig);
      const e = await s.exit;
      expect(e.code, s.stderr()).to.equal(code);
      expect(await waitDead(s.info.pid, 500)).to.equal(true);
      expect(existsSync(s.info.dir)).to.equal(false);
      expect(existsSync(marker)).to.equal(true);
    });
  }

  it('on a normal end: the exit handler kills the child and removes the temp dir', async () => {
    const marker = path.join(work, 'marker-end');
    const s = await startChild('end', marker);
    const e = await s.exit;
    expect(e.code, s.stderr()).to.equal(0);
    expect(await waitDead(s.info.pid, 500)).to.equal(true);
    expect(existsSync(s.info.dir)).to.equal(false);
    expect(existsSync(marker)).to.equal(true);
  });

  it('on an uncaught exception: the same', async () => {
    const marker = path.join(work, 'marker-throw');
    const s = await startChild('throw', marker);
    const e = await s.exit;
    expect(e.code).to.equal(1);
    expect(s.stderr()).to.include('deliberate uncaught exception');
    expect(await waitDead(s.info.pid, 500)).to.equal(true);
    expect(existsSync(s.info.dir)).to.equal(false);
  });

  it('SIGKILLed: no handler runs, but the parent-death signal kills the child', async () => {
    const s = await startChild('wait', path.join(work, 'marker-kill'));
    expect(s.info.pdeathsig).to.equal(true);
    s.child.kill('SIGKILL');
    await s.exit;
    expect(await waitDead(s.info.pid, 2000)).to.equal(true);
  });

  it('SIGKILLed right after spawning (racing the parent-death signal setup): the child still dies', async () => {
    for (let i = 0; i < 3; i++) {
      const s = await startChild('suicide', path.join(work, 'marker-suicide'));
      expect((await s.exit).signal).to.equal('SIGKILL');
      expect(await waitDead(s.info.pid, 2000), `round ${i}`).to.equal(true);
    }
  });
});

describe('lifecycle with a real QEMU @boot', () => {
  let work: string;
  let initrd: string;
  before(() => {
    work = mkdtempSync(path.join(os.tmpdir(), 'rootprobe-lcqemu-'));
    initrd = buildInitramfs('init-hang', work);
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  it('SIGINT to the harness process: its QEMU is gone and its temp folders removed', async () => {
    const s = await startChild('wait', path.join(work, 'marker-q-int'), initrd);
    expect(s.info.pid).to.be.above(0);
    expect(readFileSync(`/proc/${s.info.pid}/comm`, 'utf8')).to.match(/^qemu-system/);
    expect(existsSync(s.info.privDir!)).to.equal(true);
    s.child.kill('SIGINT');
    const e = await s.exit;
    expect(e.code, s.stderr()).to.equal(130);
    expect(await waitDead(s.info.pid, 500)).to.equal(true);
    expect(existsSync(s.info.dir)).to.equal(false);
    expect(existsSync(s.info.privDir!)).to.equal(false);
  });

  it('SIGKILL to the harness process: its QEMU dies too (parent-death signal)', async () => {
    const s = await startChild('wait', path.join(work, 'marker-q-kill'), initrd);
    expect(pidAlive(s.info.pid)).to.equal(true);
    s.child.kill('SIGKILL');
    await s.exit;
    expect(await waitDead(s.info.pid, 2000)).to.equal(true);
  });
});

describe('keeping a run folder as artifacts (moveRunDir)', () => {
  const made: string[] = [];
  after(() => {
    for (const d of made) rmSync(d, { recursive: true, force: true });
  });
  /** A run folder: a 64 MiB disk image with 1 MiB of data, a log, a listening socket. */
  async function runFolder(): Promise<{ dir: string; server: net.Server }> {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'rootprobe-keep-test-'));
    made.push(dir);
    const fd = openSync(path.join(dir, 'disk-root.img'), 'w');
    writeSync(fd, Buffer.alloc(1 << 20, 0x5a), 0, 1 << 20, 32 << 20);
    ftruncateSync(fd, 64 << 20);
    closeSync(fd);
    writeFileSync(path.join(dir, 'console.log'), 'hello\n');
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(path.join(dir, 'res.sock'), resolve));
    return { dir, server };
  }
  const allocated = (p: string): number => statSync(p).blocks * 512;

  it('moves it on one file system: nothing copied, the run folder is gone', async () => {
    const { dir, server } = await runFolder();
    const dest = path.join(mkdtempSync(path.join(os.tmpdir(), 'rootprobe-keep-dest-')), 'kept');
    made.push(path.dirname(dest));
    await moveRunDir(dir, dest);
    server.close();
    expect(existsSync(dir)).to.equal(false);
    expect(readFileSync(path.join(dest, 'console.log'), 'utf8')).to.equal('hello\n');
    expect(allocated(path.join(dest, 'disk-root.img'))).to.be.below(4 << 20);
  });

  it('copies it across file systems keeping disk images sparse and leaving sockets out', async function () {
    if (!existsSync('/dev/shm') || statSync('/dev/shm').dev === statSync(os.tmpdir()).dev) this.skip();
    const { dir, server } = await runFolder();
    const dest = path.join(mkdtempSync(path.join('/dev/shm', 'rootprobe-keep-dest-')), 'kept');
    made.push(path.dirname(dest));
    await moveRunDir(dir, dest);
    server.close();
    const img = path.join(dest, 'disk-root.img');
    expect(statSync(img).size).to.equal(64 << 20);
    expect(allocated(img), 'a 64 MiB image with 1 MiB of data').to.be.below(4 << 20);
    expect(
      readFileSync(img)
        .subarray(32 << 20, (32 << 20) + 4)
        .toString(),
    ).to.equal('ZZZZ');
    expect(readFileSync(path.join(dest, 'console.log'), 'utf8')).to.equal('hello\n');
    expect(existsSync(path.join(dest, 'res.sock'))).to.equal(false);
  });
});
