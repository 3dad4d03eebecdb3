/**
 * A stage snapshot: the payload of one frame, a newc cpio archive whose members are listed in
 * docs/protocol.md (meta, mountinfo.self, mountinfo.1, proc/<pid>/..., files/..., cmd/..., vars/...).
 * `parseSnapshot` turns it into a `Stage` that tests and assertions query.
 */
import { readNewc } from '../cpio/index.ts';
import { Mountinfo, MountinfoParseError, type MountinfoEntry } from './mountinfo.ts';
import { parseLink } from './links.ts';

export interface ProcessInfo {
  pid: number;
  ppid: number;
  comm: string;
  cmdline: string[];
  /** Raw link text, decorations such as ` (deleted)` and `(unreachable)` intact; null when unreadable. */
  exe: string | null;
  cwd: string | null;
  /**
   * The cwd as the process itself sees it (read from inside its own root, as its getcwd(2)
   * does): `(unreachable)/...` when its cwd lies outside its root (seed 001). Present only
   * when its root is not the probe's, where the two views can differ.
   */
  ownCwd?: string;
  root: string | null;
  fds: Array<{ fd: number; target: string }>;
  /** The probe shell itself or one of its descendants (by ppid). */
  probe: boolean;
}

export interface CommandResult {
  output: string;
  status: number;
}

/** `Stage.toJSON()`: plain data, JSON-safe. */
export interface StageJSON {
  name: string;
  seq: number;
  uname: string;
  probePid: number;
  /** Seconds since boot (from /proc/uptime), when the guest sent it. */
  uptime: number | null;
  /** All `meta` keys as sent. */
  meta: Record<string, string>;
  mountinfo: MountinfoEntry[];
  pid1Mountinfo: MountinfoEntry[];
  processes: ProcessInfo[];
  /** Guest files by absolute path, decoded as UTF-8. */
  files: Record<string, string>;
  commands: Record<string, CommandResult>;
  vars: Record<string, string>;
}

/** The snapshot does not follow docs/protocol.md (a probe bug, or a damaged archive that passed the hash). */
export class SnapshotError extends Error {
  override name = 'SnapshotError';
}

/** Where an object handed out by a Stage came from; lets assertions show the evidence around it. */
const processOwner = new WeakMap<ProcessInfo, Stage>();
const mountinfoOwner = new WeakMap<Mountinfo, { stage: Stage; member: 'mountinfo.self' | 'mountinfo.1' }>();
const entryOwner = new WeakMap<MountinfoEntry, Mountinfo>();

/** The stage a ProcessInfo belongs to, if it came from one. */
export function stageOfProcess(p: ProcessInfo): Stage | undefined {
  return processOwner.get(p);
}

/** The table a mount entry belongs to, and that table's stage, if they are known. */
export function contextOfMount(e: MountinfoEntry): { mountinfo: Mountinfo; stage?: Stage; member?: string } | undefined {
  const mountinfo = entryOwner.get(e);
  if (!mountinfo) return undefined;
  const owner = mountinfoOwner.get(mountinfo);
  return { mountinfo, stage: owner?.stage, member: owner?.member };
}

/** Register the entries of a Mountinfo built outside a Stage, so that assertions can find their table. */
export function adoptMountinfo(m: Mountinfo): Mountinfo {
  for (const e of m.entries) if (!entryOwner.has(e)) entryOwner.set(e, m);
  return m;
}

function pathKey(path: string): string {
  return '/' + path.replace(/^\/+/, '');
}

function chomp(s: string): string {
  return s.endsWith('\n') ? s.slice(0, -1) : s;
}

/** Mark the probe's processes: probe_pid itself and everything that descends from it via ppid. */
export function markProbeProcesses<T extends { pid: number; ppid: number; probe: boolean }>(procs: T[], probePid: number): T[] {
  const byPid = new Map(procs.map((p) => [p.pid, p]));
  for (const p of procs) {
    let cur: T | undefined = p;
    const seen = new Set<number>();
    let probe = false;
    while (cur && !seen.has(cur.pid)) {
      if (cur.pid === probePid) {
        probe = true;
        break;
      }
      seen.add(cur.pid);
      if (cur.ppid === 0 || cur.ppid === cur.pid) break;
      cur = byPid.get(cur.ppid);
    }
    p.probe = probe;
  }
  return procs;
}

