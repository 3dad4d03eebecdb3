/**
 * `npx tsx bench/boot-repeat.ts [--kernel K] [--boots N] [--jobs J]`: boots a kernel N times
 * with an initramfs whose /init powers off at once, through rootprobe's own runner (its panic
 * detection, its command line), and counts how each boot ended: how often a kernel panics in
 * early boot under this host's accelerator. Prints a summary line and writes
 * bench/boot-repeat-results.json.
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { resolveKernel } from '../kernels/index.ts';
import { detectAccel, timeoutFactor } from '../harness/qemu/accel.ts';
import { bootQemu } from '../harness/qemu/runner.ts';
import { makeTempDir, removeTempDir } from '../harness/lifecycle.ts';
import { pool } from '../harness/run/matrix.ts';
import { haltInitramfs, ROOT } from './lib.ts';

const { values } = parseArgs({ options: { kernel: { type: 'string' }, boots: { type: 'string' }, jobs: { type: 'string' } } });
const spec = values.kernel ?? 'debian/trixie';
const boots = Number(values.boots ?? 50);
const jobs = Number(values.jobs ?? 1);
const kernel = await resolveKernel(spec, { onProgress: (m) => process.stderr.write(`kernel: ${m}\n`) });
const { accel } = await detectAccel(kernel.vmlinuz);
const work = await makeTempDir('rootprobe-bootrep-');
const initrd = await haltInitramfs(path.join(work, 'halt.cpio'));
const t0 = Date.now();
const results = await pool(
  Array.from({ length: boots }, (_, i) => i),
  jobs,
  async (i) => {
    const runDir = path.join(work, `boot-${i}`);
    const { outcome } = bootQemu(
      { kernel: kernel.vmlinuz, initrd, accel, runDir, memoryMiB: 256 },
      { deadlineMs: (60_000 * timeoutFactor(accel)) / 5 },
    );
    const o = await outcome;
    const reachedInit = (await fs.readFile(o.consoleLog, 'utf8')).includes('Run /init as init process');
    const r = { boot: i + 1, end: o.end, reachedInit, ms: o.durationMs, panic: o.panicLine };
    process.stderr.write(
      `boot ${i + 1}/${boots}: ${o.end}${o.panicLine ? ` (${o.panicLine})` : ''} ${(o.durationMs / 1000).toFixed(1)} s\n`,
    );
    return r;
  },
);
await removeTempDir(work);
const panics = results.filter((r) => r.end === 'panic');
const summary = {
  at: new Date().toISOString(),
  kernel: spec,
  release: kernel.release,
  accel,
  host: `${os.cpus().length} x ${os.cpus()[0]?.model ?? '?'}`,
  boots,
  jobs,
  reachedInit: results.filter((r) => r.reachedInit).length,
  panics: panics.length,
  panicLines: [...new Set(panics.map((p) => p.panic))],
  other: results.filter((r) => r.end !== 'exited' && r.end !== 'panic').map((r) => `${r.boot}: ${r.end}`),
  wallS: Math.round((Date.now() - t0) / 1000),
};
await fs.writeFile(path.join(ROOT, 'bench/boot-repeat-results.json'), JSON.stringify(summary, null, 1) + '\n');
process.stdout.write(
  `${spec} (${kernel.release}, ${accel}): ${summary.reachedInit} of ${boots} boots reached /init, ${summary.panics} panicked${summary.panicLines.length ? `: ${summary.panicLines.join(' | ')}` : ''}; ${summary.other.length} other\n`,
);
