/**
 * `/proc/<pid>/mountinfo` per proc(5):
 *
 *   36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
 *   (1)(2) (3)   (4)   (5)      (6)     (7)   (8) (9)   (10)        (11)
 *
 * mount id, parent id, major:minor, root, mount point, mount options, zero or more optional
 * fields, a `-` separator, filesystem type, source, super options. The kernel writes space,
 * tab, newline and backslash in root, mount point and source as octal escapes (`\040` ...);
 * they are decoded here. Each entry keeps its raw line.
 */

export interface MountinfoEntry {
  mountId: number;
  parentId: number;
  major: number;
  minor: number;
  root: string;
  mountPoint: string;
  options: string;
  optionalFields: string[];
  fsType: string;
  source: string;
  superOptions: string;
  raw: string;
}

/**
 * A mount's propagation, read from its optional fields (see mount_namespaces(7)):
 * `shared:N` (a member of peer group N), `master:N` (a slave of peer group N),
 * `propagate_from:N` (the nearest dominant peer group, for a slave), `unbindable`.
 * A mount with none of them is private.
 */
export interface Propagation {
  /** The peer group it is a member of (`shared:N`). */
  shared?: number;
  /** The peer group it receives from (`master:N`): a slave mount. */
  master?: number;
  /** `propagate_from:N`: the nearest dominant peer group, when it differs from master. */
  propagateFrom?: number;
  unbindable: boolean;
  /** 'shared', 'slave', 'shared+slave', 'private' or 'unbindable', as mount(8) names them. */
  kind: 'shared' | 'slave' | 'shared+slave' | 'private' | 'unbindable';
}

/** The propagation fields of a mount entry (its optional fields, parsed). */
export function propagationOf(e: Pick<MountinfoEntry, 'optionalFields'>): Propagation {
  const out: Propagation = { unbindable: false, kind: 'private' };
  for (const f of e.optionalFields) {
    const m = /^(shared|master|propagate_from):(\d+)$/.exec(f);
    if (m?.[1] === 'shared') out.shared = Number(m[2]);
    else if (m?.[1] === 'master') out.master = Number(m[2]);
    else if (m?.[1] === 'propagate_from') out.propagateFrom = Number(m[2]);
    else if (f === 'unbindable') out.unbindable = true;
  }
  out.kind = out.unbindable
    ? 'unbindable'
    : out.shared !== undefined && out.master !== undefined
      ? 'shared+slave'
      : out.shared !== undefined
        ? 'shared'
        : out.master !== undefined
          ? 'slave'
          : 'private';
  return out;
}

/** Comma-separated options (`rw,relatime,size=1024k`) as name -> value (undefined for a bare flag). */
export function parseOptions(text: string): Map<string, string | undefined> {
  const out = new Map<string, string | undefined>();
  if (!text) return out;
  for (const part of text.split(',')) {
    const eq = part.indexOf('=');
    if (eq < 0) out.set(part, undefined);
    else out.set(part.slice(0, eq), part.slice(eq + 1));
  }
  return out;
}

export class MountinfoParseError extends Error {
  override name = 'MountinfoParseError';
}

