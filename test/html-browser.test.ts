/**
 * The HTML report in a real browser: one real run of switch_root and pivot_root on bookworm
 * (`rootprobe run ... --json --html`), its page opened from disk in headless Chromium (Debian's
 * `chromium`, driven by puppeteer-core). Every stage and every mount of the JSON must be on the
 * page, with the change marks the model (harness/report/tree.ts) computes from that JSON; the
 * page must load nothing and throw nothing. Screenshots go to test-artifacts/html-browser/
 * (ROOTPROBE_TEST_ARTIFACTS overrides); ROOTPROBE_UPDATE_DOCS=1 also writes docs/*.png.
 *
 * Without Chromium this test FAILS, saying how to install it; ROOTPROBE_SKIP_BROWSER=1 skips it.
 */
import { expect } from 'chai';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { cli, ROOT, type Ran } from './support/cli.ts';
import type { MatrixReport } from '../harness/report/formats.ts';
import { runTrees } from '../harness/report/tree.ts';
import { BROWSER_INSTALL_HINT, findChromium } from '../harness/report/browser.ts';
import type { RunRecord } from '../harness/run/run-scenario.ts';
import { buildExt4 } from '../harness/image/disk.ts';
import { buildCpioSegment } from '../harness/image/initramfs.ts';
import { ImageTree } from '../harness/image/tree.ts';
import { checkFeatures } from '../kernels/config.ts';
import { baseInitramfs, baseRootDisk } from '../images/base.ts';
import { testKernel } from './support/kernel.ts';

const ARTIFACTS = process.env.ROOTPROBE_TEST_ARTIFACTS
  ? path.join(process.env.ROOTPROBE_TEST_ARTIFACTS, 'html-browser')
  : path.join(ROOT, 'test-artifacts', 'html-browser');

/** Chromium, or the test fails saying how to get it (skipped only with ROOTPROBE_SKIP_BROWSER=1). */
function chromiumOrFail(ctx: Mocha.Context): string {
  if (process.env.ROOTPROBE_SKIP_BROWSER === '1') {
    console.log('    (skipped: ROOTPROBE_SKIP_BROWSER=1)');
    ctx.skip();
  }
  const chromium = findChromium();
  if (!chromium)
    throw new Error(`the browser test needs Chromium and found none: ${BROWSER_INSTALL_HINT}; or set ROOTPROBE_SKIP_BROWSER=1 to skip it`);
  return chromium;
}

async function openPage(chromium: string, file: string, requests: string[], errors: string[]): Promise<{ browser: Browser; page: Page }> {
  const browser = await puppeteer.launch({
    executablePath: chromium,
    headless: true,
    // root in a container has no user namespace for Chromium's sandbox
    args: [...(process.getuid?.() === 0 ? ['--no-sandbox'] : []), '--disable-gpu', '--no-first-run'],
  });
  const page = await browser.newPage();
  page.on('request', (r) => requests.push(r.url()));
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.setViewport({ width: 1280, height: 900 });
  await page.goto(pathToFileURL(file).href, { waitUntil: 'load' });
  return { browser, page };
}

/** The mount ids drawn under `scope`, in drawing order. */
function mountIds(page: Page, scope: string): Promise<number[]> {
  return page.$$eval(`${scope} li.mount`, (els) => els.map((e) => Number(e.getAttribute('data-mount-id'))));
}

