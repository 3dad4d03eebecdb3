/**
 * A stage's mount tree as `findmnt --tree` prints it (TARGET, SOURCE, FSTYPE, OPTIONS, with
 * the `├─`/`└─` connectors, and findmnt's `SOURCE[/root]` for a mount of a subtree), plus rootprobe's columns: the mount id and what changed since the
 * stage before (tree.ts); then the processes with their exe/cwd/root links, kernel threads
 * counted, not listed. Colour only when asked (the caller decides: a TTY and no NO_COLOR).
 */
import type { StageJSON } from '../readback/snapshot.ts';
import type { LinkText } from '../readback/links.ts';
import type { MountinfoEntry } from '../readback/mountinfo.ts';
import { processRows, stageTree, type MountMark, type MountNode, type StageTree } from './tree.ts';

const SGR = { green: 32, blue: 34, yellow: 33, red: 31, dim: 2, bold: 1, strike: 9 } as const;
type Paint = (s: string, ...codes: Array<keyof typeof SGR>) => string;

function painter(color: boolean): Paint {
  return (s, ...codes) => (color && codes.length && s ? `\x1b[${codes.map((c) => SGR[c]).join(';')}m${s}\x1b[0m` : s);
}

const MARK_COLOR: Record<MountMark, keyof typeof SGR> = { new: 'green', moved: 'blue', hidden: 'yellow', gone: 'red' };

