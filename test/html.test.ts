/**
 * The mount tree model (harness/report/tree.ts) and its two views, the HTML page (html.ts)
 * and the terminal (tree-text.ts, `rootprobe show`), on a recorded real report of switch_root
 * and pivot_root on bookworm (test/fixtures/report/switch-pivot.json, written by
 * `rootprobe run switch_root pivot_root --json`) and on mountinfo written for the edge cases.
 */
import { expect } from 'chai';
import { promises as fs, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseMountinfoLine } from '../harness/readback/mountinfo.ts';
import type { ProcessInfo, StageJSON } from '../harness/readback/snapshot.ts';
import type { RunRecord } from '../harness/run/run-scenario.ts';
import type { MatrixReport } from '../harness/report/formats.ts';
import { consoleLineKind, marksById, processRows, runTrees, stageTree } from '../harness/report/tree.ts';
import { diffHtml, esc, reportHtml } from '../harness/report/html.ts';
import { artifactConsoleLog } from '../harness/report/console-log.ts';
import { KernelLogWatcher } from '../harness/verdict/kernel-log.ts';
import { mountTreeText, processText, treeText } from '../harness/report/tree-text.ts';
import { Mountinfo } from '../harness/readback/mountinfo.ts';
import { diffRuns } from '../harness/report/diff.ts';
import { BIN, cli, ROOT, run } from './support/cli.ts';

const FIXTURE = path.join(ROOT, 'test/fixtures/report/switch-pivot.json');
// A real console with a WARNING and a BUG (lkdtm), 32 lines: more than a record's 20-line tail.
const LKDTM = readFileSync(path.join(ROOT, 'test/fixtures/verdict/lkdtm-console.txt'), 'utf8').replace(/\n$/, '').split('\n');

/** What the run would have recorded of a console: its kernel reports (as the watcher finds them) and its last 20 lines. */
function consoleRecord(lines: string[]): Pick<RunRecord, 'kernelReports' | 'consoleTail'> {
  const w = new KernelLogWatcher();
  for (const l of lines) w.push(l);
  return { kernelReports: w.reports, consoleTail: lines.slice(-20) };
}
const report: MatrixReport = JSON.parse(readFileSync(FIXTURE, 'utf8'));
const runOf = (scenario: string): RunRecord => report.runs.find((r) => r.scenario === scenario)!;
const treeOf = (scenario: string, stage: string) => runTrees(runOf(scenario).stages).find((t) => t.stage === stage)!;

function stage(name: string, mountinfo: string[], processes: Partial<ProcessInfo>[] = []): StageJSON {
  return {
    name,
    seq: 0,
    uname: 'test',
    probePid: 999,
    uptime: null,
    meta: {},
    mountinfo: mountinfo.map((l, i) => parseMountinfoLine(l, i + 1)),
    pid1Mountinfo: [],
    processes: processes.map((p) => ({
      pid: 1,
      ppid: 0,
      comm: 'init',
      cmdline: ['init'],
      exe: '/init',
      cwd: '/',
      root: '/',
      fds: [],
      probe: false,
      ...p,
    })),
    files: {},
    commands: {},
    vars: {},
  };
}

const ROOTFS = '1 1 0:2 / / rw - rootfs rootfs rw';
const PROC = '22 1 0:21 / /proc rw,relatime - proc proc rw';