describe('the HTML report in headless Chromium, from a real run of switch_root and pivot_root @boot', function () {
  this.timeout(900_000);
  let dir: string;
  let ran: Ran;
  let json: MatrixReport;
  let htmlFile: string;
  let browser: Browser | undefined;
  let page: Page;
  const requests: string[] = [];
  const pageErrors: string[] = [];

  before(async function () {
    const chromium = chromiumOrFail(this);
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rootprobe-html-browser-'));
    htmlFile = path.join(dir, 'report.html');
    ran = await cli([
      'run',
      'switch_root',
      'pivot_root',
      '--jobs',
      '1',
      '--artifacts',
      path.join(dir, 'art'),
      '--json',
      path.join(dir, 'r.json'),
      '--html',
      htmlFile,
    ]);
    expect(ran.code, ran.stdout + ran.stderr).to.equal(0);
    json = JSON.parse(await fs.readFile(path.join(dir, 'r.json'), 'utf8'));
    await fs.mkdir(ARTIFACTS, { recursive: true });
    await fs.copyFile(path.join(dir, 'r.json'), path.join(ARTIFACTS, 'report.json'));
    await fs.copyFile(htmlFile, path.join(ARTIFACTS, 'report.html'));
    ({ browser, page } = await openPage(chromium, htmlFile, requests, pageErrors));
  });

  after(async () => {
    await browser?.close();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  it('loads from disk alone: no request but the file, no script error', () => {
    expect(requests).to.deep.equal([pathToFileURL(htmlFile).href]);
    expect(pageErrors).to.deep.equal([]);
  });

  it('shows every run with its verdict and every stage of it, in order', async () => {
    const runs = await page.$$eval('section.run', (els) =>
      els.map((e) => ({
        scenario: e.getAttribute('data-scenario'),
        outcome: e.getAttribute('data-outcome'),
        verdict: e.querySelector('h2 .verdict')?.textContent,
        stages: [...e.querySelectorAll('section.stage')].map((s) => s.getAttribute('data-stage')),
      })),
    );
    expect(runs.map((r) => r.scenario)).to.deep.equal(json.runs.map((r) => r.scenario));
    json.runs.forEach((r, i) => {
      expect(runs[i]!.outcome).to.equal(r.outcome);
      expect(runs[i]!.verdict).to.equal(r.outcome === 'passed' ? 'PASS' : r.outcome.toUpperCase());
      expect(runs[i]!.stages).to.deep.equal(r.stages.map((s) => s.name));
    });
  });

  it('draws every mount of every stage, visible on the page, with the marks the model computes from the JSON', async () => {
    for (const [i, r] of json.runs.entries()) {
      const trees = runTrees(r.stages);
      for (const [j, t] of trees.entries()) {
        const shown = await page.$$eval(`section.run[data-run="${i}"] section.stage:nth-of-type(${j + 1}) li.mount`, (els) =>
          els.map((e) => {
            const node = e.querySelector(':scope > .node') as HTMLElement;
            const box = node.getBoundingClientRect();
            return {
              id: Number(e.getAttribute('data-mount-id')),
              marks: e.getAttribute('data-marks'),
              badges: [...node.querySelectorAll(':scope > .mark')].map((b) => b.textContent).join(' '),
              point: node.querySelector('.mp')?.textContent,
              visible: box.width > 0 && box.height > 0,
            };
          }),
        );
        const where = `${r.scenario} stage ${t.stage}`;
        expect(
          shown.map((s) => s.id),
          where,
        ).to.deep.equal(t.nodes.map((n) => n.mountId));
        for (const e of r.stages[j]!.mountinfo) {
          const s = shown.find((x) => x.id === e.mountId);
          expect(s, `${where}: mount ${e.mountId}`).to.not.equal(undefined);
          expect(s!.point, `${where}: mount ${e.mountId}`).to.equal(e.mountPoint);
        }
        t.nodes.forEach((n, k) => {
          expect(shown[k]!.marks, `${where}: mount ${n.mountId}`).to.equal(n.marks.join(' '));
          expect(shown[k]!.badges, `${where}: mount ${n.mountId}`).to.equal(n.marks.join(' '));
          expect(shown[k]!.visible, `${where}: mount ${n.mountId}`).to.equal(true);
        });
      }
    }
  });

  it('has a row per mount in the stage-by-stage table, each cell with the marks of that stage', async () => {
    for (const [i, r] of json.runs.entries()) {
      const trees = runTrees(r.stages);
      const rows = await page.$$eval(`section.run[data-run="${i}"] table.timeline tr[data-mount-id]`, (trs) =>
        trs.map((tr) => ({
          id: Number(tr.getAttribute('data-mount-id')),
          cells: [...tr.querySelectorAll('td')].map((td) => td.getAttribute('data-marks')),
        })),
      );
      const ids = [...new Set(trees.flatMap((t) => t.nodes.map((n) => n.mountId)))];
      expect(
        rows.map((x) => x.id),
        r.scenario,
      ).to.deep.equal(ids);
      for (const row of rows) {
        expect(row.cells, `${r.scenario} mount ${row.id}`).to.deep.equal(
          trees.map((t) => t.nodes.find((n) => n.mountId === row.id)?.marks.join(' ') ?? null),
        );
      }
    }
  });

  it('tells the story: switch_root hid rootfs below the ext4, pivot_root kept it visible under /var/run/rootfs', async () => {
    const sw = json.runs.findIndex((r) => r.scenario === 'switch_root');
    const pv = json.runs.findIndex((r) => r.scenario === 'pivot_root');
    const rootfsIn = (run: number, stage: string) =>
      page.$$eval(`section.run[data-run="${run}"] section.stage[data-stage="${stage}"] li.mount`, (els) =>
        els
          .map((e) => e.querySelector(':scope > .node') as HTMLElement)
          .filter((n) => n.querySelector('.fs')?.textContent === 'rootfs')
          .map((n) => ({ text: n.innerText, hidden: n.classList.contains('is-hidden') })),
      );
    const swRoot = await rootfsIn(sw, 'realroot');
    expect(swRoot).to.have.length(1);
    expect(swRoot[0]!.hidden).to.equal(true);
    expect(swRoot[0]!.text).to.match(/hidden/);
    expect(swRoot[0]!.text).to.match(/below mount \d+ \(ext4 at \/\)/);
    const pvRoot = await rootfsIn(pv, 'pivoted');
    expect(pvRoot).to.have.length(1);
    expect(pvRoot[0]!.hidden).to.equal(false);
    expect(pvRoot[0]!.text).to.match(/^\/var\/run\/rootfs/);
    expect(pvRoot[0]!.text).to.match(/moved/);
  });

  it('shows the processes with their links, kernel threads folded, and options on demand', async () => {
    const sw = json.runs.findIndex((r) => r.scenario === 'switch_root');
    const base = `section.run[data-run="${sw}"] section.stage[data-stage="realroot"]`;
    const witness = await page.$eval(`${base} table.procs tr[data-pid]:not(.probe) td .deco.deleted`, (e) => (e as HTMLElement).innerText);
    expect(witness).to.equal('(deleted)');
    const kt = await page.$eval(`${base} details.kthreads`, (d) => ({
      open: (d as HTMLDetailsElement).open,
      rows: d.querySelectorAll('tr[data-pid]').length,
    }));
    expect(kt.open).to.equal(false);
    expect(kt.rows).to.be.greaterThan(10);
    const closed = await page.$$eval(`${base} .node details`, (ds) => ds.filter((d) => (d as HTMLDetailsElement).open).length);
    expect(closed).to.equal(0);
    await page.click(`section.run[data-run="${sw}"] button[data-toggle="open"]`);
    const opts = await page.$eval(`${base} .node details dl`, (dl) => (dl as HTMLElement).innerText);
    expect(opts).to.match(/super options/);
    expect(opts).to.match(/propagation/);
    await page.click(`section.run[data-run="${sw}"] button[data-toggle="close"]`);
  });

  it("saves screenshots of each run (and, with ROOTPROBE_UPDATE_DOCS=1, the README's)", async () => {
    await page.screenshot({ path: path.join(ARTIFACTS, 'report.png'), fullPage: true });
    for (const [i, r] of json.runs.entries()) {
      const el = await page.$(`section.run[data-run="${i}"]`);
      await el!.screenshot({ path: path.join(ARTIFACTS, `${r.scenario}.png`) });
      const st = await fs.stat(path.join(ARTIFACTS, `${r.scenario}.png`));
      expect(st.size).to.be.greaterThan(10_000);
    }
    if (process.env.ROOTPROBE_UPDATE_DOCS === '1') {
      // The stage that tells each story, a little smaller than life.
      await page.setViewport({ width: 1300, height: 900, deviceScaleFactor: 1 });
      const shots = [
        ['switch_root', 'section.stage[data-stage="realroot"]', 'html-switch_root.png'],
        ['pivot_root', 'section.stage[data-stage="pivoted"]', 'html-pivot_root.png'],
        ['switch_root', 'details.timeline', 'html-switch_root-timeline.png'],
        ['pivot_root', 'details.timeline', 'html-pivot_root-timeline.png'],
      ] as const;
      for (const [scenario, selector, name] of shots) {
        const i = json.runs.findIndex((r) => r.scenario === scenario);
        // the element's box in document coordinates (boundingBox() is relative to the scrolled viewport)
        const box = await page.$eval(`section.run[data-run="${i}"] ${selector}`, (e) => {
          const r = e.getBoundingClientRect();
          return { x: r.x + window.scrollX, y: r.y + window.scrollY, width: r.width, height: r.height };
        });
        const pad = 12;
        const png = path.join(ROOT, 'docs', name);
        await page.screenshot({
          path: png,
          clip: { x: box.x - pad, y: box.y - pad, width: box.width + 2 * pad, height: box.height + 2 * pad },
          captureBeyondViewport: true,
        });
        expect((await fs.stat(png)).size, png).to.be.greaterThan(8_000); // not a blank page
      }
    }
    console.log(`    screenshots: ${ARTIFACTS}`);
  });

  it('rootprobe report --html on the JSON writes the same page as run --html did', async () => {
    const again = path.join(dir, 'again.html');
    const r = await cli(['report', path.join(dir, 'r.json'), '--html', again]);
    expect(r.code, r.stderr).to.equal(0);
    expect(await fs.readFile(again, 'utf8')).to.equal(await fs.readFile(htmlFile, 'utf8'));
  });

  it('rootprobe show prints the same trees from the same JSON', async () => {
    const r = await cli(['show', path.join(ARTIFACTS, 'report.json'), '--no-processes']);
    expect(r.code, r.stderr).to.equal(0);
    for (const run of json.runs) {
      for (const t of runTrees(run.stages)) {
        expect(r.stdout).to.include(`stage ${t.stage}`);
        for (const n of t.nodes) {
          const row = new RegExp(`^.*\\s${n.mountId}(?: (.*))?$`, 'm');
          expect(r.stdout, `${run.scenario} ${t.stage} mount ${n.mountId}`).to.match(row);
        }
      }
    }
    expect(r.stdout).to.match(/^\/\s+rootfs\s+rootfs\s+rw\s+1 hidden, below \d+ \(ext4 at \/\)/m);
    expect(r.stdout).to.match(/^\s+├─\/var\/run\/rootfs\s+rootfs\s+rootfs\s+\S+\s+\d+ moved \(was \/, parent 1\)$/m);
  });
});

describe('diff --html and run external --html in headless Chromium @boot', function () {
  this.timeout(900_000);
  let dir: string;
  let chromium: string;
  const browsers: Browser[] = [];

  before(async function () {
    chromium = chromiumOrFail(this);
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'rootprobe-html-browser2-'));
    await fs.mkdir(ARTIFACTS, { recursive: true });
  });
  after(async () => {
    for (const b of browsers) await b.close();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  it('diff: each stage of switch_root on both kernels side by side, every mount of both runs drawn', async () => {
    // The same kernel under two specs: two real boots, and a page with two columns.
    const other = `file:${testKernel.vmlinuz},modules=${testKernel.modulesDir},config=${testKernel.configPath}`;
    const html = path.join(dir, 'diff.html');
    const r = await cli([
      'diff',
      '--kernel',
      testKernel.id,
      '--kernel',
      other,
      'switch_root',
      '--jobs',
      '1',
      '--artifacts',
      path.join(dir, 'art'),
      '--json',
      path.join(dir, 'diff.json'),
      '--html',
      html,
    ]);
    expect(r.code, r.stdout + r.stderr).to.be.oneOf([0, 1]);
    const out = JSON.parse(await fs.readFile(path.join(dir, 'diff.json'), 'utf8')) as { kernels: string[]; runs: MatrixReport['runs'] };
    await fs.copyFile(html, path.join(ARTIFACTS, 'diff.html'));
    const requests: string[] = [];
    const errors: string[] = [];
    const { browser, page } = await openPage(chromium, html, requests, errors);
    browsers.push(browser);
    expect(requests).to.have.length(1);
    expect(errors).to.deep.equal([]);
    const runs = out.runs; // the one report shape: runs[] at the top level (schemas/report.schema.json)
    expect(runs).to.have.length(2);
    const names = [...new Set(runs.flatMap((x) => x.stages.map((s) => s.name)))];
    expect(await page.$$eval('section.stage', (els) => els.map((e) => e.getAttribute('data-stage')))).to.deep.equal(names);
    for (const name of names) {
      const heads = await page.$$eval(`section.stage[data-stage="${name}"] .side > div > h4`, (els) =>
        els.map((e) => e.getAttribute('data-kernel')),
      );
      expect(heads).to.have.length(2);
      for (const [col, run] of runs.entries()) {
        expect(heads[col]).to.equal(run.kernel);
        const t = runTrees(run.stages).find((x) => x.stage === name)!;
        const ids = await mountIds(page, `section.stage[data-stage="${name}"] .side > div:nth-child(${col + 1})`);
        expect(ids, `${run.kernel} ${name}`).to.deep.equal(t.nodes.map((n) => n.mountId));
      }
    }
    await page.screenshot({ path: path.join(ARTIFACTS, 'diff.png'), fullPage: true });
  });

  it("run external: the page of a distro's own flow shows its stages and mounts", async () => {
    // A stand-in initramfs-tools archive and root disk (as test/external.test.ts builds them).
    const fx = path.join(ROOT, 'test/fixtures/external');
    const main = new ImageTree('fake distro');
    main.merge(baseInitramfs());
    const { modules } = checkFeatures(testKernel, ['initrd', 'proc', 'sysfs', 'devtmpfs', 'virtio-blk', 'ext4'], 'fakedistro');
    if (modules.length) main.kernelModules(testKernel, modules);
    main.script('/init', path.join(fx, 'distro-init.sh'));
    main.file('/scripts/init-bottom/ORDER', '/scripts/init-bottom/nothing "$@"\n[ -e /conf/param.conf ] && . /conf/param.conf\n');
    main.file('/scripts/init-bottom/nothing', '#!/bin/sh\ntrue\n', 0o755);
    main.dir('/conf');
    const initrd = path.join(dir, 'initrd.img');
    await fs.copyFile(await buildCpioSegment(main, { compress: 'gzip' }), initrd);
    const disk = baseRootDisk();
    disk.script('/sbin/init', path.join(fx, 'root-init.sh'));
    disk.dir('/mnt');
    const img = path.join(dir, 'root.img');
    await fs.copyFile(await buildExt4(disk, { sizeMiB: 32 }), img);
    const html = path.join(dir, 'ext.html');
    const r = await cli([
      'run',
      'external',
      '--initramfs',
      initrd,
      '--kernel',
      testKernel.id,
      '--disk',
      img,
      '--cmdline',
      'root=/dev/vda',
      '--timeout',
      '60',
      '--artifacts',
      path.join(dir, 'ext-art'),
      '--json',
      path.join(dir, 'ext.json'),
      '--html',
      html,
    ]);
    expect(r.code, r.stdout + r.stderr).to.equal(0);
    const rec = (JSON.parse(await fs.readFile(path.join(dir, 'ext.json'), 'utf8')) as { runs: RunRecord[] }).runs[0]!;
    await fs.copyFile(html, path.join(ARTIFACTS, 'external.html'));
    const requests: string[] = [];
    const errors: string[] = [];
    const { browser, page } = await openPage(chromium, html, requests, errors);
    browsers.push(browser);
    expect(requests).to.have.length(1);
    expect(errors).to.deep.equal([]);
    expect(await page.$eval('section.run h2 .verdict', (e) => e.textContent)).to.equal('PASS');
    expect(await page.$$eval('section.stage', (els) => els.map((e) => e.getAttribute('data-stage')))).to.deep.equal(
      rec.stages.map((s) => s.name),
    );
    for (const t of runTrees(rec.stages)) {
      expect(await mountIds(page, `section.stage[data-stage="${t.stage}"]`), t.stage).to.deep.equal(t.nodes.map((n) => n.mountId));
    }
    const realroot = runTrees(rec.stages).find((t) => t.stage === 'realroot')!;
    expect(realroot.nodes.find((n) => n.listed && n.entry?.mountPoint === '/')!.entry!.fsType).to.equal('ext4');
    await page.screenshot({ path: path.join(ARTIFACTS, 'external.png'), fullPage: true });
  });
});
