/**
 * Interrupted work leaves nothing (issue 13, item 3): a real kernel fetch (debian/trixie into a
 * cache of the test's own) stopped by SIGTERM while apt-get downloads and by SIGINT while
 * dpkg-deb unpacks leaves no cache temporary, download folder or lock, and no process it
 * started survives it; a fetch and a boot ended by SIGKILL leave theirs, and the next start
 * of rootprobe removes them (harness/sweep.ts), never what a live process owns.
 */
import { expect } from 'chai';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, promises as fs, readdirSync, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ownerTag, parseOwnerTag, processStartTime } from '../harness/lifecycle.ts';
import { findLeftovers, sweepLeftovers } from '../harness/sweep.ts';
import { BIN, cli } from './support/cli.ts';

/** Every process below `pid` now (children, grandchildren, ...), with its start time. */
function descendants(pid: number): Array<{ pid: number; start: number; cmd: string }> {
  const parent = new Map<number, number>();
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'latin1');
      parent.set(Number(p), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      /* gone */
    }
  }
  const out: Array<{ pid: number; start: number; cmd: string }> = [];
  const walk = (pp: number): void => {
    for (const [c, ppid] of parent) {
      if (ppid !== pp) continue;
      let cmd = '';
      try {
        cmd = readFileSync(`/proc/${c}/cmdline`, 'latin1').replaceAll('\0', ' ').trim();
      } catch {
        /* gone */
      }
      out.push({ pid: c, start: processStartTime(c) ?? -1, cmd });
      walk(c);
    }
  };
  walk(pid);
  return out;
}

function stillRunning(ps: Array<{ pid: number; start: number; cmd: string }>): string[] {
  return ps
    .filter((p) => {
      const st = processStartTime(p.pid);
      if (st === undefined || st !== p.start) return false;
      const state = readFileSync(`/proc/${p.pid}/stat`, 'latin1');
      return state.slice(state.lastIndexOf(')') + 2)[0] !== 'Z';
    })
    .map((p) => `${p.pid} ${p.cmd}`);
}

async function walkNames(dir: string, depth = 6): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fs.readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const p = path.join(dir, e.name);
    out.push(p);
    if (e.isDirectory() && depth > 0 && !e.name.startsWith('linux') && e.name !== 'root') out.push(...(await walkNames(p, depth - 1)));
  }
  return out;
}

/** Names that only interrupted work leaves: cache temporaries, apt download folders, locks, rootprobe-* in TMPDIR. */
async function leftoverNames(cache: string, tmp: string): Promise<string[]> {
  const inCache = (await walkNames(cache)).filter((p) => /\/(\.tmp-[^/]*|download-[^/]*|[^/]*\.lock|[^/]*\.\d+\.tmp)$/.test(p));
  const inTmp = (await fs.readdir(tmp).catch(() => [] as string[])).filter((n) => n.startsWith('rootprobe-')).map((n) => path.join(tmp, n));
  return [...inCache, ...inTmp];
}

interface Interrupted {
  code: number | null;
  signal: NodeJS.Signals | null;
  output: string;
  before: Array<{ pid: number; start: number; cmd: string }>;
}

/** Starts `rootprobe ARGS`, sends `sig` when its output matches `when`, and waits for its end. */
function interruptAt(args: string[], env: Record<string, string>, when: RegExp, sig: NodeJS.Signals, settleMs = 300): Promise<Interrupted> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, CI: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let sent = false;
    let before: Interrupted['before'] = [];
    const seen = (d: Buffer): void => {
      output += d;
      if (!sent && when.test(output)) {
        sent = true;
        // Let the step start its child processes, note them, then signal.
        setTimeout(() => {
          before = descendants(child.pid!);
          child.kill(sig);
        }, settleMs);
      }
    };
    child.stdout.on('data', seen);
    child.stderr.on('data', seen);
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, output, before }));
  });
}

async function waitGone(ps: Interrupted['before'], ms = 5000): Promise<string[]> {
  const until = Date.now() + ms;
  let left = stillRunning(ps);
  while (left.length && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 100));
    left = stillRunning(ps);
  }
  return left;
}

