/**
 * The assertions on mount options, super options, propagation and a moved mount, kernel threads
 * folded in process tables, and messages that never truncate the actual value. Stages are made
 * from mountinfo text as the kernel writes it (6.1, an overlayfs root after switch_root).
 */
import * as chai from 'chai';
import { rootprobeChai } from '../harness/assert/index.ts';
import { parseMountinfo, propagationOf, parseOptions, Stage, type ProcessInfo } from '../harness/readback/index.ts';
import { processRows } from '../harness/assert/processes.ts';

chai.use(rootprobeChai);
const { expect } = chai;

function failure(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).to.be.instanceOf(chai.AssertionError);
    return (e as Error).message;
  }
  throw new Error('the assertion passed, but it should have failed');
}

const INITRAMFS = `1 1 0:2 / / rw - rootfs rootfs rw,size=105076k,nr_inodes=26269,inode64
22 1 0:20 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
23 1 0:5 / /dev rw,relatime shared:2 - devtmpfs devtmpfs rw,size=104000k,nr_inodes=26000,mode=755
26 1 254:0 / /lower ro,relatime - ext4 /dev/vda ro
27 1 0:24 / /upper rw,relatime - tmpfs upper rw,size=16384k
`;
const REALROOT = `28 1 0:25 / / rw,relatime shared:1 - overlay overlay rw,lowerdir=/lower,upperdir=/upper/data,workdir=/upper/work
22 28 0:20 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
23 28 0:5 / /dev rw,relatime shared:2 - devtmpfs devtmpfs rw,size=104000k,nr_inodes=26000,mode=755
30 28 0:26 / /mnt/slave rw,relatime master:2 - tmpfs t rw
31 28 0:27 / /mnt/both rw,relatime shared:7 master:2 propagate_from:3 - tmpfs t2 rw
32 28 0:28 / /mnt/private rw,relatime - tmpfs t3 rw
33 28 0:29 / /mnt/unbind rw,relatime unbindable - tmpfs t4 rw
`;

function proc(pid: number, ppid: number, comm: string, extra: Partial<ProcessInfo> = {}): ProcessInfo {
  return { pid, ppid, comm, cmdline: [], exe: null, cwd: null, root: null, fds: [], probe: false, ...extra };
}

function stageOf(name: string, mountinfo: string, processes: ProcessInfo[] = []): Stage {
  const entries = parseMountinfo(mountinfo);
  return Stage.fromJSON({
    name,
    seq: 1,
    uname: 'Linux 6.1',
    probePid: 999,
    uptime: 1,
    meta: {},
    mountinfo: entries,
    pid1Mountinfo: entries,
    processes,
    files: {},
    commands: {},
    vars: {},
  });
}

