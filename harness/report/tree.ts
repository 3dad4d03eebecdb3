/**
 * The mount tree of one stage and what changed since the stage before: the story of a root
 * switch as data, drawn by the HTML report (html.ts) and by `rootprobe show` (show.ts).
 *
 * A stage lists the mounts the probe can see (its /proc/self/mountinfo). A mount can exist
 * without being listed: after switch_root the probe is chrooted into the new root, so rootfs
 * (mount 1) is not listed, yet the ext4 at `/` still names it as its parent. Such a mount is a
 * node of the tree too, taken from the earliest stage that listed it, or known only by its id.
 *
 * Marks, against the previous stage (matched by mount id):
 * - `new`: the id was not there before (or it is now a different mount: type, source or root changed);
 * - `moved`: the same id under a new parent or at a new mount point;
 * - `hidden`: it is now below an overmount (a later mount at the same point or at an ancestor
 *   of it, not one of its own ancestors), or no longer listed but still a parent of a listed
 *   mount, and it was not hidden before;
 * - `gone`: listed before, neither listed nor anyone's parent now.
 */
import type { MountinfoEntry } from '../readback/mountinfo.ts';
import type { ProcessInfo, StageJSON } from '../readback/snapshot.ts';
import { parseLink, type LinkText } from '../readback/links.ts';

export type MountMark = 'new' | 'moved' | 'hidden' | 'gone';

export const MARK_LEGEND: Record<MountMark, string> = {
  new: 'not there in the previous stage',
  moved: 'the same mount (same id) under a new parent or at a new mount point',
  hidden: 'now below an overmount: covered by a later mount at its point or above it',
  gone: 'listed in the previous stage, not now: unmounted, or out of this view (another mount namespace)',
};

export interface MountNode {
  mountId: number;
  /** The entry as listed in this stage; for a mount not listed, as last listed in an earlier stage. */
  entry?: MountinfoEntry;
  /** Listed in this stage's mountinfo. */
  listed: boolean;
  /** Covered by an overmount (or not listed but a parent of a listed mount). */
  hidden: boolean;
  /** The mount that covers it, when known. */
  hiddenBelow?: number;
  /** The mount is absent now (only with the `gone` mark). */
  gone: boolean;
  marks: MountMark[];
  /** For `moved`: where it was. */
  before?: { parentId: number; mountPoint: string };
  children: MountNode[];
}

export interface StageTree {
  stage: string;
  seq: number;
  previous?: string;
  /** Tops of the tree: mounts whose parent is themselves or unknown, and gone mounts without a place. */
  roots: MountNode[];
  /** Every node, depth first in drawing order. */
  nodes: MountNode[];
}

function isUnder(ancestor: string, p: string): boolean {
  if (ancestor === p) return true;
  if (ancestor === '/') return p.startsWith('/');
  return p.startsWith(ancestor + '/');
}

function sameMount(a: MountinfoEntry, b: MountinfoEntry): boolean {
  return a.fsType === b.fsType && a.source === b.source && a.root === b.root && a.major === b.major && a.minor === b.minor;
}

/** Which listed mounts are covered, and by which (the first later mount over them). */
function coverings(entries: readonly MountinfoEntry[]): Map<number, number> {
  const byId = new Map(entries.map((e) => [e.mountId, e]));
  const ancestors = (e: MountinfoEntry): Set<number> => {
    const out = new Set<number>();
    let cur: MountinfoEntry | undefined = e;
    while (cur && cur.parentId !== cur.mountId && !out.has(cur.parentId)) {
      out.add(cur.parentId);
      cur = byId.get(cur.parentId);
    }
    return out;
  };
  const out = new Map<number, number>();
  entries.forEach((m, i) => {
    const anc = ancestors(m);
    for (let j = i + 1; j < entries.length; j++) {
      const n = entries[j]!;
      if (n.mountId === m.mountId || anc.has(n.mountId)) continue;
      if (isUnder(n.mountPoint, m.mountPoint)) {
        out.set(m.mountId, n.mountId);
        return;
      }
    }
  });
  return out;
}

interface Snapshot {
  listed: Map<number, MountinfoEntry>;
  hidden: Set<number>;
  present: Set<number>;
}

/**
 * The tree of `stage`; `previous` is the stage before (for the marks), `earlier` every stage
 * before it (where a mount that is not listed now was last seen).
 */