describe('sweep: leftovers of processes that are gone, never of live ones', () => {
  let dir: string;
  let deadTag: string;
  let deadPid: number;
  let deadStart: number;
  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sweep-test-'));
    // A real process that has ended: its pid and start time make a dead owner's tag.
    const r = spawnSync('sh', ['-c', 'cut -d" " -f22 /proc/$$/stat; echo $$'], { encoding: 'utf8' });
    [deadStart, deadPid] = r.stdout.trim().split('\n').map(Number);
    deadTag = `rp${deadPid}.${deadStart.toString(36)}`;
  });
  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('parses owner tags and knows this process is alive', () => {
    expect(parseOwnerTag(`.tmp-key-${ownerTag()}-AbC123`)).to.deep.equal({ pid: process.pid, start: processStartTime(process.pid) });
    expect(parseOwnerTag('rootprobe-q-rp12.3f-zzzzzz')).to.deep.equal({ pid: 12, start: parseInt('3f', 36) });
    expect(parseOwnerTag('rootprobe-q-abcdef')).to.equal(undefined);
    // an older rootprobe's random suffix that happens to look like a tag is not one
    expect(parseOwnerTag('rootprobe-q-p1s2ab')).to.equal(undefined);
    expect(parseOwnerTag('rootprobe-q-rp1.2a')).to.equal(undefined);
    expect(parseOwnerTag('rootprobe-switch_root-XyZ123')).to.equal(undefined);
  });

  it("removes a dead owner's cache temporaries, download folders, locks and TMPDIR folders; keeps live and untagged ones", async () => {
    const cache = path.join(dir, 'cache');
    const tmp = path.join(dir, 'tmp');
    const live = ownerTag();
    const make = async (p: string, file?: string): Promise<string> => {
      await fs.mkdir(p, { recursive: true });
      if (file !== undefined) await fs.writeFile(path.join(p, 'pid'), file);
      return p;
    };
    const dead = [
      await make(path.join(cache, 'kernels', `.tmp-debian-x-${deadTag}-AAAAAA`)),
      await make(path.join(cache, 'images', 'deep', `.tmp-cpio-1-${deadTag}-BBBBBB`)),
      await make(path.join(cache, 'apt', 'trixie', `download-${deadTag}-CCCCCC`)),
      await make(path.join(cache, 'kernels', 'k1.lock'), `${deadPid} ${deadStart}`),
      // an older rootprobe's temporary: untagged, and its key's lock is held by nobody alive
      await make(path.join(cache, 'kernels', '.tmp-old-DDDDDD')),
      await make(path.join(tmp, `rootprobe-q-${deadTag}-EEEEEE`)),
      await make(path.join(tmp, `rootprobe-switch_root-${deadTag}-FFFFFF`)),
    ];
    await fs.mkdir(path.join(cache, 'kernels', 'old.lock'));
    await fs.writeFile(path.join(cache, 'kernels', 'old.lock', 'pid'), '999999999');
    dead.push(path.join(cache, 'kernels', 'old.lock'));
    const kept = [
      await make(path.join(cache, 'kernels', `.tmp-debian-y-${live}-GGGGGG`)),
      await make(path.join(cache, 'apt', 'trixie', `download-${live}-HHHHHH`)),
      await make(path.join(cache, 'kernels', 'k2.lock'), `${process.pid} ${processStartTime(process.pid)}`),
      // an older rootprobe's temporary whose lock is held by a live process
      await make(path.join(cache, 'kernels', '.tmp-held-IIIIII')),
      await make(path.join(cache, 'kernels', 'held.lock'), String(process.pid)),
      await make(path.join(tmp, `rootprobe-q-${live}-JJJJJJ`)),
      await make(path.join(tmp, 'rootprobe-untagged-KKKKKK')),
      await make(path.join(tmp, 'someone-else-LLLLLL')),
      // a live pid with another start time is a reused pid: gone
    ];
    const reused = await make(path.join(tmp, `rootprobe-q-rp${process.pid}.1-MMMMMM`));
    dead.push(reused);
    // The untagged temporary with no lock is old enough to be someone's leftover.
    const old = new Date(Date.now() - 3600_000);
    await fs.utimes(path.join(cache, 'kernels', '.tmp-old-DDDDDD'), old, old);

    const found = await findLeftovers({ cache, tmpDirs: [tmp] });
    expect(found.map((f) => f.path).sort()).to.deep.equal([...dead].sort());
    const removed = await sweepLeftovers({ cache, tmpDirs: [tmp] });
    expect(removed.length).to.equal(dead.length);
    for (const p of dead) expect(existsSync(p), p).to.equal(false);
    for (const p of kept) expect(existsSync(p), p).to.equal(true);
  });
});