export class Stage {
  readonly name: string;
  readonly seq: number;
  readonly uname: string;
  readonly probePid: number;
  readonly uptime: number | null;
  readonly meta: Record<string, string>;
  /** `/proc/self/mountinfo` of the probe: its mount namespace, seen from its root. */
  readonly mountinfo: Mountinfo;
  /** `/proc/1/mountinfo`: the same namespace (usually), seen from pid 1's root. */
  readonly pid1Mountinfo: Mountinfo;
  /** Sorted by pid; probe processes included (marked `probe: true`). */
  readonly processes: readonly ProcessInfo[];
  readonly files: Record<string, Buffer>;
  readonly commands: Record<string, CommandResult>;
  readonly vars: Record<string, string>;

  constructor(data: {
    name: string;
    seq: number;
    uname: string;
    probePid: number;
    uptime: number | null;
    meta: Record<string, string>;
    mountinfo: Mountinfo;
    pid1Mountinfo: Mountinfo;
    processes: ProcessInfo[];
    files: Record<string, Buffer>;
    commands: Record<string, CommandResult>;
    vars: Record<string, string>;
  }) {
    this.name = data.name;
    this.seq = data.seq;
    this.uname = data.uname;
    this.probePid = data.probePid;
    this.uptime = data.uptime;
    this.meta = data.meta;
    this.mountinfo = data.mountinfo;
    this.pid1Mountinfo = data.pid1Mountinfo;
    this.processes = [...data.processes].sort((a, b) => a.pid - b.pid);
    this.files = data.files;
    this.commands = data.commands;
    this.vars = data.vars;
    for (const p of this.processes) processOwner.set(p, this);
    mountinfoOwner.set(this.mountinfo, { stage: this, member: 'mountinfo.self' });
    mountinfoOwner.set(this.pid1Mountinfo, { stage: this, member: 'mountinfo.1' });
    for (const m of [this.pid1Mountinfo, this.mountinfo]) for (const e of m.entries) entryOwner.set(e, m);
  }

  process(pid: number): ProcessInfo | undefined {
    return this.processes.find((p) => p.pid === pid);
  }

  /** Non-probe processes whose comm is `comm`, by pid. */
  processesNamed(comm: string): ProcessInfo[] {
    return this.processes.filter((p) => !p.probe && p.comm === comm);
  }

  /** The topmost mount at `point` in the probe's view (mountinfo.self). */
  mountAt(point: string): MountinfoEntry | undefined {
    return this.mountinfo.at(point);
  }

  /** A guest file the scenario asked for, as UTF-8 text; undefined if it was absent. */
  file(path: string): string | undefined {
    return this.fileBytes(path)?.toString('utf8');
  }

  fileBytes(path: string): Buffer | undefined {
    return this.files[pathKey(path)];
  }

  command(name: string): CommandResult | undefined {
    return this.commands[name];
  }

  /**
   * The process table as aligned text rows (pid, ppid, comm, exe, cwd, root), for failure
   * messages and reports. Probe processes are left out unless asked for.
   */
  processTable(options: { includeProbe?: boolean; only?: ProcessInfo[] } = {}): string {
    const procs = options.only ?? this.processes.filter((p) => options.includeProbe || !p.probe);
    return formatProcessTable(procs);
  }

  toJSON(): StageJSON {
    const files: Record<string, string> = {};
    for (const [k, v] of Object.entries(this.files)) files[k] = v.toString('utf8');
    const commands: Record<string, CommandResult> = {};
    for (const [k, v] of Object.entries(this.commands)) commands[k] = { ...v };
    return {
      name: this.name,
      seq: this.seq,
      uname: this.uname,
      probePid: this.probePid,
      uptime: this.uptime,
      meta: { ...this.meta },
      mountinfo: this.mountinfo.toJSON(),
      pid1Mountinfo: this.pid1Mountinfo.toJSON(),
      processes: this.processes.map((p) => ({ ...p, cmdline: [...p.cmdline], fds: p.fds.map((f) => ({ ...f })) })),
      files,
      commands,
      vars: { ...this.vars },
    };
  }

