/**
 * What a person sees: live progress while VMs run (a line per running VM on a terminal,
 * plain lines as runs start and end in a CI log), then a table readable at a glance and, for
 * each run that did not pass, why, the last console lines, its artifacts and the command
 * that reruns just that case.
 */
import { DEFAULT_ARCH } from '../arch/index.ts';
import type { RunEvent, RunRecord } from '../run/run-scenario.ts';
import type { MatrixReport } from './formats.ts';

const color = (code: number) => (s: string, on: boolean) => (on ? `\x1b[${code}m${s}\x1b[0m` : s);
const green = color(32);
const red = color(31);
const yellow = color(33);
const dim = color(2);
const bold = color(1);

export function outcomeText(o: string, tty: boolean): string {
  if (o === 'passed') return green('PASS', tty);
  if (o === 'failed') return red('FAIL', tty);
  if (o === 'skipped') return yellow('SKIP', tty);
  return red(o.toUpperCase(), tty);
}

interface Live {
  key: string;
  label: string;
  phase: string;
  stage?: string;
  started: number;
}

export class Progress {
  private readonly live = new Map<string, Live>();
  private drawn = 0;
  private timer?: NodeJS.Timeout;
  constructor(
    private readonly out: NodeJS.WriteStream = process.stderr,
    private readonly tty = Boolean(process.stderr.isTTY) && process.env.TERM !== 'dumb' && !process.env.CI,
  ) {}

  private key(scenario: string, kernel: string): string {
    return `${scenario} @ ${kernel}`;
  }

  message(line: string): void {
    this.clear();
    this.out.write(line + '\n');
    this.draw();
  }

  start(scenario: string, kernel: string): void {
    const key = this.key(scenario, kernel);
    this.live.set(key, { key, label: key, phase: 'images', started: Date.now() });
    if (!this.tty) this.out.write(`start  ${key}\n`);
    else {
      this.timer ??= setInterval(() => this.redraw(), 500);
      this.redraw();
    }
  }

  event(e: RunEvent): void {
    const l = this.live.get(this.key(e.scenario, e.kernel));
    if (!l) return;
    if (e.type === 'phase') l.phase = e.phase;
    if (e.type === 'stage') {
      l.stage = e.stage;
      if (!this.tty) this.out.write(`stage  ${l.key}: ${e.stage} (${(e.elapsedMs / 1000).toFixed(1)} s)\n`);
    }
    if (this.tty && e.type !== 'console') this.redraw();
  }