describe('interrupted kernel fetch and boot leave nothing @boot', function () {
  this.timeout(600_000);
  let dir: string;
  let cache: string;
  let tmp: string;
  let env: Record<string, string>;
  const fetchArgs = ['run', 'switch_root', '--kernel', 'debian/trixie', '--jobs', '1', '--artifacts', 'x'];

  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'interrupt-test-'));
    cache = path.join(dir, 'cache');
    tmp = path.join(dir, 'tmp');
    await fs.mkdir(tmp);
    env = { ROOTPROBE_CACHE: cache, TMPDIR: tmp };
  });
  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('SIGTERM while apt-get downloads: exit 143, no temporary, download folder or lock, no child left', async () => {
    const r = await interruptAt(fetchArgs, env, /downloading linux-image/, 'SIGTERM');
    expect(r.code, r.output).to.equal(143);
    expect(r.before.map((p) => p.cmd).join('\n'), 'apt-get was running').to.match(/apt-get/);
    expect(await waitGone(r.before)).to.deep.equal([]);
    expect(await leftoverNames(cache, tmp)).to.deep.equal([]);
    expect(r.output).to.not.match(/internal error/);
  });

  it('SIGINT while dpkg-deb unpacks: exit 130, nothing left, dpkg-deb and its tar gone', async () => {
    const r = await interruptAt(fetchArgs, env, /unpacking linux-image/, 'SIGINT', 200);
    expect(r.code, r.output).to.equal(130);
    expect(r.before.map((p) => p.cmd).join('\n'), 'dpkg-deb was running').to.match(/dpkg-deb/);
    expect(await waitGone(r.before)).to.deep.equal([]);
    expect(await leftoverNames(cache, tmp)).to.deep.equal([]);
  });

  it('SIGKILL while dpkg-deb unpacks leaves the entry being built; the next start removes it', async () => {
    const r = await interruptAt(fetchArgs, env, /unpacking linux-image/, 'SIGKILL', 200);
    expect(r.signal).to.equal('SIGKILL');
    // The parent-death signal ends what rootprobe started, even after SIGKILL.
    expect(await waitGone(r.before)).to.deep.equal([]);
    const left = await leftoverNames(cache, tmp);
    expect(left.join('\n')).to.match(/\.tmp-debian-trixie/);
    const next = await cli(['kernels'], { env });
    expect(next.code, next.stderr).to.equal(0);
    expect(next.stderr).to.match(/removed \d+ leftover/);
    expect(await leftoverNames(cache, tmp)).to.deep.equal([]);
  });

  it('SIGKILL during a boot leaves its TMPDIR folders; the next start removes them, and the fetch then completes', async () => {
    const r = await interruptAt(fetchArgs, env, /^start /m, 'SIGKILL', 1500);
    expect(r.signal).to.equal('SIGKILL');
    expect(await waitGone(r.before)).to.deep.equal([]);
    const left = await leftoverNames(cache, tmp);
    expect(left.join('\n')).to.match(/rootprobe-q-rp\d+\./);
    const next = await cli(['kernels'], { env });
    expect(next.stderr).to.match(/removed \d+ leftover/);
    expect(await leftoverNames(cache, tmp)).to.deep.equal([]);
  });
});