describe('assert: mount options, super options, propagation, moved mounts', () => {
  const init = stageOf('initramfs', INITRAMFS);
  const real = stageOf('realroot', REALROOT);

  it('option(): a mount option, with its value when given', () => {
    expect(init).to.have.mount('/lower').with.option('ro');
    expect(init).to.have.mount('/lower').with.option('relatime').and.not.option('rw');
    expect(init).to.have.mount('/proc').with.option('nosuid');
    const msg = failure(() => expect(init).to.have.mount('/lower').with.option('rw'));
    expect(msg).to.match(
      /^expected the mount at "\/lower" \(id 26\) in stage "initramfs" to have mount option "rw", but its mount options are "ro,relatime"\nmount tree/,
    );
  });

  it("superOption(): the filesystem's options (overlay lowerdir), with the value as string or RegExp", () => {
    expect(real).to.have.mount('/').of.type('overlay').with.superOption('lowerdir', '/lower');
    expect(real)
      .to.have.mount('/')
      .with.superOption('upperdir', /^\/upper\//)
      .and.superOption('workdir');
    expect(init).to.have.mount('/upper').with.superOption('size', '16384k');
    const msg = failure(() => expect(real).to.have.mount('/').with.superOption('lowerdir', '/other'));
    expect(msg).to.include(
      'to have super option "lowerdir" = "/other", but it has lowerdir=/lower (super options "rw,lowerdir=/lower,upperdir=/upper/data,workdir=/upper/work")',
    );
    expect(failure(() => expect(real).to.have.mount('/').with.superOption('redirect_dir'))).to.include(
      'to have super option "redirect_dir", but its super options are',
    );
  });

  it('propagation(): shared:N, master:N, private, unbindable', () => {
    expect(real).to.have.mount('/').with.propagation('shared');
    expect(real).to.have.mount('/dev').with.propagation('shared', 2);
    expect(real).to.have.mount('/mnt/slave').with.propagation('slave', 2);
    expect(real).to.have.mount('/mnt/both').with.propagation('shared', 7).and.propagation('slave', 2);
    expect(real).to.have.mount('/mnt/private').with.propagation('private');
    expect(real).to.have.mount('/mnt/unbind').with.propagation('unbindable');
    expect(init).to.have.mount('/').with.propagation('private');
    const msg = failure(() => expect(real).to.have.mount('/mnt/private').with.propagation('shared'));
    expect(msg).to.match(/^expected the mount at "\/mnt\/private" \(id 32\) in stage "realroot" to be shared, but it is private\n/);
    expect(failure(() => expect(real).to.have.mount('/dev').with.propagation('shared', 3))).to.include(
      'to be shared (shared:3), but it is shared shared:2',
    );
  });

  it('propagationOf() parses the optional fields into fields', () => {
    const [, , , , both] = parseMountinfo(REALROOT);
    expect(propagationOf(both!)).to.deep.equal({ shared: 7, master: 2, propagateFrom: 3, unbindable: false, kind: 'shared+slave' });
    expect(propagationOf({ optionalFields: [] })).to.deep.equal({ unbindable: false, kind: 'private' });
    expect(propagationOf({ optionalFields: ['master:4'] })).to.deep.include({ master: 4, kind: 'slave' });
    expect([...parseOptions('rw,size=1k,mode=755')]).to.deep.equal([
      ['rw', undefined],
      ['size', '1k'],
      ['mode', '755'],
    ]);
  });

  it('movedFrom(): the same mount (same id), moved; a new mount is not', () => {
    expect(real).to.have.mount('/proc').that.movedFrom(init, '/proc');
    expect(real).to.have.mount('/dev').that.movedFrom(init, '/dev');
    expect(real).to.have.mount('/').that.is.not.movedFrom(init, '/');
    const msg = failure(() => expect(real).to.have.mount('/').that.movedFrom(init, '/'));
    expect(msg).to.match(
      /^expected the mount at "\/" \(id 28\) in stage "realroot" to be the mount at "\/" in stage "initramfs" \(id 1\), moved; but it is another mount: \/ overlay overlay/,
    );
    expect(() => expect(real).to.have.mount('/').that.movedFrom(init, '/nowhere')).to.throw(
      /stage "initramfs" has no mount at "\/nowhere"/,
    );
  });
});

describe('assert: process tables and long values', () => {
  const kthreads = [
    proc(2, 0, 'kthreadd'),
    ...Array.from({ length: 40 }, (_, i) => proc(3 + i, 2, `kworker/${i}:0`)),
    proc(50, 2, 'ksoftirqd/0'),
  ];
  const users = [
    proc(1, 0, 'init', { exe: '/bin/busybox', cwd: '/', root: '/', cmdline: ['/sbin/init'] }),
    proc(90, 1, 'sleep', { exe: '/bin/sleeper', cwd: '/witness', root: '/', cmdline: ['sleep', '1000'] }),
  ];
  const st = stageOf('realroot', REALROOT, [...users.slice(0, 1), ...kthreads, ...users.slice(1)]);

  it('folds kernel threads into one line', () => {
    const msg = failure(() => expect(st.process(90)).to.have.cwd('/'));
    expect(msg).to.include('(probe processes left out; 42 kernel threads folded into this line: kthreadd, kworker, ksoftirqd)');
    expect(
      msg
        .split('\n')
        .filter((l) => /^  \d/.test(l))
        .map((l) => l.trim().split(/ +/)[0]),
    ).to.deep.equal(['1', '90']);
  });

  it('keeps a kernel thread the assertion is about', () => {
    const msg = failure(() => expect(st.process(2)).to.have.exe('/x'));
    expect(msg).to.match(/\n  2 +0 +kthreadd/);
    expect(processRows(st.processes, undefined, 'kworker/3:0').rows.map((p) => p.pid)).to.deep.equal([1, 6, 90]);
  });

  it('never truncates the actual value in a message (chai.config.truncateThreshold = 0)', () => {
    const long = { text: 'x'.repeat(300) + 'DIFFERS-HERE' };
    const msg = failure(() => expect(long).to.deep.equal({ text: 'x'.repeat(300) }));
    expect(msg).to.include('DIFFERS-HERE');
    expect(msg).to.not.include('…');
    expect(chai.config.truncateThreshold).to.equal(0);
  });
});
