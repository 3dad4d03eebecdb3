/**
 * `rootprobe diff`: the readback of the same scenario on two kernels, side by side, showing
 * only what differs: a mount's parent or fs type, a process's exe text, a command's exit
 * status, a recorded value, the behaviour the scenario saw. For patch validation: a kernel
 * developer sees what a patch changed in the mount tree, not two walls of mountinfo.
 *
 * Mount ids and pids differ between boots, so both sides are first reduced to a comparable
 * form: mounts keyed by mount point (stacked mounts numbered bottom up) and described by fs
 * type, source, root and their parent's mount point; processes keyed by command
 * line (kernel threads and the probe's own processes left out).
 */
import { Stage, type StageJSON } from '../readback/snapshot.ts';
import type { RunRecord } from '../run/run-scenario.ts';

export interface Difference {
  /** e.g. 'stage realroot', or '' for the run itself */
  where: string;
  /** e.g. 'mount /', 'process sleep 1000', 'command pivot', 'var pivot_errno' */
  what: string;
  a: string;
  b: string;
}

type Facts = Map<string, string>;

function mountFacts(stage: Stage): Facts {
  const out: Facts = new Map();
  const mi = stage.mountinfo;
  const count = new Map<string, number>();
  for (const e of mi.entries) {
    const n = (count.get(e.mountPoint) ?? 0) + 1;
    count.set(e.mountPoint, n);
    const key = n === 1 ? `mount ${e.mountPoint}` : `mount ${e.mountPoint} #${n}`;
    const parent = mi.parentOf(e);
    // The parent by its mount point only: a change of the parent's own type is reported on
    // the parent, not again on each of its children.
    const parentText = e.parentId === e.mountId ? 'itself (top of the tree)' : parent ? parent.mountPoint : 'not visible from this root';
    out.set(key, `${e.fsType} from ${e.source}, root ${e.root}, parent ${parentText}`);
  }
  return out;
}

function processFacts(stage: Stage): Facts {
  const out: Facts = new Map();
  for (const p of stage.processes) {
    if (p.probe || p.cmdline.length === 0) continue; // the probe's own, and kernel threads
    let key = `process ${p.cmdline.join(' ')}`;
    for (let i = 2; out.has(key); i++) key = `process ${p.cmdline.join(' ')} #${i}`;
    out.set(key, `exe ${p.exe ?? '-'}, cwd ${p.cwd ?? '-'}, root ${p.root ?? '-'}${p.pid === 1 ? ' (PID 1)' : ''}`);
  }
  return out;
}

function otherFacts(stage: Stage): Facts {
  const out: Facts = new Map();
  const json = stage.toJSON();
  for (const [name, c] of Object.entries(json.commands ?? {})) {
    const first = c.output.split('\n').find((l) => l.trim()) ?? '';
    out.set(`command ${name}`, `exit ${c.status}${first ? `: ${first.slice(0, 120)}` : ''}`);
  }
  for (const [name, v] of Object.entries(json.vars ?? {})) out.set(`var ${name}`, v);
  return out;
}

function compare(where: string, a: Facts, b: Facts, out: Difference[]): void {
  const keys = [...new Set([...a.keys(), ...b.keys()])];
  for (const k of keys) {
    const va = a.get(k) ?? '(absent)';
    const vb = b.get(k) ?? '(absent)';
    if (va !== vb) out.push({ where, what: k, a: va, b: vb });
  }
}

function toStage(s: StageJSON | Stage): Stage {
  return s instanceof Stage ? s : Stage.fromJSON(s);
}

/** What differs between two runs of the same scenario. */
export function diffRuns(a: RunRecord, b: RunRecord): Difference[] {
  const out: Difference[] = [];
  const run = (what: string, va: string, vb: string): void => {
    if (va !== vb) out.push({ where: '', what, a: va, b: vb });
  };
  run('outcome', a.outcome, b.outcome);
  run('behaviour', a.behaviours.join('; ') || '-', b.behaviours.join('; ') || '-');
  run('stages reported', a.stagesReported.join(' ') || '-', b.stagesReported.join(' ') || '-');
  const names = [...new Set([...a.stages.map((s) => s.name), ...b.stages.map((s) => s.name)])].filter((n) => n !== 'done');
  for (const name of names) {
    const sa = a.stages.filter((s) => s.name === name).pop();
    const sb = b.stages.filter((s) => s.name === name).pop();
    const where = `stage ${name}`;
    if (!sa || !sb) {
      out.push({ where, what: 'reported', a: sa ? 'yes' : 'no', b: sb ? 'yes' : 'no' });
      continue;
    }
    const A = toStage(sa);
    const B = toStage(sb);
    compare(where, mountFacts(A), mountFacts(B), out);
    compare(where, processFacts(A), processFacts(B), out);
    compare(where, otherFacts(A), otherFacts(B), out);
  }
  return out;
}

/** The differences as text: one block per scenario, one line per difference. */
export function diffText(a: RunRecord, b: RunRecord, diffs: Difference[]): string {
  const head = `${a.scenario}: ${a.kernel} (${a.kernelRelease}) vs ${b.kernel} (${b.kernelRelease})`;
  if (diffs.length === 0) return `${head}\n  no differences in the readback\n`;
  const lines = [head];
  let where: string | undefined;
  for (const d of diffs) {
    if (d.where !== where) {
      where = d.where;
      if (where) lines.push(`  ${where}:`);
    }
    const indent = d.where ? '    ' : '  ';
    lines.push(`${indent}${d.what}`);
    lines.push(`${indent}  - ${a.kernel}: ${d.a}`);
    lines.push(`${indent}  + ${b.kernel}: ${d.b}`);
  }
  return lines.join('\n') + '\n';
}
