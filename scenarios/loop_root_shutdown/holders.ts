/**
 * Who keeps a mount busy, from a stage's readback: the processes whose cwd, root, exe or open
 * fds lie on that mount (the mount with the longest mount point that is a prefix of the
 * path, in the probe's view), and what a failed command's message says in errno terms.
 */
import { parseLink } from '../../harness/readback/links.ts';
import type { MountinfoEntry } from '../../harness/readback/mountinfo.ts';
import type { ProcessInfo, Stage } from '../../harness/readback/snapshot.ts';

export interface Hold {
  pid: number;
  comm: string;
  /** 'cwd', 'root', 'exe' or 'fd N'. */
  what: string;
  /** The link text as read. */
  target: string;
}

function under(p: string, point: string): boolean {
  return point === '/' || p === point || p.startsWith(`${point}/`);
}

/** The mount a path lies on in `stage`'s own view (mountinfo.self), or undefined. */
export function mountOf(stage: Stage, p: string): MountinfoEntry | undefined {
  let best: MountinfoEntry | undefined;
  for (const e of stage.mountinfo.entries) {
    // Later entries on the same point are on top: >= keeps the topmost.
    if (under(p, e.mountPoint) && (!best || e.mountPoint.length >= best.mountPoint.length)) best = e;
  }
  return best;
}

/** Every link of every non-probe process that points into `mount` (paths outside the reader's root cannot be placed and are left out). */
export function holdersOf(stage: Stage, mount: MountinfoEntry): Hold[] {
  const out: Hold[] = [];
  const look = (p: ProcessInfo, what: string, text: string | null): void => {
    if (!text?.startsWith('/')) return; // unreadable, pipe:[..], socket:[..], anon_inode:..
    const l = parseLink(text);
    if (l.unreachable) return;
    if (mountOf(stage, l.path)?.mountId === mount.mountId) out.push({ pid: p.pid, comm: p.comm, what, target: text });
  };
  for (const p of stage.processes) {
    if (p.probe) continue;
    look(p, 'exe', p.exe);
    look(p, 'cwd', p.cwd);
    look(p, 'root', p.root);
    for (const fd of p.fds) look(p, `fd ${fd.fd}`, fd.target);
  }
  return out;
}

/** "pid 93 (sleep): cwd /oldroot/var/log, fd 0 /oldroot/run/initctl; pid 94 ..." */
export function describeHolders(holds: Hold[]): string {
  const byPid = new Map<number, Hold[]>();
  for (const h of holds) byPid.set(h.pid, [...(byPid.get(h.pid) ?? []), h]);
  return [...byPid.values()]
    .map((hs) => `pid ${hs[0].pid} (${hs[0].comm}): ${hs.map((h) => `${h.what} ${h.target}`).join(', ')}`)
    .join('; ');
}

const ERRNO_TEXT: Record<string, string> = {
  'Device or resource busy': 'EBUSY',
  'Invalid argument': 'EINVAL',
  'Operation not permitted': 'EPERM',
  'No such file or directory': 'ENOENT',
  'No such device or address': 'ENXIO',
  'No such device': 'ENODEV',
  'Permission denied': 'EACCES',
};

/** The errno name a message (strerror text, as busybox prints it) stands for, or undefined. */
export function errnoOf(message: string): string | undefined {
  for (const [text, name] of Object.entries(ERRNO_TEXT)) if (message.includes(text)) return name;
  return undefined;
}
