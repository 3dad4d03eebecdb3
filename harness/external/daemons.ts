/**
 * External mode's stand-in root storage daemons (`--storage-daemons`, seed 000): two processes
 * the initramfs starts from its own `sleep` before the distro's init runs (guest/init.sh).
 * systemd spares a process whose argv[0] begins with `@` at the switch out of the initramfs and
 * at its final killing spree (systemd.io's ROOT_STORAGE_DAEMONS); every other process left from
 * the initramfs it signals. This module finds both daemons in each stage's process table, says
 * where each was seen and where it was gone, and checks the one promise: the marked daemon is
 * alive in every stage.
 */
import type { ProcessInfo } from '../readback/snapshot.ts';
import type { StorageDaemons } from './segment.ts';

/** A stage as a Stage or its JSON: its name and process table. */
export type StageProcesses = { name: string; processes: readonly ProcessInfo[] };

/** argv[0] of the marked daemon, of the same daemon in the broken twin, and of the plain one. */
export const MARKED = '@rootprobe-storaged';
export const UNMARKED = 'rootprobe-storaged';
export const PLAIN = 'rootprobe-storaged-plain';

/**
 * The stages the daemons are looked for in, in boot order: `killing-spree` is the agent's, taken
 * when systemd-shutdown's SIGTERM to every remaining process reaches it (only with the daemons,
 * and only where systemd is the real root's init), before the shutdown initramfs (if any).
 */
export const DAEMON_STAGES = ['initramfs', 'realroot', 'killing-spree', 'shutdown'];

export interface DaemonFate {
  /** argv[0] as started (the marked one's, or its unmarked twin's, or the plain one's). */
  argv0: string;
  /** Whether this is the daemon that must survive (marked, or the twin that should have been). */
  storage: boolean;
  /** Per stage in order: the process, or undefined where it was gone. */
  seen: Array<{ stage: string; process?: ProcessInfo }>;
}

function argv0(p: ProcessInfo): string | undefined {
  return p.cmdline[0];
}

/**
 * Where each daemon was seen, stage by stage (stages in the order they were taken); `mode` is
 * how they were started ('unmarked': the storage daemon without its `@`).
 */
export function daemonFates(stages: StageProcesses[], mode: StorageDaemons = 'marked'): DaemonFate[] {
  const storageName = mode === 'unmarked' ? UNMARKED : MARKED;
  return [
    { argv0: storageName, storage: true },
    { argv0: PLAIN, storage: false },
  ].map((d) => ({
    ...d,
    seen: stages.map((s) => ({ stage: s.name, process: s.processes.find((p) => argv0(p) === d.argv0) })),
  }));
}

/** How a process is told from the stage's own: its links as the probe read them. */
export function daemonLinks(p: ProcessInfo): string {
  return `pid ${p.pid}, exe ${p.exe ?? '?'}, cwd ${p.cwd ?? '?'}, root ${p.root ?? '?'}`;
}

/** One behaviour line per daemon: `@rootprobe-storaged: alive at initramfs, realroot, shutdown`. */
export function daemonBehaviours(fates: DaemonFate[]): string[] {
  return fates.map((f) => {
    const alive = f.seen.filter((s) => s.process).map((s) => s.stage);
    const gone = f.seen.filter((s) => !s.process).map((s) => s.stage);
    const parts = [alive.length ? `alive at ${alive.join(', ')}` : 'never seen'];
    if (gone.length && alive.length) parts.push(`gone at ${gone.join(', ')}`);
    return `storage daemon ${f.argv0}: ${parts.join('; ')}`;
  });
}

/** One evidence line per stage and daemon, with its exe, cwd and root links. */
export function daemonEvidence(fates: DaemonFate[]): string[] {
  return fates.flatMap((f) => f.seen.map((s) => `${s.stage}: ${f.argv0} ${s.process ? daemonLinks(s.process) : 'gone'}`));
}

/**
 * The storage daemon (argv[0] `@...`) must be alive in every stage; a message saying where it
 * was gone (and, for the unmarked twin, why), or undefined.
 */
export function storageDaemonProblem(fates: DaemonFate[]): string | undefined {
  const d = fates.find((f) => f.storage)!;
  const gone = d.seen.filter((s) => !s.process).map((s) => s.stage);
  if (gone.length === 0) return undefined;
  if (gone.length === d.seen.length)
    return `the storage daemon ${d.argv0} was in no stage: it never started (it needs a sleep program of the initramfs's own, not busybox's; the console says why)`;
  const why = d.argv0.startsWith('@') ? '' : `: its argv[0] '${d.argv0}' lacks the '@' that tells systemd to spare a root storage daemon`;
  return `the storage daemon ${d.argv0} is gone at ${gone.join(', ')}${why}`;
}
