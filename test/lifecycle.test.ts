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
import { spawnGuarded, terminate, trackTempDir, tracked } from '../harness/lifecycle.ts';
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

  it('trackTempDir returns an untrack function', () => {
    const d = mkdtempSync(path.join(os.tmpdir(), 'rootprobe-lcunit-'));
    const untrack = trackTempDir(d);
    expect(tracked().tempDirs).to.include(d);
    untrack();
    expect(tracked().tempDirs).to.not.include(d);
    rmSync(d, { recursive: true });
  });
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