describe('mount tree model: the recorded switch_root run', () => {
  it('initramfs: rootfs is the top of the tree, with proc, sys and dev below it, nothing marked', () => {
    const t = treeOf('switch_root', 'initramfs');
    expect(t.roots.map((n) => n.mountId)).to.deep.equal([1]);
    expect(t.roots[0]!.entry!.fsType).to.equal('rootfs');
    expect(t.roots[0]!.children.map((n) => n.entry!.mountPoint)).to.deep.equal(['/proc', '/sys', '/dev']);
    expect(t.nodes.every((n) => n.marks.length === 0)).to.equal(true);
  });

  it('realroot: rootfs is hidden below the ext4 (not listed, still its parent), the ext4 is new, proc/sys/dev moved onto it', () => {
    const t = treeOf('switch_root', 'realroot');
    const m = marksById(t);
    const rootfs = t.nodes.find((n) => n.mountId === 1)!;
    expect(rootfs.listed).to.equal(false);
    expect(rootfs.hidden).to.equal(true);
    expect(rootfs.entry!.fsType).to.equal('rootfs');
    expect(m.get(1)).to.deep.equal(['hidden']);
    const ext4 = t.nodes.find((n) => n.entry?.fsType === 'ext4')!;
    expect(rootfs.hiddenBelow).to.equal(ext4.mountId);
    expect(ext4.marks).to.deep.equal(['new']);
    expect(rootfs.children).to.deep.equal([ext4]);
    expect(ext4.children.map((c) => [c.entry!.mountPoint, c.marks.join()])).to.deep.equal([
      ['/proc', 'moved'],
      ['/sys', 'moved'],
      ['/dev', 'moved'],
    ]);
    expect(ext4.children[0]!.before).to.deep.equal({ parentId: 1, mountPoint: '/proc' });
  });

  it('done: rootfs stays hidden, without a new mark', () => {
    const t = treeOf('switch_root', 'done');
    const rootfs = t.nodes.find((n) => n.mountId === 1)!;
    expect(rootfs.hidden).to.equal(true);
    expect(rootfs.marks).to.deep.equal([]);
  });
});

describe('mount tree model: the recorded pivot_root run', () => {
  it('pivoted: the old root (rootfs) is visible under /var/run/rootfs, moved, below the ext4 that is now /', () => {
    const t = treeOf('pivot_root', 'pivoted');
    const old = t.nodes.find((n) => n.entry?.fsType === 'rootfs')!;
    const ext4 = t.nodes.find((n) => n.entry?.fsType === 'ext4')!;
    expect(old.entry!.mountPoint).to.equal('/var/run/rootfs');
    expect(old.listed).to.equal(true);
    expect(old.hidden).to.equal(false);
    expect(old.marks).to.deep.equal(['moved']);
    expect(old.before!.mountPoint).to.equal('/');
    expect(ext4.entry!.mountPoint).to.equal('/');
    expect(ext4.marks).to.deep.equal(['moved']);
    expect(ext4.before!.mountPoint).to.equal('/newroot');
    expect(ext4.children).to.include(old);
  });

  it('back: the pivot home: rootfs at / again and the disk at /mnt, both moved', () => {
    const t = treeOf('pivot_root', 'back');
    const old = t.nodes.find((n) => n.entry?.fsType === 'rootfs')!;
    const ext4 = t.nodes.find((n) => n.entry?.fsType === 'ext4')!;
    expect([old.entry!.mountPoint, old.marks]).to.deep.equal(['/', ['moved']]);
    expect([ext4.entry!.mountPoint, ext4.marks]).to.deep.equal(['/mnt', ['moved']]);
    expect(old.children).to.include(ext4);
  });

  it('a parent never listed in any stage (the real rootfs below the bind of /) is a node known only by its id', () => {
    const t = treeOf('pivot_root', 'initramfs');
    const top = t.roots[0]!;
    expect(top.entry).to.equal(undefined);
    expect(top.listed).to.equal(false);
    expect(top.children.map((c) => c.entry!.mountPoint)).to.deep.equal(['/']);
  });

  it("the processes: pivot_root changed the sleeper's exe to the old root's path, with the old text kept", () => {
    const r = runOf('pivot_root');
    const i = r.stages.findIndex((s) => s.name === 'pivoted');
    const rows = processRows(r.stages[i]!, r.stages[i - 1]);
    const sleeper = rows.find((x) => x.proc.comm === 'sleeper')!;
    expect(sleeper.proc.exe).to.equal('/var/run/rootfs/bin/sleeper');
    expect(sleeper.changed.exe).to.equal('/bin/sleeper');
    expect(rows.filter((x) => x.kernelThread).length).to.be.greaterThan(10);
    expect(rows.find((x) => x.proc.pid === 1)!.kernelThread).to.equal(false);
  });
});

