/**
 * The runner's own cases of issue 13, through the real CLI: a full host disk named as ENOSPC
 * (not a guest timeout), an interrupted run leaving no half-written artifact folder, external
 * mode refusing an initramfs without its init before boot, and `build --out` refusing a
 * folder of someone else's files without --force.
 */
import { expect } from 'chai';
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeNewcFile } from '../harness/cpio/index.ts';
import { BIN, ROOT, cli } from './support/cli.ts';

const FIXTURES = path.join(ROOT, 'test/fixtures/scenarios/runner-faults');

describe('runner faults (issue 13: full disk, interrupted artifacts, external without init, build --out)', function () {
  this.timeout(600_000);
  let dir: string;
  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'rp-runner-faults-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('external mode refuses an initramfs without /init (or without the rdinit= it names) before anything boots', async () => {
    const img = path.join(dir, 'noinit.cpio');
    await writeNewcFile(
      [
        { type: 'dir', path: 'bin' },
        { type: 'file', path: 'bin/sh', data: Buffer.from('x'), mode: 0o755 },
      ],
      img,
    );
    const r = await cli(['run', 'external', '--initramfs', img, '--kernel', 'debian/bookworm']);
    expect(r.code, r.stderr).to.equal(2);
    expect(r.stderr).to.match(/has no \/init: the kernel would find no init to run/);
    const r2 = await cli(['run', 'external', '--initramfs', img, '--kernel', 'debian/bookworm', '--cmdline', 'rdinit=/sbin/init']);
    expect(r2.code).to.equal(2);
    expect(r2.stderr).to.match(/has no \/sbin\/init \(named by rdinit= in --cmdline\)/);
    expect(r.stderr + r2.stderr).to.not.match(/accelerator|QEMU/);
  });

  it('build --out refuses a folder holding other files unless --force, and rebuilds over its own files', async () => {
    const out = path.join(dir, 'out');
    mkdirSync(out);
    writeFileSync(path.join(out, 'notes.txt'), 'mine');
    const r = await cli(['build', 'switch_root', '--out', out]);
    expect(r.code, r.stderr).to.equal(2);
    expect(r.stderr).to.match(/already holds files that are not a rootprobe build \(notes\.txt\).*--force/);
    expect(readdirSync(out)).to.deep.equal(['notes.txt']);
    const forced = await cli(['build', 'switch_root', '--out', out, '--force']);
    expect(forced.code, forced.stderr).to.equal(0);
    expect(existsSync(path.join(out, 'qemu.sh'))).to.equal(true);
    const clean = path.join(dir, 'clean');
    expect((await cli(['build', 'switch_root', '--out', clean])).code).to.equal(0);
    expect((await cli(['build', 'switch_root', '--out', clean])).code, 'a second build into its own folder').to.equal(0);
  });

  it("a full host disk ends the run at the guest's first disk I/O error as error naming ENOSPC and the host folder, not as a timeout @boot", async function () {
    if (process.getuid?.() !== 0) this.skip(); // mounting the small tmpfs needs root
    const small = path.join(dir, 'small');
    mkdirSync(small);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=40m', 'rp-small', small]);
    try {
      const json = path.join(dir, 'full.json');
      const r = await cli(['run', 'fill_disk', '--scenarios', FIXTURES, '--json', json, '--artifacts', path.join(dir, 'art-full')], {
        env: { TMPDIR: small },
      });
      expect(r.code, r.stdout + r.stderr).to.equal(1);
      expect(r.stdout).to.match(/ERROR/);
      expect(r.stdout)
        .to.match(/the host's disk is full \(ENOSPC\)/)
        .and.match(new RegExp(small.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')));
      expect(r.stdout).to.not.match(/timeout/i);
      // Ended by the guest's disk I/O error while the host folder was full (not by the deadline,
      // nor by rootprobe's own console log failing later), and at once: under TCG the deadline is 300 s.
      const run = JSON.parse(readFileSync(json, 'utf8')).runs[0];
      expect(run.message).to.match(
        /the guest's writes to its disk images in \S+ failed \(\d+ bytes free there; the guest saw: [^)]*\bvda\b/,
      );
      expect(run.durationMs, `took ${run.durationMs} ms of a ${run.deadlineMs} ms deadline`).to.be.below(
        Math.min(30_000, run.deadlineMs / 2),
      );
    } finally {
      execFileSync('umount', ['-l', small]);
    }
  });

  it('Ctrl-C during runs with --keep leaves each artifact folder whole or absent, never half-written @boot', async () => {
    const art = path.join(dir, 'art-int');
    const child = spawn(process.execPath, [BIN, 'run', 'switch_root', 'pivot_root', '--keep', '--jobs', '2', '--artifacts', art], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stderr.on('data', (d) => (out += d));
    child.stdout.on('data', (d) => (out += d));
    await new Promise<void>((resolve) => {
      const t = setInterval(() => {
        if (/stage +\S+ @ \S+: initramfs/.test(out) || /stage .*initramfs/.test(out)) {
          clearInterval(t);
          resolve();
        }
      }, 100);
    });
    child.kill('SIGINT');
    const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    expect(code).to.equal(130);
    const left = existsSync(art) ? readdirSync(art) : [];
    expect(
      left.filter((n) => n.includes('.partial-')),
      'no half-written folder',
    ).to.deep.equal([]);
    for (const n of left) {
      for (const f of ['run.json', 'reproduce.sh', 'console.log']) expect(existsSync(path.join(art, n, f)), `${n}/${f}`).to.equal(true);
    }
  });
});