  end(r: RunRecord): void {
    const key = this.key(r.scenario, r.kernel);
    this.live.delete(key);
    const line = `${outcomeText(r.outcome, this.tty)}   ${key} (${(r.durationMs / 1000).toFixed(1)} s)`;
    this.message(line);
    if (this.live.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.clear();
  }

  private clear(): void {
    if (!this.tty || this.drawn === 0) return;
    this.out.write(`\x1b[${this.drawn}A\x1b[J`);
    this.drawn = 0;
  }

  private draw(): void {
    if (!this.tty) return;
    const lines = [...this.live.values()].map((l) => {
      const t = ((Date.now() - l.started) / 1000).toFixed(0).padStart(4);
      const where = l.phase === 'images' ? 'building images' : l.stage ? `last stage: ${l.stage}` : 'booting';
      return dim(`  ${t}s  ${l.label}  ${where}`, true);
    });
    if (lines.length) this.out.write(lines.join('\n') + '\n');
    this.drawn = lines.length;
  }

  private redraw(): void {
    this.clear();
    this.draw();
  }
}

/** The firmware of a run and its boot path: `bios`, `uefi`, `uefi via systemd-boot`. */
export function fwText(r: Pick<RunRecord, 'firmware' | 'boot'>): string {
  return `${r.firmware ?? 'bios'}${r.boot ? ` via ${r.boot}` : ''}`;
}

/** The architecture, when not the default one (the kernel's name says it too), and the firmware. */
function archFwText(r: Pick<RunRecord, 'firmware' | 'boot' | 'arch'>): string {
  return `${r.arch && r.arch !== DEFAULT_ARCH ? `${r.arch}, ` : ''}${fwText(r)}`;
}

function pad(s: string, n: number): string {
  // pad by visible width (ANSI codes do not count)
  const visible = s.replace(/\x1b\[[0-9;]*m/g, '').length;
  return s + ' '.repeat(Math.max(0, n - visible));
}

/** A scenario x kernel table and the details of every run that did not pass. */
export function summaryText(report: MatrixReport, tty: boolean): string {
  const runs = report.runs;
  // A skipped cell never booted: it has no firmware to report.
  const booted = runs.filter((r) => r.outcome !== 'skipped');
  const scenarios = [...new Set(runs.map((r) => r.scenario))];
  const kernels = [...new Set(runs.map((r) => r.kernel))];
  const out: string[] = [];
  const w0 = Math.max(8, ...scenarios.map((s) => s.length)) + 2;
  const cell = (r: RunRecord | undefined): string =>
    !r
      ? '-'
      : r.outcome === 'skipped'
        ? outcomeText(r.outcome, tty)
        : `${outcomeText(r.outcome, tty)}${r.flaky ? yellow(' flaky', tty) : ''} ${dim(`${(r.durationMs / 1000).toFixed(1)}s`, tty)}`;
  const widths = kernels.map((k) => Math.max(k.length, 14) + 2);
  out.push(bold(pad('scenario', w0) + kernels.map((k, i) => pad(k, widths[i])).join(''), tty));
  for (const s of scenarios) {
    out.push(pad(s, w0) + kernels.map((k, i) => pad(cell(runs.find((r) => r.scenario === s && r.kernel === k)), widths[i])).join(''));
  }
  for (const r of runs) {
    if (r.evidence.length === 0 && r.behaviours.length === 0 && r.outcome === 'passed' && !r.attempts) continue;
    out.push('');
    out.push(
      `${outcomeText(r.outcome, tty)} ${bold(`${r.scenario} on ${r.kernel}`, tty)} (${r.kernelRelease}, ${r.accel}, ${archFwText(r)})`,
    );
    if (r.attempts && r.attempts.length > 1) {
      out.push(`  ${r.flaky ? yellow('flaky: ', tty) : ''}${r.attempts.length} attempts:`);
      r.attempts.forEach((a, i) =>
        out.push(`    ${i + 1}. ${a.outcome}${a.message ? `: ${a.message.split('\n')[0]}` : ''}${a.artifacts ? ` (${a.artifacts})` : ''}`),
      );
    }
    for (const b of r.behaviours) out.push(`  behaviour: ${b}`);
    for (const e of r.evidence) out.push(dim(`  ${e}`, tty));
    if (r.outcome === 'skipped') {
      // Not booted: the reason is all there is to say (no console, no artifacts).
      out.push(`  skipped: ${r.message ?? ''}`);
    } else if (r.outcome !== 'passed') {
      out.push(...(r.message ?? '').split('\n').map((l) => `  ${yellow(l, tty)}`));
      if (r.artifacts) out.push(`  artifacts: ${r.artifacts.dir}`);
      out.push(`  rerun: ${r.rerun}`);
    }
  }
  const s = report.summary;
  const skipped = s.skipped ?? 0;
  const parts = [`${s.passed} passed`, `${s.total - s.passed - skipped} failed`, ...(skipped ? [`${skipped} skipped`] : [])];
  const extra = ['panic', 'timeout', 'missing-stage', 'error'].filter((k) => s[k]).map((k) => `${s[k]} ${k}`);
  const mem = [...new Set(runs.map((r) => r.memoryMiB))].sort((a, b) => a - b);
  out.push('');
  out.push(
    `${parts.join(', ')}${extra.length ? ` (${extra.join(', ')})` : ''} in ${(report.durationMs / 1000).toFixed(1)} s` +
      `${mem.length ? `, ${mem.join('/')} MiB per VM` : ''}, accel ${report.accel} (${report.accelReason})` +
      `${booted.length ? `, firmware ${[...new Set(booted.map(fwText))].join('/')}` : ''}` +
      `${booted.some((r) => r.arch && r.arch !== DEFAULT_ARCH) ? `, arch ${[...new Set(booted.map((r) => r.arch ?? DEFAULT_ARCH))].join('/')}` : ''}`,
  );
  return out.join('\n') + '\n';
}