describe('mount tree model: edge cases', () => {
  it('a second mount at the same point hides the first', () => {
    const a = stage('a', [ROOTFS, '30 1 0:40 / /mnt rw - tmpfs one rw']);
    const b = stage('b', [ROOTFS, '30 1 0:40 / /mnt rw - tmpfs one rw', '31 1 0:41 / /mnt rw - tmpfs two rw']);
    const t = stageTree(b, a);
    expect(marksById(t).get(30)).to.deep.equal(['hidden']);
    expect(t.nodes.find((n) => n.mountId === 30)!.hiddenBelow).to.equal(31);
    expect(marksById(t).get(31)).to.deep.equal(['new']);
  });

  it('a later mount at an ancestor of the point hides it; a mount mounted on it does not', () => {
    const a = stage('a', [ROOTFS, '30 1 0:40 / /mnt rw - tmpfs t rw', '31 30 0:41 / /mnt/x rw - tmpfs x rw']);
    const b = stage('b', [...a.mountinfo.map((e) => e.raw), '32 1 0:42 / / rw - tmpfs over rw']);
    const t = stageTree(b, a);
    expect(t.nodes.find((n) => n.mountId === 30)!.hidden).to.equal(true);
    expect(t.nodes.find((n) => n.mountId === 31)!.hidden).to.equal(true);
    expect(t.nodes.find((n) => n.mountId === 1)!.hidden).to.equal(true);
    expect(t.nodes.find((n) => n.mountId === 32)!.hidden).to.equal(false);
    // its children listed before it (as after a move) are not hidden by their own parent
    const moved = stage('c', ['40 41 0:21 / /proc rw - proc proc rw', '41 1 8:0 / / rw - ext4 /dev/vda rw']);
    expect(stageTree(moved).nodes.find((n) => n.mountId === 40)!.hidden).to.equal(false);
  });

  it('an unmounted mount is gone, drawn under its old parent; a reused id with another file system is new', () => {
    const a = stage('a', [ROOTFS, PROC, '30 1 0:40 / /mnt rw - tmpfs t rw']);
    const b = stage('b', [ROOTFS, '30 1 0:50 / /srv rw - ext4 /dev/vdb rw']);
    const t = stageTree(b, a);
    const gone = t.nodes.find((n) => n.mountId === 22)!;
    expect(gone.marks).to.deep.equal(['gone']);
    expect(gone.gone).to.equal(true);
    expect(t.roots[0]!.children).to.include(gone);
    expect(marksById(t).get(30)).to.deep.equal(['new']);
  });

  it('a mount moved and hidden at once carries both marks', () => {
    const a = stage('a', [ROOTFS, '30 1 0:40 / /a rw - tmpfs t rw']);
    const b = stage('b', [ROOTFS, '30 1 0:40 / /b rw - tmpfs t rw', '31 1 0:41 / /b rw - tmpfs u rw']);
    expect(marksById(stageTree(b, a)).get(30)).to.deep.equal(['moved', 'hidden']);
  });

  it('console lines: panics and warnings are told apart from the rest', () => {
    expect(consoleLineKind('[    1.0] Kernel panic - not syncing: VFS: Unable to mount root fs')).to.equal('panic');
    expect(consoleLineKind('[    1.0] WARNING: CPU: 0 PID: 1 at fs/namespace.c:123')).to.equal('warning');
    expect(consoleLineKind('[    1.0] EXT4-fs (vda): mounted filesystem')).to.equal(undefined);
  });
});