/** Control characters (a newline in a mount point) would break the table: shown escaped. */
function visible(s: string): string {
  return s.replace(/[\x00-\x1F\x7F]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** Pad to a width measured in code points (the connectors are one column each). */
function pad(s: string, w: number): string {
  const n = [...s].length;
  return n >= w ? s : s + ' '.repeat(w - n);
}

function markText(n: MountNode, byId: Map<number, MountNode>): string {
  const parts: string[] = [];
  for (const m of n.marks) {
    if (m === 'moved' && n.before) parts.push(`moved (was ${visible(n.before.mountPoint)}, parent ${n.before.parentId})`);
    else if (m === 'hidden') parts.push('hidden');
    else parts.push(m);
  }
  if (n.hidden && n.hiddenBelow !== undefined) {
    const over = byId.get(n.hiddenBelow)?.entry;
    parts.push(`below ${n.hiddenBelow}${over ? ` (${visible(over.fsType)} at ${visible(over.mountPoint)})` : ''}`);
  }
  if (!n.listed && !n.gone) parts.push(n.entry ? 'not listed (outside this root)' : 'not listed (a parent id)');
  return parts.join(', ');
}

export function treeText(t: StageTree, color = false): string {
  const paint = painter(color);
  const byId = new Map(t.nodes.map((n) => [n.mountId, n]));
  const rows: Array<{ node: MountNode; cells: string[] }> = [];
  const walk = (n: MountNode, prefix: string, connector: string): void => {
    const e = n.entry;
    const target = prefix + connector + (e ? visible(e.mountPoint) : `[mount ${n.mountId}]`);
    rows.push({
      node: n,
      cells: [
        target,
        // findmnt's form for a mount of a filesystem's subtree (a bind mount): the source and, in brackets, that root.
        e ? visible(e.source) + (e.root !== '/' ? `[${visible(e.root)}]` : '') : '?',
        e ? visible(e.fsType) : '?',
        e ? visible(e.options) : '',
        String(n.mountId),
        markText(n, byId),
      ],
    });
    const childPrefix = prefix + (connector === '' ? '' : connector === '├─' ? '│ ' : '  ');
    n.children.forEach((c, i) => walk(c, childPrefix, i === n.children.length - 1 ? '└─' : '├─'));
  };
  for (const r of t.roots) walk(r, '', '');
  const head = ['TARGET', 'SOURCE', 'FSTYPE', 'OPTIONS', 'ID', 'CHANGE'];
  const widths = head.map((h, i) => Math.max([...h].length, ...rows.map((r) => [...r.cells[i]!].length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : i === 4 ? c.padStart(widths[i]!) : pad(c, widths[i]!)))
      .join(' ')
      .trimEnd();
  const out = [paint(line(head), 'bold')];
  for (const r of rows) {
    const n = r.node;
    const text = line(r.cells);
    const first = n.marks[0];
    if (n.gone) out.push(paint(text, 'red', 'strike'));
    else if (first) out.push(paint(text, MARK_COLOR[first]));
    else if (n.hidden || !n.listed) out.push(paint(text, 'dim'));
    else out.push(text);
  }
  return out.join('\n');
}

function linkText(l: LinkText | null, paint: Paint): string {
  if (!l) return '-';
  const path = /[\s"\\]|^$/.test(l.path) ? JSON.stringify(l.path) : visible(l.path);
  return (
    (l.unreachable ? paint('(unreachable)', 'yellow') : '') + (l.deleted ? paint(path, 'red') + paint(' (deleted)', 'red', 'bold') : path)
  );
}

/** The processes of a stage (kernel threads counted, probe processes marked), links changed since `previous` marked. */
export function processText(stage: StageJSON, previous: StageJSON | undefined, color = false): string {
  const paint = painter(color);
  const rows = processRows(stage, previous);
  const shown = rows.filter((r) => !r.kernelThread);
  const table = [['PID', 'PPID', 'COMM', 'EXE', 'CWD', 'ROOT', 'NOTE']];
  const plain: string[][] = [['PID', 'PPID', 'COMM', 'EXE', 'CWD', 'ROOT', 'NOTE']];
  for (const r of shown) {
    const p = r.proc;
    const notes: string[] = [];
    if (p.probe) notes.push('probe');
    for (const k of ['exe', 'cwd', 'root'] as const) if (k in r.changed) notes.push(`${k} was ${r.changed[k] ?? '-'}`);
    if (r.new) notes.push('new');
    const cells = [String(p.pid), String(p.ppid), visible(p.comm)];
    const plainCells = [...cells];
    for (const k of ['exe', 'cwd', 'root'] as const) {
      const changed = k in r.changed;
      cells.push(changed ? paint(linkText(r.links[k], painter(false)), 'blue') : linkText(r.links[k], paint));
      plainCells.push(linkText(r.links[k], painter(false)));
    }
    cells.push(visible(notes.join('; ')));
    plainCells.push(visible(notes.join('; ')));
    table.push(cells);
    plain.push(plainCells);
  }
  const widths = plain[0]!.map((_, i) => Math.max(...plain.map((r) => [...r[i]!].length)));
  const out = table.map((r, j) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c + ' '.repeat(Math.max(0, widths[i]! - [...plain[j]![i]!].length))))
      .join('  ')
      .trimEnd(),
  );
  out[0] = paint(out[0]!, 'bold');
  const k = rows.length - shown.length;
  if (k > 0) out.push(paint(`(${k} kernel threads not shown)`, 'dim'));
  return out.join('\n');
}

/** A mount table: a Mountinfo (or anything with its entries) or the entries themselves. */
export type MountTable = readonly MountinfoEntry[] | { readonly entries: readonly MountinfoEntry[] };

const entriesOf = (t: MountTable): MountinfoEntry[] => [...(Array.isArray(t) ? t : (t as { entries: readonly MountinfoEntry[] }).entries)];

/**
 * A mount table as `rootprobe show` prints a stage (findmnt's tree), for failure messages; no
 * colour. With `previous` (the stage before's table), the CHANGE column says what changed since.
 */
export function mountTreeText(table: MountTable, previous?: MountTable): string {
  const stage = (t: MountTable, name: string): StageJSON => ({ name, seq: 0, mountinfo: entriesOf(t) }) as unknown as StageJSON;
  return treeText(stageTree(stage(table, 'this'), previous ? stage(previous, 'previous') : undefined));
}