  static fromJSON(json: StageJSON): Stage {
    const files: Record<string, Buffer> = {};
    for (const [k, v] of Object.entries(json.files ?? {})) files[k] = Buffer.from(v, 'utf8');
    const commands: Record<string, CommandResult> = {};
    for (const [k, v] of Object.entries(json.commands ?? {})) commands[k] = { ...v };
    return new Stage({
      name: json.name,
      seq: json.seq,
      uname: json.uname,
      probePid: json.probePid,
      uptime: json.uptime ?? null,
      meta: { ...(json.meta ?? {}) },
      mountinfo: Mountinfo.fromJSON(json.mountinfo),
      pid1Mountinfo: Mountinfo.fromJSON(json.pid1Mountinfo),
      processes: json.processes.map((p) => ({ ...p, cmdline: [...p.cmdline], fds: p.fds.map((f) => ({ ...f })) })),
      files,
      commands,
      vars: { ...(json.vars ?? {}) },
    });
  }
}

function cell(s: string | null): string {
  if (s === null) return '-';
  return /[\s"\\]|^$/.test(s) ? JSON.stringify(s) : s;
}

/**
 * Aligned rows: `PID PPID COMM EXE CWD ROOT`; unreadable links show as `-`, texts with spaces or
 * quotes are JSON-quoted. If probe processes are among them, a NOTE column marks them `probe`.
 */
export function formatProcessTable(procs: readonly ProcessInfo[]): string {
  if (procs.length === 0) return '(no processes)';
  const anyProbe = procs.some((p) => p.probe);
  const rows = [['PID', 'PPID', 'COMM', 'EXE', 'CWD', 'ROOT', ...(anyProbe ? ['NOTE'] : [])]];
  for (const p of procs) {
    const row = [String(p.pid), String(p.ppid), cell(p.comm), cell(p.exe), cell(p.cwd), cell(p.root)];
    if (anyProbe) row.push(p.probe ? 'probe' : '');
    rows.push(row);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

function parseMeta(text: string): Record<string, string> {
  const meta: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const l = line.replace(/\r$/, '');
    if (l.trim() === '') continue;
    const eq = l.indexOf('=');
    if (eq <= 0) throw new SnapshotError(`snapshot meta: line ${JSON.stringify(l)} is not key=value`);
    meta[l.slice(0, eq)] = l.slice(eq + 1);
  }
  return meta;
}

function isRegularFile(e: { type?: unknown; mode?: number }): boolean {
  if (typeof e.type === 'string') return e.type === 'file';
  return e.mode !== undefined && (e.mode & 0o170000) === 0o100000;
}

/** Parse a snapshot payload (newc cpio) into a Stage. Throws SnapshotError if it does not follow the protocol. */
export async function parseSnapshot(payload: Buffer): Promise<Stage> {
  let entries: Awaited<ReturnType<typeof readNewc>>;
  try {
    entries = await readNewc(payload);
  } catch (e) {
    throw new SnapshotError(`snapshot is not a readable newc cpio archive (${payload.length} bytes): ${(e as Error).message}`);
  }
  const members = new Map<string, Buffer>();
  for (const e of entries) {
    if (!isRegularFile(e)) continue;
    const p = e.path.replace(/^(\.\/)+/, '').replace(/^\/+/, '');
    members.set(p, e.data);
  }
  const text = (name: string): string | undefined => members.get(name)?.toString('utf8');

  const metaText = text('meta');
  if (metaText === undefined)
    throw new SnapshotError(`snapshot has no "meta" member (members: ${[...members.keys()].slice(0, 10).join(', ') || 'none'})`);
  const meta = parseMeta(metaText);
  const stageName = meta.stage;
  const where = `snapshot of stage ${JSON.stringify(stageName ?? '?')}`;
  const needInt = (key: string): number => {
    const v = meta[key];
    if (v === undefined || !/^[0-9]+$/.test(v.trim())) {
      throw new SnapshotError(`${where}: meta ${key}=${JSON.stringify(v ?? '')} is missing or not a number`);
    }
    return Number(v.trim());
  };
  if (!stageName) throw new SnapshotError(`${where}: meta has no stage= line`);
  // seq is in the protocol, but an older probe did not send it: 0 means "not sent".
  const seq = meta.seq === undefined ? 0 : needInt('seq');
  const probePid = needInt('probe_pid');
  const uptimeText = meta.uptime?.trim().split(/\s+/)[0];
  const uptime = uptimeText !== undefined && /^[0-9]+(\.[0-9]+)?$/.test(uptimeText) ? Number(uptimeText) : null;

  const mountinfoOf = (member: 'mountinfo.self' | 'mountinfo.1'): Mountinfo => {
    const t = text(member);
    if (t === undefined) throw new SnapshotError(`${where}: member "${member}" is missing`);
    try {
      return Mountinfo.parse(t);
    } catch (e) {
      if (e instanceof MountinfoParseError) throw new SnapshotError(`${where}: ${member}: ${e.message}`);
      throw e;
    }
  };
  const mountinfo = mountinfoOf('mountinfo.self');
  const pid1Mountinfo = mountinfoOf('mountinfo.1');

  const procs = new Map<number, Map<string, Buffer>>();
  const files: Record<string, Buffer> = {};
  const cmdOut = new Map<string, string>();
  const cmdRc = new Map<string, string>();
  const vars: Record<string, string> = {};
  for (const [path, data] of members) {
    let m: RegExpExecArray | null;
    if ((m = /^proc\/([0-9]+)\/([^/]+)$/.exec(path))) {
      const pid = Number(m[1]);
      if (!procs.has(pid)) procs.set(pid, new Map());
      procs.get(pid)!.set(m[2]!, data);
    } else if (path.startsWith('files/')) {
      files[pathKey(path.slice('files/'.length))] = data;
    } else if ((m = /^cmd\/(.+)\.(out|rc)$/.exec(path))) {
      (m[2] === 'out' ? cmdOut : cmdRc).set(m[1]!, data.toString('utf8'));
    } else if (path.startsWith('vars/')) {
      vars[path.slice('vars/'.length)] = chomp(data.toString('utf8'));
    }
  }

  const commands: Record<string, CommandResult> = {};
  for (const name of new Set([...cmdOut.keys(), ...cmdRc.keys()])) {
    const rc = cmdRc.get(name)?.trim();
    if (rc === undefined || !/^-?[0-9]+$/.test(rc)) {
      throw new SnapshotError(
        `${where}: command ${JSON.stringify(name)} has no valid exit status in cmd/${name}.rc (got ${JSON.stringify(rc ?? null)})`,
      );
    }
    commands[name] = { output: cmdOut.get(name) ?? '', status: Number(rc) };
  }

  const processes: ProcessInfo[] = [];
  for (const [pid, m] of procs) {
    const str = (k: string): string | undefined => m.get(k)?.toString('utf8');
    const link = (k: string): string | null => {
      const v = str(k);
      return v === undefined ? null : chomp(v);
    };
    const cmdlineText = str('cmdline') ?? '';
    const cmdline = cmdlineText === '' ? [] : cmdlineText.replace(/\0$/, '').split('\0');
    const ppidText = str('ppid')?.trim();
    const fds: Array<{ fd: number; target: string }> = [];
    for (const line of (str('fd') ?? '').split('\n')) {
      const fm = /^([0-9]+) (.*)$/.exec(line);
      if (fm) fds.push({ fd: Number(fm[1]), target: fm[2]! });
    }
    fds.sort((a, b) => a.fd - b.fd);
    processes.push({
      pid,
      ppid: ppidText !== undefined && /^[0-9]+$/.test(ppidText) ? Number(ppidText) : 0,
      comm: chomp(str('comm') ?? ''),
      cmdline,
      exe: link('exe'),
      cwd: link('cwd'),
      ...(m.has('cwd_own') ? { ownCwd: link('cwd_own')! } : {}),
      root: link('root'),
      fds,
      probe: false,
    });
  }
  markProbeProcesses(processes, probePid);

  return new Stage({
    name: stageName,
    seq,
    uname: meta.uname_r ?? '',
    probePid,
    uptime,
    meta,
    mountinfo,
    pid1Mountinfo,
    processes,
    files,
    commands,
    vars,
  });
}

/** Convenience for reports: decorations of a process's links. */
export function linkFacts(p: ProcessInfo): Record<'exe' | 'cwd' | 'root', ReturnType<typeof parseLink> | null> {
  return {
    exe: p.exe === null ? null : parseLink(p.exe),
    cwd: p.cwd === null ? null : parseLink(p.cwd),
    root: p.root === null ? null : parseLink(p.root),
  };
}