export function stageTree(stage: StageJSON, previous?: StageJSON, earlier: readonly StageJSON[] = previous ? [previous] : []): StageTree {
  const before = previous ? snapshotOf(previous, earlier.slice(0, Math.max(0, earlier.indexOf(previous)))) : undefined;
  const lastSeen = new Map<number, MountinfoEntry>();
  for (const s of earlier) for (const e of s.mountinfo) lastSeen.set(e.mountId, e);

  const nodes = new Map<number, MountNode>();
  const make = (id: number, entry: MountinfoEntry | undefined, listed: boolean): MountNode => {
    const n: MountNode = { mountId: id, entry, listed, hidden: false, gone: false, marks: [], children: [] };
    nodes.set(id, n);
    return n;
  };
  for (const e of stage.mountinfo) make(e.mountId, e, true);
  // Parents that are not listed: known from an earlier stage, or by their id alone.
  for (const e of stage.mountinfo) {
    if (e.parentId !== e.mountId && !nodes.has(e.parentId)) make(e.parentId, lastSeen.get(e.parentId), false);
  }
  const covered = coverings(stage.mountinfo);
  for (const n of nodes.values()) {
    if (n.listed) {
      const by = covered.get(n.mountId);
      if (by !== undefined) {
        n.hidden = true;
        n.hiddenBelow = by;
      }
    } else if (n.entry) {
      // Not listed, still a parent: below whichever listed mount sits at or above its old point.
      const over = stage.mountinfo.find((e) => e.parentId === n.mountId && isUnder(e.mountPoint, n.entry!.mountPoint));
      n.hidden = true;
      if (over) n.hiddenBelow = over.mountId;
    }
  }
  // Gone: there before, absent now.
  if (before) {
    for (const id of before.present) {
      if (nodes.has(id)) continue;
      const e = before.listed.get(id) ?? lastSeen.get(id);
      if (!e) continue;
      const n = make(id, e, false);
      n.gone = true;
      n.marks.push('gone');
    }
  }
  // Marks.
  for (const n of nodes.values()) {
    if (!before || n.gone) continue;
    const was = before.listed.get(n.mountId);
    const existed = before.present.has(n.mountId);
    if (!existed || (was && n.entry && n.listed && !sameMount(was, n.entry))) {
      n.marks.push('new');
      continue;
    }
    if (was && n.entry && n.listed && (was.parentId !== n.entry.parentId || was.mountPoint !== n.entry.mountPoint)) {
      n.marks.push('moved');
      n.before = { parentId: was.parentId, mountPoint: was.mountPoint };
    }
    if (n.hidden && !before.hidden.has(n.mountId)) n.marks.push('hidden');
  }
  // Links, in listing order; not-listed parents before their children.
  const parentOf = (n: MountNode): number | undefined => {
    if (!n.entry || n.entry.parentId === n.mountId) return undefined;
    if (!n.listed && !n.gone) return undefined; // known from an earlier stage: its old parent says nothing now
    return n.entry.parentId;
  };
  const order = [
    ...[...nodes.values()].filter((n) => !n.listed && !n.gone),
    ...stage.mountinfo.map((e) => nodes.get(e.mountId)!),
    ...[...nodes.values()].filter((n) => n.gone),
  ];
  const roots: MountNode[] = [];
  for (const n of order) {
    const p = parentOf(n);
    const parent = p === undefined ? undefined : nodes.get(p);
    if (parent && parent !== n && !isDescendant(parent, n)) parent.children.push(n);
    else roots.push(n);
  }
  const flat: MountNode[] = [];
  const walk = (n: MountNode): void => {
    flat.push(n);
    for (const c of n.children) walk(c);
  };
  for (const r of roots) walk(r);
  return { stage: stage.name, seq: stage.seq, previous: previous?.name, roots, nodes: flat };
}

function isDescendant(candidate: MountNode, of: MountNode): boolean {
  for (const c of of.children) if (c === candidate || isDescendant(candidate, c)) return true;
  return false;
}

function snapshotOf(stage: StageJSON, earlier: readonly StageJSON[]): Snapshot {
  const listed = new Map(stage.mountinfo.map((e) => [e.mountId, e]));
  const present = new Set(listed.keys());
  const hidden = new Set(coverings(stage.mountinfo).keys());
  const seen = new Set<number>();
  for (const s of earlier) for (const e of s.mountinfo) seen.add(e.mountId);
  for (const e of stage.mountinfo) {
    if (e.parentId !== e.mountId && !listed.has(e.parentId)) {
      present.add(e.parentId);
      if (seen.has(e.parentId)) hidden.add(e.parentId);
    }
  }
  return { listed, hidden, present };
}

/** The trees of every stage of a run, in the order the stages reported. */
export function runTrees(stages: readonly StageJSON[]): StageTree[] {
  return stages.map((s, i) => stageTree(s, i > 0 ? stages[i - 1] : undefined, stages.slice(0, i)));
}

/** A mount's marks by id, for tests and the browser check. */
export function marksById(t: StageTree): Map<number, MountMark[]> {
  return new Map(t.nodes.map((n) => [n.mountId, n.marks]));
}

export interface ProcessRow {
  proc: ProcessInfo;
  kernelThread: boolean;
  links: { exe: LinkText | null; cwd: LinkText | null; root: LinkText | null };
  /** The link texts that differ from the same pid in the previous stage, with the old text. */
  changed: Partial<Record<'exe' | 'cwd' | 'root', string | null>>;
  /** The pid was not in the previous stage. */
  new: boolean;
}

/** A kernel thread: no command line, and kthreadd or one of its children. */
export function isKernelThread(p: ProcessInfo): boolean {
  return p.cmdline.length === 0 && (p.pid === 2 || p.ppid === 2);
}

export function processRows(stage: StageJSON, previous?: StageJSON): ProcessRow[] {
  const prev = new Map((previous?.processes ?? []).map((p) => [p.pid, p]));
  return stage.processes.map((p) => {
    const was = prev.get(p.pid);
    const changed: ProcessRow['changed'] = {};
    if (was && was.comm === p.comm) {
      for (const k of ['exe', 'cwd', 'root'] as const) if (was[k] !== p[k]) changed[k] = was[k];
    }
    const link = (t: string | null): LinkText | null => (t === null ? null : parseLink(t));
    return {
      proc: p,
      kernelThread: isKernelThread(p),
      links: { exe: link(p.exe), cwd: link(p.cwd), root: link(p.root) },
      changed,
      new: Boolean(previous) && (!was || was.comm !== p.comm),
    };
  });
}

/** Console lines worth a colour: a panic, an oops or a kernel warning. */
export function consoleLineKind(line: string): 'panic' | 'warning' | undefined {
  if (/Kernel panic|BUG:|Oops|general protection fault|Call Trace:|RIP: /.test(line)) return 'panic';
  if (/WARNING:|------------\[ cut here \]|\bwarn(ing)?\b|\berror\b|\bfailed\b/i.test(line)) return 'warning';
  return undefined;
}