describe('HTML report', () => {
  it('is one self-contained page: no URL fetched, one inline script, a CSP that forbids loading anything', () => {
    const html = reportHtml(report);
    expect(html).to.match(/^<!DOCTYPE html>/);
    expect(html).to.include(`content="default-src 'none'`);
    expect(html).to.not.match(/\b(src|href)="(https?:)?\/\//);
    expect(html.match(/<script/g)).to.have.length(1);
    expect(html.match(/<link /g)).to.equal(null);
    for (const r of report.runs) {
      expect(html).to.include(`data-scenario="${r.scenario}"`);
      for (const s of r.stages) expect(html).to.include(`data-stage="${s.name}"`);
    }
  });

  it('escapes what the guest sent: a mount point and a command line with markup in them stay text', () => {
    const evil = '/mnt/<script>alert(1)</script>"&\'';
    const s = stage(
      'x',
      [ROOTFS, `30 1 0:40 / ${evil.replaceAll(' ', '\\040')} rw - tmpfs <b>src</b> rw`],
      [
        {
          pid: 1,
          comm: '<i>init',
          cmdline: ['/init', '<img src=x onerror=alert(2)>'],
          exe: '/init <x> (deleted)',
          cwd: '(unreachable)/<y>',
        },
      ],
    );
    const run = { ...runOf('switch_root'), stages: [s], message: 'fail <em>here</em>', consoleTail: ['<blink>'] };
    const html = reportHtml({ runs: [run] });
    expect(html).to.not.include('<script>alert');
    expect(html).to.not.include('<img src=x');
    expect(html).to.not.include('<b>src</b>');
    expect(html).to.not.include('<em>here');
    expect(html).to.not.include('<blink>');
    expect(html).to.include(esc(evil));
    expect(html).to.include('&lt;img src=x onerror=alert(2)&gt;');
    expect(html).to.include('class="deco deleted"');
    expect(html).to.include('class="deco unreachable"');
  });

  it('a run that reported no stage (a panic in early boot) still gets its verdict, message and console', () => {
    const run: RunRecord = {
      ...runOf('switch_root'),
      outcome: 'panic',
      message: 'Kernel panic - not syncing: VFS',
      stages: [],
      stagesReported: [],
    };
    const html = reportHtml({ runs: [run] });
    expect(html).to.include('<span class="verdict panic">PANIC</span>');
    expect(html).to.include('<pre class="message">Kernel panic - not syncing: VFS</pre>');
    expect(html).to.not.include('class="stage"');
    expect(html).to.include('<details class="console" open>');
  });

  it('highlights panic lines in the console tail and opens it', () => {
    const run = {
      ...runOf('switch_root'),
      outcome: 'panic' as const,
      consoleTail: ['ok line', 'Kernel panic - not syncing: Attempted to kill init!'],
    };
    const html = reportHtml({ runs: [run] });
    expect(html).to.match(/<details class="console" open>/);
    expect(html).to.include('<span class="panic">Kernel panic - not syncing: Attempted to kill init!</span>');
  });

  it("shows the run's kernel reports, titles and call-trace frames, marked like a panic, escaped, and opens the console", () => {
    // A BUG line carrying markup, as a hostile guest could print it.
    const evil = '[    2.000000] BUG: unable to handle page fault for <script>alert(3)</script>';
    const rec = consoleRecord([...LKDTM, evil]);
    const kinds = rec.kernelReports!.map((k) => k.kind);
    expect(kinds).to.include.members(['warning', 'bug', 'kasan', 'hung-task', 'lockdep']);
    expect(kinds.at(-1)).to.equal('bug');
    const run: RunRecord = { ...runOf('switch_root'), outcome: 'failed', ...rec };
    const html = reportHtml({ runs: [run] });
    expect(html).to.include(`data-kernel-reports="${kinds.length}"`);
    expect(html).to.include('<span class="ktitle">WARNING at drivers/misc/lkdtm/bugs.c:83 lkdtm_WARNING</span>');
    expect(html).to.include('<pre class="frames">lkdtm_do_action+0x1c/0x30\ndirect_entry.cold+0x2b/0x3b\n');
    for (const k of rec.kernelReports!) {
      expect(html).to.include(`<span class="ktitle">${esc(k.title)}</span>`);
      expect(html).to.include(`<div class="kline">${esc(k.line)}</div>`);
    }
    expect(html).to.not.include('<script>alert(3)');
    expect(html).to.include('&lt;script&gt;alert(3)&lt;/script&gt;');
    expect(html).to.match(/<details class="console" open/);
    // A passing run whose kernel reports were allowed still shows them, and opens its console.
    const allowed = reportHtml({ runs: [{ ...runOf('switch_root'), ...consoleRecord(LKDTM) }] });
    expect(allowed).to.include(`data-kernel-reports="${kinds.length - 1}"`);
    expect(allowed).to.match(/<details class="console" open/);
    // A run without any has no such block.
    expect(reportHtml({ runs: [runOf('switch_root')] })).to.not.include('data-kernel-reports');
  });

  it("shows more of the console than the record's tail when the run's console.log is given, else the tail", () => {
    const run: RunRecord = { ...runOf('switch_root'), outcome: 'failed', ...consoleRecord(LKDTM) };
    const tail = reportHtml({ runs: [run] });
    expect(tail).to.include('data-console-lines="20"');
    expect(tail).to.include('console: last 20 lines</summary>');
    expect(tail).to.not.include(esc(LKDTM[0]!));
    const log = { lines: LKDTM, cut: false, path: '/art/switch_root--x/console.log' };
    const whole = reportHtml({ runs: [run] }, { consoleLog: () => log });
    expect(whole).to.include('data-console-lines="32"');
    expect(whole).to.include('console: all 32 lines of <code>/art/switch_root--x/console.log</code>');
    expect(whole).to.include(esc(LKDTM[0]!));
    expect(whole).to.include(`<span class="warning">${esc(LKDTM.find((l) => l.includes('WARNING: CPU'))!)}</span>`);
    const cut = reportHtml({ runs: [run] }, { consoleLog: () => ({ ...log, cut: true }) });
    expect(cut).to.include('console: last 32 lines of <code>');
    // A log no longer than the tail says nothing more: the tail stays.
    expect(reportHtml({ runs: [run] }, { consoleLog: () => ({ ...log, lines: LKDTM.slice(-5) }) })).to.include('data-console-lines="20"');
  });

  it('reads a kept console.log from its end within limits; nothing for a record without one or a file of another name', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rootprobe-html-log-'));
    try {
      const file = path.join(dir, 'console.log');
      await fs.writeFile(file, `${LKDTM.join('\r\n')}\r\n`);
      const rec = { artifacts: { consoleLog: file } } as unknown as RunRecord;
      expect(artifactConsoleLog(rec)).to.deep.equal({ lines: LKDTM, cut: false, path: file });
      const few = artifactConsoleLog(rec, { bytes: 1 << 20, lines: 10 })!;
      expect(few.lines).to.deep.equal(LKDTM.slice(-10));
      expect(few.cut).to.equal(true);
      // Read from the end by bytes: the partial first line is left out.
      const bytes = artifactConsoleLog(rec, { bytes: 200, lines: 1000 })!;
      expect(bytes.cut).to.equal(true);
      expect(bytes.lines.length).to.be.within(1, 5);
      expect(LKDTM.slice(-bytes.lines.length)).to.deep.equal(bytes.lines);
      expect(artifactConsoleLog({} as RunRecord)).to.equal(undefined);
      expect(artifactConsoleLog({ artifacts: { consoleLog: path.join(dir, 'gone', 'console.log') } } as unknown as RunRecord)).to.equal(
        undefined,
      );
      await fs.writeFile(path.join(dir, 'secret.txt'), 'x\n'.repeat(50));
      expect(artifactConsoleLog({ artifacts: { consoleLog: path.join(dir, 'secret.txt') } } as unknown as RunRecord)).to.equal(undefined);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it('diff: both kernels side by side per stage, the differing mounts outlined', () => {
    const a = runOf('switch_root');
    const b: RunRecord = structuredClone(a);
    b.kernel = 'debian/sid';
    const realroot = b.stages.find((s) => s.name === 'realroot')!;
    realroot.mountinfo.find((e) => e.mountPoint === '/')!.fsType = 'xfs';
    const differences = diffRuns(a, b);
    expect(differences.some((d) => d.what === 'mount /')).to.equal(true);
    const html = diffHtml([a.kernel, b.kernel], [{ scenario: a.scenario, a, b, differences }]);
    const side = html.split('data-stage="realroot"')[1]!.split('</section>')[0]!;
    expect(side).to.include('data-kernel="debian/bookworm"');
    expect(side).to.include('data-kernel="debian/sid"');
    expect(side.match(/node[^"]*differs/g)!.length).to.be.at.least(2);
    expect(html).to.include('<td>xfs from /dev/vda');
  });
});

describe('terminal tree view', () => {
  it('draws the tree as findmnt --tree does, the change marks in colour only when asked', () => {
    const t = treeOf('switch_root', 'realroot');
    const plain = treeText(t, false);
    expect(plain).to.not.include('\x1b[');
    const lines = plain.split('\n');
    expect(lines[0]).to.match(/^TARGET\s+SOURCE\s+FSTYPE\s+OPTIONS\s+ID\s+CHANGE$/);
    expect(lines[1]).to.match(/^\/\s+rootfs\s+rootfs\s+rw\s+1 hidden, below 25 \(ext4 at \/\), not listed/);
    expect(lines[2]).to.match(/^└─\/\s+\/dev\/vda\s+ext4\s+\S+\s+25 new$/);
    expect(lines[3]).to.match(/^  ├─\/proc\s+proc\s+proc\s+\S+\s+22 moved \(was \/proc, parent 1\)$/);
    expect(lines[5]).to.match(/^  └─\/dev /);
    const coloured = treeText(t, true);
    expect(coloured).to.include('\x1b[32m└─/'); // new: green
    expect(coloured).to.include('\x1b[34m  ├─/proc'); // moved: blue
  });

  it('shows control characters in a mount point escaped, so a path cannot break the table or the terminal', () => {
    const t = stageTree(stage('x', [ROOTFS, '30 1 0:40 / /mnt/a\\012b\\033[31m rw - tmpfs t rw']));
    expect(t.nodes[1]!.entry!.mountPoint).to.equal('/mnt/a\nb\x1b[31m');
    const text = treeText(t, false);
    expect(text).to.match(/└─\/mnt\/a\\x0ab\\x1b\[31m t +tmpfs/);
    expect(text).to.not.include('\x1b');
    expect(text.split('\n')).to.have.length(3);
  });

  it("shows a mount of a filesystem's subtree as findmnt does: SOURCE[/root]", () => {
    const t = stageTree(stage('x', [ROOTFS, '30 1 254:0 /srv/data /mnt/data rw - ext4 /dev/vda rw']));
    expect(treeText(t, false).split('\n')[2]).to.match(/^└─\/mnt\/data \/dev\/vda\[\/srv\/data\] ext4 +rw +30$/);
  });

  it("failure messages' view (mountTreeText): a bare mount table drawn as show draws a stage, with the changes since a previous one", () => {
    const ini = Mountinfo.fromJSON(runOf('switch_root').stages[0]!.mountinfo);
    const real = Mountinfo.fromJSON(runOf('switch_root').stages[1]!.mountinfo);
    // A Mountinfo, or its entries, alone: the same table as treeText of that stage, without marks.
    const alone = mountTreeText(real);
    expect(alone).to.equal(mountTreeText(real.entries));
    expect(alone.split('\n')[0]).to.match(/^TARGET\s+SOURCE\s+FSTYPE\s+OPTIONS\s+ID\s+CHANGE$/);
    expect(alone).to.match(/^\[mount 1\]\s+\?\s+\?\s+1 not listed \(a parent id\)$/m);
    expect(alone).to.match(/^└─\/\s+\/dev\/vda\s+ext4\s+\S+\s+25$/m);
    expect(alone).to.not.include('\x1b[');
    // With the table before: the marks of `rootprobe show` for that stage, line for line.
    expect(mountTreeText(real, ini)).to.equal(treeText(treeOf('switch_root', 'realroot'), false));
    expect(mountTreeText(real, ini)).to.match(/^└─\/\s+\/dev\/vda\s+ext4\s+\S+\s+25 new$/m);
  });

  it('lists the processes with their links and what changed, kernel threads counted', () => {
    const r = runOf('switch_root');
    const text = processText(r.stages[1]!, r.stages[0], false);
    expect(text).to.match(/^87\s+1\s+sleeper\s+\/bin\/sleeper \(deleted\)\s+\/witness\s+\/\s+exe was \/bin\/sleeper$/m);
    expect(text).to.match(/^\(\d+ kernel threads not shown\)$/m);
    expect(processText(r.stages[2]!, r.stages[1], true)).to.include('\x1b[31;1m (deleted)'); // unchanged since: the decoration in red
  });
});

describe('rootprobe show and rootprobe report (the CLI, on the recorded report)', function () {
  this.timeout(60_000);
  let dir: string;
  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rootprobe-html-'));
  });
  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('show prints each stage of the chosen run; no colour when stdout is not a terminal', async () => {
    const r = await cli(['show', FIXTURE, '--run', 'switch_root']);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.not.include('\x1b[');
    expect(r.stdout).to.match(/^run 2: switch_root on debian\/bookworm/);
    expect(r.stdout).to.include('stage realroot (changes since initramfs)');
    expect(r.stdout).to.match(/└─\/\s+\/dev\/vda\s+ext4/);
  });

  it('show --stage picks one stage; FORCE_COLOR colours it and NO_COLOR wins over it', async () => {
    const r = await cli(['show', FIXTURE, '--run', '1', '--stage', 'pivoted'], { env: { FORCE_COLOR: '1' } });
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.include('\x1b[');
    expect(r.stdout).to.not.include('stage back');
    expect(r.stdout).to.match(/\/var\/run\/rootfs\s+rootfs\s+rootfs/);
    const n = await cli(['show', FIXTURE, '--run', '1', '--stage', 'pivoted'], { env: { FORCE_COLOR: '1', NO_COLOR: '1' } });
    expect(n.stdout).to.not.include('\x1b[');
  });

  it('show on a real terminal (util-linux script): the marks in colour; NO_COLOR turns it off', async () => {
    const line = `'${process.execPath}' '${BIN}' show '${FIXTURE}' --run switch_root --stage realroot`;
    const env = { ...process.env, TERM: 'xterm' } as NodeJS.ProcessEnv;
    delete env.NO_COLOR;
    delete env.FORCE_COLOR;
    const tty = await run('script', ['-qfec', line, '/dev/null'], { env });
    expect(tty.code, tty.stderr).to.equal(0);
    expect(tty.stdout).to.include('\x1b[32m└─/'); // new: green
    expect(tty.stdout).to.include('\x1b[34m  ├─/proc'); // moved: blue
    const plain = await run('script', ['-qfec', line, '/dev/null'], { env: { ...env, NO_COLOR: '1' } });
    expect(plain.stdout).to.include('└─/');
    expect(plain.stdout).to.not.include('\x1b[');
  });

  it('bad input is exit 2 with what is known: a missing file, not JSON, no such run or stage', async () => {
    const notJson = path.join(dir, 'x.json');
    await fs.writeFile(notJson, 'hello');
    const other = path.join(dir, 'other.json');
    await fs.writeFile(other, '{"a": 1}');
    const cases: Array<[string[], RegExp]> = [
      [['show', path.join(dir, 'missing.json')], /cannot read .*missing\.json: no such file/],
      [['show', notJson], /is not JSON/],
      [['show', other], /is not a rootprobe report/],
      [['show', FIXTURE, '--run', '7'], /--run 7: .* has 2 run\(s\):\n\s+1: pivot_root/],
      [['show', FIXTURE, '--stage', 'nope'], /--stage nope: no run shown reported it; stages: initramfs, pivoted, back, done, realroot/],
      [['show'], /show takes one report file/],
      [['report', FIXTURE], /report needs --html FILE/],
    ];
    for (const [args, re] of cases) {
      const r = await cli(args);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).to.equal(2);
      expect(r.stderr).to.match(re);
    }
  });

  it('doctor --browser checks for Chromium (and only then): missing is exit 2 naming the package', async () => {
    const plain = await cli(['doctor']);
    expect(plain.stdout).to.not.match(/^chromium /m);
    const r = await cli(['doctor', '--browser'], { env: { ROOTPROBE_CHROMIUM: path.join(dir, 'no-such-chromium') } });
    expect(r.code).to.equal(2);
    expect(r.stdout).to.match(
      /^chromium\s+MISSING \(Debian package chromium; for the HTML browser test\): for the HTML report's browser test$/m,
    );
    expect(r.stdout).to.match(/missing: .*chromium/);
    const fake = path.join(dir, 'chromium');
    await fs.writeFile(fake, '#!/bin/sh\n', { mode: 0o755 });
    const ok = await cli(['doctor', '--browser'], { env: { ROOTPROBE_CHROMIUM: fake } });
    expect(ok.stdout).to.match(new RegExp(`^chromium\\s+ok\\s+${fake}$`, 'm'));
  });

  it("prints the README's show example as written (on the recorded report)", async () => {
    const readme = await fs.readFile(path.join(ROOT, 'README.md'), 'utf8');
    const m = readme.match(/```\n\$ npx rootprobe show r\.json (.*)\n([\s\S]*?)```/);
    expect(m, 'the show example in README.md').to.not.equal(null);
    const r = await cli(['show', FIXTURE, ...m![1]!.split(' ')]);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.equal(m![2]);
  });

  it('help names show, report and --html', async () => {
    const r = await cli(['--help']);
    expect(r.stdout)
      .to.match(/^  rootprobe show RUN\.json/m)
      .and.match(/^  rootprobe report RUN\.json --html FILE/m)
      .and.match(/^  --html FILE /m);
    const e = await cli(['run', 'external', '--help']);
    expect(e.stdout).to.match(/^  --html FILE /m);
  });

  it('report --html puts the kept console.log of a run on the page, with its kernel reports', async () => {
    const art = path.join(dir, 'art', 'switch_root--debian_bookworm');
    await fs.mkdir(art, { recursive: true });
    await fs.writeFile(path.join(art, 'console.log'), `${LKDTM.join('\n')}\n`);
    const run: RunRecord = {
      ...runOf('switch_root'),
      outcome: 'failed',
      ...consoleRecord(LKDTM),
      artifacts: {
        dir: art,
        consoleLog: path.join(art, 'console.log'),
        resultStream: path.join(art, 'result.stream'),
        qemuCmdline: path.join(art, 'qemu.cmdline'),
        readback: path.join(art, 'readback.json'),
        reproduce: path.join(art, 'reproduce.sh'),
      },
    };
    const json = path.join(dir, 'with-log.json');
    await fs.writeFile(json, JSON.stringify({ ...report, runs: [run] }));
    const out = path.join(dir, 'with-log.html');
    const r = await cli(['report', json, '--html', out]);
    expect(r.code, r.stderr).to.equal(0);
    const html = await fs.readFile(out, 'utf8');
    expect(html).to.include('data-console-lines="32"');
    expect(html).to.include(esc(LKDTM[0]!));
    expect(html).to.include(`data-kernel-reports="${run.kernelReports!.length}"`);
  });

  it('report --html writes the page of a report written earlier', async () => {
    const out = path.join(dir, 'sub', 'r.html');
    const r = await cli(['report', FIXTURE, '--html', out]);
    expect(r.code, r.stderr).to.equal(0);
    const html = await fs.readFile(out, 'utf8');
    expect(html).to.include('data-scenario="switch_root"');
    expect(html).to.include('data-scenario="pivot_root"');
    expect((await fs.readdir(path.dirname(out))).sort()).to.deep.equal(['r.html']);
  });
});