/** Decode the kernel's octal escapes (`\040` space, `\011` tab, `\012` newline, `\134` backslash, any `\ooo`). */
export function unescapeMountinfo(field: string): string {
  if (!field.includes('\\')) return field;
  const bytes: number[] = [];
  const src = Buffer.from(field, 'utf8');
  for (let i = 0; i < src.length; i++) {
    const c = src[i]!;
    if (c === 0x5c && i + 3 < src.length && isOctal(src[i + 1]) && isOctal(src[i + 2]) && isOctal(src[i + 3])) {
      bytes.push(((src[i + 1]! - 0x30) << 6) | ((src[i + 2]! - 0x30) << 3) | (src[i + 3]! - 0x30));
      i += 3;
    } else {
      bytes.push(c);
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

function isOctal(c: number | undefined): boolean {
  return c !== undefined && c >= 0x30 && c <= 0x37;
}

/** Parse one line; `lineNo` is only used in the error message. */
export function parseMountinfoLine(line: string, lineNo = 1): MountinfoEntry {
  const fail = (why: string): never => {
    throw new MountinfoParseError(`mountinfo line ${lineNo} is malformed (${why}): ${JSON.stringify(line)}`);
  };
  const f = line.split(' ');
  const sep = f.indexOf('-', 6);
  if (sep === -1) fail(`no "-" separator after the mount options`);
  if (f.length - sep - 1 < 3) fail(`expected filesystem type, source and super options after "-", got ${f.length - sep - 1} fields`);
  const int = (s: string, what: string): number => {
    if (!/^[0-9]+$/.test(s)) fail(`${what} ${JSON.stringify(s)} is not a number`);
    return Number(s);
  };
  const dev = /^([0-9]+):([0-9]+)$/.exec(f[2]!);
  if (!dev) fail(`major:minor ${JSON.stringify(f[2])} is not two numbers`);
  const fsType = f[sep + 1]!;
  if (fsType === '') fail('empty filesystem type');
  return {
    mountId: int(f[0]!, 'mount id'),
    parentId: int(f[1]!, 'parent id'),
    major: Number(dev![1]),
    minor: Number(dev![2]),
    root: unescapeMountinfo(f[3]!),
    mountPoint: unescapeMountinfo(f[4]!),
    options: f[5]!,
    optionalFields: f.slice(6, sep),
    fsType,
    source: unescapeMountinfo(f[sep + 2]!),
    // Super options are the last field; should a filesystem ever print a space in them, keep it.
    superOptions: f.slice(sep + 3).join(' '),
    raw: line,
  };
}

/** Parse a whole mountinfo text (blank lines and a trailing `\r` are ignored). */
export function parseMountinfo(text: string): MountinfoEntry[] {
  const entries: MountinfoEntry[] = [];
  text.split('\n').forEach((line, i) => {
    const l = line.endsWith('\r') ? line.slice(0, -1) : line;
    if (l.trim() === '') return;
    entries.push(parseMountinfoLine(l, i + 1));
  });
  return entries;
}

function normalizePoint(p: string): string {
  if (p.length > 1) {
    const stripped = p.replace(/\/+$/, '');
    return stripped === '' ? '/' : stripped;
  }
  return p;
}

function showPath(p: string): string {
  return /[\s"\\]|^$/.test(p) ? JSON.stringify(p) : p;
}

/** The mount table of one process, in file order. */
export class Mountinfo {
  readonly entries: readonly MountinfoEntry[];

  constructor(entries: readonly MountinfoEntry[]) {
    this.entries = entries;
  }

  static parse(text: string): Mountinfo {
    return new Mountinfo(parseMountinfo(text));
  }

  /** The raw text, one line per entry. */
  get raw(): string {
    return this.entries.map((e) => e.raw + '\n').join('');
  }

  /** The topmost mount at `mountPoint`: the last entry in file order on that point. A trailing `/` is ignored. */
  at(mountPoint: string): MountinfoEntry | undefined {
    const p = normalizePoint(mountPoint);
    for (let i = this.entries.length - 1; i >= 0; i--) {
      if (this.entries[i]!.mountPoint === p) return this.entries[i];
    }
    return undefined;
  }

  /** All mounts at `mountPoint`, bottom first (file order). */
  allAt(mountPoint: string): MountinfoEntry[] {
    const p = normalizePoint(mountPoint);
    return this.entries.filter((e) => e.mountPoint === p);
  }

  byId(id: number): MountinfoEntry | undefined {
    return this.entries.find((e) => e.mountId === id);
  }

  /** The parent mount, or undefined when it lies outside this view (or the mount is its own parent). */
  parentOf(entry: MountinfoEntry): MountinfoEntry | undefined {
    if (entry.parentId === entry.mountId) return undefined;
    return this.byId(entry.parentId);
  }

  childrenOf(entry: MountinfoEntry): MountinfoEntry[] {
    return this.entries.filter((e) => e.parentId === entry.mountId && e !== entry && e.mountId !== entry.mountId);
  }

  /**
   * The mounts as an indented tree (children under their parent), for failure messages and reports:
   *
   *   / rootfs rootfs rw [id 1]
   *     /proc proc proc rw,relatime [id 22]
   *
   * Mounts whose parent is not in this view start a tree of their own.
   */
  tree(): string {
    const lines: string[] = [];
    const seen = new Set<MountinfoEntry>();
    const walk = (e: MountinfoEntry, depth: number): void => {
      if (seen.has(e)) return;
      seen.add(e);
      lines.push('  '.repeat(depth) + Mountinfo.describe(e));
      for (const c of this.childrenOf(e)) walk(c, depth + 1);
    };
    for (const e of this.entries) if (!this.parentOf(e)) walk(e, 0);
    // Parent cycles (never from a real kernel): show what is left rather than hide it.
    for (const e of this.entries) walk(e, 0);
    return lines.join('\n');
  }

  /** One mount on one line: `mountPoint fsType source options [id N, root R, optional fields]`. */
  static describe(e: MountinfoEntry): string {
    const extra = [`id ${e.mountId}`];
    if (e.root !== '/') extra.push(`root ${showPath(e.root)}`);
    if (e.optionalFields.length > 0) extra.push(e.optionalFields.join(' '));
    return `${showPath(e.mountPoint)} ${e.fsType} ${showPath(e.source)} ${e.options} [${extra.join(', ')}]`;
  }

  toJSON(): MountinfoEntry[] {
    return this.entries.map((e) => ({ ...e, optionalFields: [...e.optionalFields] }));
  }

  static fromJSON(entries: readonly MountinfoEntry[]): Mountinfo {
    return new Mountinfo(entries.map((e) => ({ ...e, optionalFields: [...e.optionalFields] })));
  }
}
