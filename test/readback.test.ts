import { expect } from 'chai';
import { createHash } from 'node:crypto';
import {
  FrameDecoder,
  decodeFrames,
  encodeFrame,
  type ReadbackEvent,
  Mountinfo,
  MountinfoParseError,
  parseMountinfo,
  parseMountinfoLine,
  unescapeMountinfo,
  parseLink,
  parseSnapshot,
  Stage,
  SnapshotError,
  markProbeProcesses,
  RunReadback,
  readRunStream,
} from '../harness/readback/index.ts';
import { packNewc } from '../harness/cpio/index.ts';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fixtureDir, fixtureText, packSnapshotDir } from './fixtures/readback/fixtures.ts';

const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

function decodeInPieces(stream: Buffer, cuts: number[]): ReadbackEvent[] {
  const d = new FrameDecoder();
  const out: ReadbackEvent[] = [];
  let at = 0;
  for (const c of [...cuts, stream.length]) {
    out.push(...d.push(stream.subarray(at, c)));
    at = c;
  }
  out.push(...d.end());
  return out;
}

describe('readback: frame decoder', () => {
  const payloadA = Buffer.from(Array.from({ length: 130 }, (_, i) => (i * 37) & 0xff));
  const payloadB = Buffer.from('second stage payload\n');
  const stream = Buffer.from(
    'Booting the kernel.\n' +
      encodeFrame('early', payloadA) +
      '[    2.51] random: crng init done\n' +
      encodeFrame('done', payloadB) +
      'trailing noise without newline',
  );

  it('encodes the header, 76-column base64 and the end line', () => {
    const text = encodeFrame('early', payloadA);
    const lines = text.split('\n');
    expect(lines[0]).to.equal(`ROOTPROBE-BEGIN v1 early 130 ${sha(payloadA)}`);
    expect(lines[1]).to.have.length(76);
    expect(lines[lines.length - 2]).to.equal('ROOTPROBE-END early');
    expect(text.endsWith('\n')).to.equal(true);
    expect(() => encodeFrame('bad name', payloadA)).to.throw(/does not match/);
  });

  it('decodes frames and noise in order', () => {
    const events = decodeFrames(stream);
    expect(events.map((e) => e.kind)).to.deep.equal(['noise', 'frame', 'noise', 'frame', 'noise']);
    expect(events[0]).to.deep.equal({ kind: 'noise', line: 'Booting the kernel.' });
    expect(events[1]).to.deep.equal({ kind: 'frame', stage: 'early', payload: payloadA });
    expect(events[2]).to.deep.equal({ kind: 'noise', line: '[    2.51] random: crng init done' });
    expect(events[3]).to.deep.equal({ kind: 'frame', stage: 'done', payload: payloadB });
    expect(events[4]).to.deep.equal({ kind: 'noise', line: 'trailing noise without newline' });
  });

  it('gives the same events for every split point of the stream', () => {
    const whole = decodeFrames(stream);
    for (let i = 0; i <= stream.length; i++) {
      expect(decodeInPieces(stream, [i]), `split at ${i}`).to.deep.equal(whole);
    }
  });

  it('gives the same events when fed one byte at a time, and calls onEvent for each', () => {
    const seen: ReadbackEvent[] = [];
    const d = new FrameDecoder({ onEvent: (e) => seen.push(e) });
    const returned: ReadbackEvent[] = [];
    for (let i = 0; i < stream.length; i++) returned.push(...d.push(stream.subarray(i, i + 1)));
    returned.push(...d.end());
    expect(returned).to.deep.equal(decodeFrames(stream));
    expect(seen).to.deep.equal(returned);
  });

  it('strips \\r from \\r\\n line ends (also split between \\r and \\n)', () => {
    const crlf = Buffer.from(stream.toString('latin1').replace(/\n/g, '\r\n'), 'latin1');
    const whole = decodeFrames(crlf);
    expect(whole).to.deep.equal(decodeFrames(stream));
    for (let i = 0; i <= crlf.length; i += 7) expect(decodeInPieces(crlf, [i])).to.deep.equal(whole);
  });

  it('keeps UTF-8 noise intact when a character is split across chunks', () => {
    const s = Buffer.from('Grüße aus dem Gast\n');
    const events = decodeInPieces(
      s,
      Array.from({ length: s.length }, (_, i) => i),
    );
    expect(events).to.deep.equal([{ kind: 'noise', line: 'Grüße aus dem Gast' }]);
  });

  it('decodes two frames back to back and base64 wrapped at a width that is not a multiple of 4', () => {
    const a = encodeFrame('one', 'first');
    const b64 = payloadA.toString('base64');
    const odd = [`ROOTPROBE-BEGIN v1 two ${payloadA.length} ${sha(payloadA)}`];
    for (let i = 0; i < b64.length; i += 61) odd.push(b64.slice(i, i + 61));
    odd.push('ROOTPROBE-END two', '');
    const events = decodeFrames(a + odd.join('\n'));
    expect(events).to.deep.equal([
      { kind: 'frame', stage: 'one', payload: Buffer.from('first') },
      { kind: 'frame', stage: 'two', payload: payloadA },
    ]);
  });

  it('splits console text that stands in front of a BEGIN line off as noise', () => {
    const events = decodeFrames('[    1.234] printk without newline' + encodeFrame('s', payloadB));
    expect(events).to.deep.equal([
      { kind: 'noise', line: '[    1.234] printk without newline' },
      { kind: 'frame', stage: 's', payload: payloadB },
    ]);
  });

  it('decodes an empty payload', () => {
    expect(decodeFrames(encodeFrame('empty', Buffer.alloc(0)))).to.deep.equal([
      { kind: 'frame', stage: 'empty', payload: Buffer.alloc(0) },
    ]);
  });

  it('reports a length mismatch before the hash, with both numbers', () => {
    const good = encodeFrame('s1', payloadA);
    const longer = good.replace(' 130 ', ' 131 ');
    expect(decodeFrames(longer)).to.deep.equal([{ kind: 'damaged', stage: 's1', reason: 'length', detail: 'expected 131 bytes, got 130' }]);
    const [shorter] = decodeFrames(good.replace(' 130 ', ' 100 '));
    expect(shorter).to.include({ kind: 'damaged', stage: 's1', reason: 'length' });
    expect((shorter as { detail: string }).detail).to.match(/^expected 100 bytes, got more than that/);
  });

  it('reports a hash mismatch with the expected and actual digests', () => {
    const good = encodeFrame('s2', payloadB);
    const lines = good.split('\n');
    const flipped = lines[1]!.startsWith('c') ? 'd' + lines[1]!.slice(1) : 'c' + lines[1]!.slice(1);
    lines[1] = flipped;
    const bad = Buffer.from(flipped, 'base64');
    const events = decodeFrames(lines.join('\n'));
    expect(events).to.have.length(1);
    expect(events[0]).to.deep.equal({
      kind: 'damaged',
      stage: 's2',
      reason: 'hash',
      detail: `sha256 mismatch: expected ${sha(payloadB).slice(0, 12)}.., got ${sha(bad).slice(0, 12)}..`,
    });
  });

  it('reports a frame cut short by the next BEGIN, and still decodes that next frame', () => {
    const first = encodeFrame('cut', payloadA).split('\n');
    const cut = first.slice(0, 2).join('\n') + '\n';
    const events = decodeFrames(cut + encodeFrame('next', payloadB));
    expect(events.map((e) => e.kind)).to.deep.equal(['damaged', 'frame']);
    expect(events[0]).to.include({ stage: 'cut', reason: 'truncated' });
    expect((events[0] as { detail: string }).detail).to.match(/no "ROOTPROBE-END cut" before the next ROOTPROBE-BEGIN on line 3/);
    expect(events[1]).to.deep.equal({ kind: 'frame', stage: 'next', payload: payloadB });
  });

  it('reports a frame cut short by the end of the stream', () => {
    const lines = encodeFrame('last', payloadA).split('\n');
    const events = decodeFrames(lines.slice(0, 3).join('\n') + '\n');
    expect(events).to.have.length(1);
    expect(events[0]).to.include({ kind: 'damaged', stage: 'last', reason: 'truncated' });
    expect((events[0] as { detail: string }).detail).to.match(/stream ended before "ROOTPROBE-END last".*114 of 130 bytes/);
  });

  it('reports an END line for another stage as truncation', () => {
    const text = encodeFrame('mine', payloadB).replace('ROOTPROBE-END mine', 'ROOTPROBE-END other');
    const [e] = decodeFrames(text);
    expect(e).to.include({ kind: 'damaged', stage: 'mine', reason: 'truncated' });
  });

  it('reports bad base64, skips the rest of that frame, and decodes the following one', () => {
    const lines = encodeFrame('b64', payloadA).split('\n');
    lines[2] = 'not*base64!';
    const events = decodeFrames(lines.join('\n') + encodeFrame('ok', payloadB));
    expect(events.map((e) => e.kind)).to.deep.equal(['damaged', 'frame']);
    expect(events[0]).to.deep.equal({
      kind: 'damaged',
      stage: 'b64',
      reason: 'base64',
      detail: 'line 3 is not base64: "not*base64!"',
    });
    expect(events[1]).to.include({ stage: 'ok' });
  });

  it('reports data after the base64 padding as bad base64', () => {
    const text = `ROOTPROBE-BEGIN v1 pad 2 ${sha('ab')}\nYWI=\nYWI=\nROOTPROBE-END pad\n`;
    const [e] = decodeFrames(text);
    expect(e).to.include({ kind: 'damaged', stage: 'pad', reason: 'base64' });
  });

  it('reports broken headers: version, stage name, length, hash, field count', () => {
    const h = sha('x');
    const cases: Array<[string, string, RegExp]> = [
      [`ROOTPROBE-BEGIN v2 st 1 ${h}`, 'st', /protocol version "v2" is not supported/],
      [`ROOTPROBE-BEGIN v1 bad/name 1 ${h}`, '?', /stage name "bad\/name" does not match/],
      [`ROOTPROBE-BEGIN v1 st -1 ${h}`, 'st', /length "-1" is not a decimal number/],
      ['ROOTPROBE-BEGIN v1 st 1 abc', 'st', /sha256 "abc" is not 64 hex digits/],
      ['ROOTPROBE-BEGIN v1 st', 'st', /got 3 fields/],
    ];
    for (const [line, stage, detail] of cases) {
      const events = decodeFrames(`${line}\neA==\nROOTPROBE-END st\nafter\n`);
      expect(events, line).to.have.length(2);
      expect(events[0], line).to.include({ kind: 'damaged', stage, reason: 'header' });
      expect((events[0] as { detail: string }).detail, line).to.match(detail);
      expect(events[1], line).to.deep.equal({ kind: 'noise', line: 'after' });
    }
  });

  it('refuses a payload over the size limit without buffering it', () => {
    const huge = `ROOTPROBE-BEGIN v1 big ${64 * 1024 * 1024 + 1} ${sha('')}\nAAAA\nROOTPROBE-END big\n`;
    const [e] = decodeFrames(huge);
    expect(e).to.include({ kind: 'damaged', stage: 'big', reason: 'length' });
    expect((e as { detail: string }).detail).to.match(/exceeds the limit of 67108864 bytes/);
    // A header that lies about the size is caught as the data arrives.
    const small = new FrameDecoder({ maxPayloadBytes: 10 });
    const events = [...small.push(encodeFrame('s', Buffer.alloc(9)).replace(' 9 ', ' 8 ')), ...small.end()];
    expect(events[0]).to.include({ reason: 'length' });
    expect(decodeFrames(encodeFrame('s', Buffer.alloc(11)), { maxPayloadBytes: 10 })[0]).to.include({ reason: 'length' });
  });

  it('cuts an overlong noise line and damages a frame with an overlong line', () => {
    const events = decodeFrames('x'.repeat(100) + '\nshort\n', { maxLineBytes: 16 });
    expect(events).to.deep.equal([
      { kind: 'noise', line: 'x'.repeat(16) + ' [line cut at 16 bytes]' },
      { kind: 'noise', line: 'short' },
    ]);
    const inFrame = `ROOTPROBE-BEGIN v1 w 3 ${sha('abc')}\n${'A'.repeat(200)}\nROOTPROBE-END w\n`;
    const [e] = decodeFrames(inFrame, { maxLineBytes: 100 });
    expect(e).to.include({ kind: 'damaged', stage: 'w', reason: 'base64' });
  });

  it('refuses push() after end()', () => {
    const d = new FrameDecoder();
    d.end();
    expect(() => d.push('x')).to.throw(/after end/);
  });
});

describe('readback: mountinfo', () => {
  it("parses the host machine's mountinfo, keeping each raw line", () => {
    const text = fixtureText('host-mountinfo.txt');
    const m = Mountinfo.parse(text);
    const lines = text.split('\n').filter(Boolean);
    expect(m.entries).to.have.length(lines.length);
    expect(m.entries.map((e) => e.raw)).to.deep.equal(lines);
    expect(m.raw).to.equal(lines.map((l) => l + '\n').join(''));
    const root = m.at('/')!;
    expect(root).to.deep.include({
      mountId: 27,
      parentId: 1,
      major: 254,
      minor: 0,
      fsType: 'ext4',
      source: '/dev/vda',
      optionalFields: [],
    });
    expect(m.parentOf(root)).to.equal(undefined);
    expect(m.childrenOf(root).map((e) => e.mountPoint)).to.include.members(['/proc', '/sys', '/dev']);
    expect(m.byId(22)!.mountPoint).to.equal('/proc');
  });

  it('decodes octal escapes and reads zero to several optional fields', () => {
    const m = Mountinfo.parse(fixtureText('edge-mountinfo.txt'));
    expect(m.byId(1)).to.deep.equal({
      mountId: 1,
      parentId: 1,
      major: 0,
      minor: 2,
      root: '/',
      mountPoint: '/',
      options: 'rw',
      optionalFields: [],
      fsType: 'rootfs',
      source: 'rootfs',
      superOptions: 'rw,size=105076k,nr_inodes=26269,inode64',
      raw: '1 1 0:2 / / rw - rootfs rootfs rw,size=105076k,nr_inodes=26269,inode64',
    });
    expect(m.byId(23)!.optionalFields).to.deep.equal(['shared:2']);
    const spaced = m.at('/mnt/with space')!;
    expect(spaced).to.deep.include({
      mountId: 30,
      root: '/exports/a b',
      source: '/dev/disk one',
      options: 'rw,noatime',
      optionalFields: ['shared:5', 'master:1', 'propagate_from:2', 'unbindable'],
      fsType: 'ext4',
      superOptions: 'rw,errors=remount-ro',
    });
    const odd = m.byId(31)!;
    expect(odd.mountPoint).to.equal('/mnt/with space/tab\tnl\nbs\\end');
    expect(odd.source).to.equal('tmp\\fs');
    expect(m.at('/mnt/with space/tab\tnl\nbs\\end')).to.equal(odd);
    expect(m.byId(34)).to.deep.include({ fsType: 'fuse.sshfs', source: 'user@host:/srv x' });
    expect(unescapeMountinfo('a\\040b\\x\\12')).to.equal('a b\\x\\12');
  });

  it('at() gives the topmost of stacked mounts, ignores a trailing slash; allAt() gives all', () => {
    const m = Mountinfo.parse(fixtureText('edge-mountinfo.txt'));
    expect(m.at('/mnt/over')!.source).to.equal('second');
    expect(m.at('/mnt/over/')!.source).to.equal('second');
    expect(m.allAt('/mnt/over').map((e) => e.source)).to.deep.equal(['first', 'second']);
    expect(m.at('/mnt/none')).to.equal(undefined);
    expect(m.parentOf(m.at('/mnt/over')!)!.source).to.equal('first');
  });

  it('renders an indented tree; a self-parented rootfs is a root', () => {
    const m = Mountinfo.parse(fixtureText('edge-mountinfo.txt'));
    expect(m.parentOf(m.byId(1)!)).to.equal(undefined);
    expect(m.childrenOf(m.byId(1)!).map((e) => e.mountId)).to.deep.equal([22, 23, 30, 32, 34]);
    expect(m.tree()).to.equal(
      [
        '/ rootfs rootfs rw [id 1]',
        '  /proc proc proc rw,relatime [id 22]',
        '  /dev devtmpfs dev rw,relatime [id 23, shared:2]',
        '  "/mnt/with space" ext4 "/dev/disk one" rw,noatime [id 30, root "/exports/a b", shared:5 master:1 propagate_from:2 unbindable]',
        '    "/mnt/with space/tab\\tnl\\nbs\\\\end" tmpfs "tmp\\\\fs" ro,nosuid [id 31]',
        '  /mnt/over tmpfs first rw [id 32]',
        '    /mnt/over tmpfs second rw [id 33]',
        '  /mnt/mixed fuse.sshfs "user@host:/srv x" rw,relatime [id 34]',
      ].join('\n'),
    );
  });

  it('names the line number and the line of a malformed entry', () => {
    const text = '22 1 0:20 / /proc rw - proc proc rw\n23 1 0:5 / /dev rw devtmpfs dev rw\n';
    expect(() => parseMountinfo(text)).to.throw(
      MountinfoParseError,
      'mountinfo line 2 is malformed (no "-" separator after the mount options): "23 1 0:5 / /dev rw devtmpfs dev rw"',
    );
    expect(() => parseMountinfoLine('22 1 0-20 / /proc rw - proc proc rw', 7)).to.throw(/line 7 .*major:minor "0-20"/);
    expect(() => parseMountinfoLine('x 1 0:20 / /proc rw - proc proc rw')).to.throw(/mount id "x" is not a number/);
    expect(() => parseMountinfoLine('22 1 0:20 / /proc rw - proc proc')).to.throw(/after "-", got 2 fields/);
    expect(parseMountinfo('\n22 1 0:20 / /proc rw - proc proc rw\r\n\n')).to.have.length(1);
  });

  it('round-trips through JSON', () => {
    const m = Mountinfo.parse(fixtureText('edge-mountinfo.txt'));
    const back = Mountinfo.fromJSON(JSON.parse(JSON.stringify(m)));
    expect(back.entries).to.deep.equal(m.entries);
    expect(back.tree()).to.equal(m.tree());
  });
});

describe('readback: link decorations', () => {
  it('reads (deleted) and (unreachable), alone, together and with spaces in the path', () => {
    expect(parseLink('/sbin/init')).to.deep.equal({ text: '/sbin/init', path: '/sbin/init', deleted: false, unreachable: false });
    expect(parseLink('/init (deleted)')).to.deep.equal({ text: '/init (deleted)', path: '/init', deleted: true, unreachable: false });
    expect(parseLink('(unreachable)/')).to.deep.equal({ text: '(unreachable)/', path: '/', deleted: false, unreachable: true });
    expect(parseLink('(unreachable)/old root (deleted)')).to.deep.equal({
      text: '(unreachable)/old root (deleted)',
      path: '/old root',
      deleted: true,
      unreachable: true,
    });
    expect(parseLink('/my dir/a (deleted) b')).to.include({ path: '/my dir/a (deleted) b', deleted: false });
    expect(parseLink('socket:[1234]')).to.include({ path: 'socket:[1234]', deleted: false, unreachable: false });
  });
});

describe('readback: stage snapshot', () => {
  let initramfs: Stage;
  let realroot: Stage;
  before(async () => {
    initramfs = await parseSnapshot(packSnapshotDir('initramfs-snapshot', 'busybox'));
    realroot = await parseSnapshot(packSnapshotDir('switch-root-snapshot', 'gnu'));
  });

  it('reads a real guest snapshot (busybox cpio)', () => {
    expect(initramfs).to.include({ name: 'x', seq: 0, uname: '6.1.0-50-cloud-amd64', probePid: 387, uptime: 4.29 });
    expect(initramfs.mountAt('/')).to.include({ fsType: 'rootfs', mountId: 1, parentId: 1 });
    expect(initramfs.pid1Mountinfo.entries).to.have.length(3);
    expect(initramfs.processes).to.have.length(45);
    const pids = initramfs.processes.map((p) => p.pid);
    expect(pids).to.deep.equal([...pids].sort((a, b) => a - b));
    expect(initramfs.process(1)).to.deep.equal({
      pid: 1,
      ppid: 0,
      comm: 'init',
      cmdline: ['/bin/sh', '/init'],
      exe: '/bin/busybox',
      cwd: '/',
      root: '/',
      fds: [
        { fd: 0, target: '/dev/console' },
        { fd: 1, target: '/dev/console' },
        { fd: 2, target: '/dev/console' },
        { fd: 10, target: '/init' },
      ],
      probe: false,
    });
    expect(initramfs.process(2)).to.include({ comm: 'kthreadd', exe: null, cwd: '/', probe: false });
    expect(initramfs.process(2)!.cmdline).to.deep.equal([]);
    expect(initramfs.process(387)).to.include({ comm: 'busybox', probe: true });
    expect(initramfs.processesNamed('busybox')).to.deep.equal([]);
    expect(initramfs.processesNamed('init').map((p) => p.pid)).to.deep.equal([1]);
  });

  it('reads decorations, probe descendants, files, commands and vars', () => {
    expect(realroot).to.include({ name: 'realroot', seq: 2, probePid: 210 });
    expect(realroot.processes.filter((p) => p.probe).map((p) => p.pid)).to.deep.equal([210, 211, 212]);
    expect(realroot.processesNamed('sleep').map((p) => p.pid)).to.deep.equal([150, 152]);
    expect(realroot.process(150)).to.include({ exe: '/bin/busybox (deleted)', cwd: '(unreachable)/', root: '(unreachable)/' });
    expect(realroot.process(151)).to.include({ exe: '/usr/bin/my shell', cwd: '/mnt/gone dir (deleted)' });
    expect(realroot.process(151)!.cmdline).to.deep.equal(['sh', '-c', 'cd /mnt/gone && exec sleep 900']);
    expect(realroot.process(14)).to.include({ comm: 'kworker/0:1-events', exe: null });
    expect(realroot.process(999)).to.equal(undefined);
    expect(realroot.file('/etc/hostname')).to.equal('guest\n');
    expect(realroot.file('etc/with space')).to.equal('a b\n');
    expect(realroot.fileBytes('/etc/hostname')).to.deep.equal(Buffer.from('guest\n'));
    expect(realroot.file('/etc/missing')).to.equal(undefined);
    expect(realroot.command('pivot')).to.deep.equal({ output: 'pivot_root: Invalid argument\n', status: 1 });
    expect(realroot.command('true')).to.deep.equal({ output: 'ok\n', status: 0 });
    expect(realroot.command('nope')).to.equal(undefined);
    expect(realroot.vars).to.deep.equal({ method: 'switch_root' });
    expect(realroot.mountAt('/mnt/my data')).to.include({ root: '/srv/data dir', source: '/dev/vda' });
    expect(realroot.mountAt('/mnt/loop/tmp')!.source).to.equal('over');
  });

  it('gives the same stage from busybox cpio, GNU cpio and our own packNewc', async () => {
    const viaBusybox = await parseSnapshot(packSnapshotDir('switch-root-snapshot', 'busybox'));
    expect(viaBusybox.toJSON()).to.deep.equal(realroot.toJSON());
    const own = await packNewc([
      { type: 'file', path: 'meta', data: Buffer.from('stage=tiny\nprobe_pid=5\nseq=1\n') },
      { type: 'file', path: 'mountinfo.self', data: Buffer.from('1 1 0:2 / / rw - rootfs rootfs rw\n') },
      { type: 'file', path: 'mountinfo.1', data: Buffer.from('1 1 0:2 / / rw - rootfs rootfs rw\n') },
      { type: 'dir', path: 'proc' },
      { type: 'dir', path: 'proc/1' },
      { type: 'file', path: 'proc/1/comm', data: Buffer.from('init\n') },
      { type: 'file', path: 'proc/1/ppid', data: Buffer.from('0\n') },
      { type: 'symlink', path: 'proc/1/exe', target: '/ignored' },
    ]);
    const tiny = await parseSnapshot(own);
    expect(tiny).to.include({ name: 'tiny', uname: '', uptime: null });
    expect(tiny.process(1)).to.include({ comm: 'init', ppid: 0, exe: null });
  });

  it('round-trips through JSON: Stage.fromJSON(stage.toJSON()) equals the stage', () => {
    for (const stage of [initramfs, realroot]) {
      const json = JSON.parse(JSON.stringify(stage.toJSON()));
      const back = Stage.fromJSON(json);
      expect(back).to.deep.equal(stage);
      expect(back.toJSON()).to.deep.equal(stage.toJSON());
      expect(back.mountinfo.tree()).to.equal(stage.mountinfo.tree());
    }
    const json = realroot.toJSON();
    expect(Object.keys(json)).to.include.members([
      'name',
      'seq',
      'uname',
      'mountinfo',
      'pid1Mountinfo',
      'processes',
      'files',
      'commands',
      'vars',
    ]);
    expect(json.files).to.deep.equal({ '/etc/hostname': 'guest\n', '/etc/with space': 'a b\n' });
  });

  it('renders the process table without probe processes', () => {
    const table = realroot.processTable();
    expect(table.split('\n')[0]).to.match(/^PID +PPID +COMM +EXE +CWD +ROOT$/);
    expect(table).to.match(/\n150 +1 +sleep +"\/bin\/busybox \(deleted\)" +\(unreachable\)\/ +\(unreachable\)\/\n/);
    expect(table).to.match(/\n151 +1 +sh +"\/usr\/bin\/my shell" +"\/mnt\/gone dir \(deleted\)" +\/\n/);
    expect(table).to.match(/\n2 +0 +kthreadd +- +\/ +\//);
    expect(table).not.to.match(/\n21[012] /);
    expect(realroot.processTable({ includeProbe: true })).to.match(/\n212 +211 +sleep .* probe$/);
    expect(table.split('\n')[0]).not.to.match(/NOTE/);
  });

  it('marks probe processes through the ppid chain and survives a cycle', () => {
    const procs = [
      { pid: 1, ppid: 0, probe: false },
      { pid: 9, ppid: 1, probe: false },
      { pid: 10, ppid: 9, probe: false },
      { pid: 11, ppid: 10, probe: false },
      { pid: 20, ppid: 21, probe: false },
      { pid: 21, ppid: 20, probe: false },
      { pid: 30, ppid: 77, probe: false },
    ];
    markProbeProcesses(procs, 9);
    expect(procs.filter((p) => p.probe).map((p) => p.pid)).to.deep.equal([9, 10, 11]);
  });

  it('rejects archives that do not follow the protocol, saying what is missing', async () => {
    const bad = async (entries: Parameters<typeof packNewc>[0]): Promise<string> => {
      try {
        await parseSnapshot(await packNewc(entries));
      } catch (e) {
        expect(e).to.be.instanceOf(SnapshotError);
        return (e as Error).message;
      }
      throw new Error('parseSnapshot accepted a bad snapshot');
    };
    const meta = { type: 'file' as const, path: 'meta', data: Buffer.from('stage=s\nprobe_pid=3\nseq=1\n') };
    const mi = { type: 'file' as const, path: 'mountinfo.self', data: Buffer.from('1 1 0:2 / / rw - rootfs rootfs rw\n') };
    const mi1 = { ...mi, path: 'mountinfo.1' };
    expect(await bad([mi, mi1])).to.match(/no "meta" member/);
    expect(await bad([{ ...meta, data: Buffer.from('stage=s\nseq=1\n') }, mi, mi1])).to.match(/stage "s".*probe_pid="" is missing/);
    expect(await bad([meta, mi1])).to.match(/"mountinfo.self" is missing/);
    expect(await bad([meta, mi, { ...mi1, data: Buffer.from('garbage line\n') }])).to.match(/mountinfo.1: mountinfo line 1 is malformed/);
    expect(await bad([meta, mi, mi1, { type: 'file', path: 'cmd/x.out', data: Buffer.from('out') }])).to.match(
      /command "x" has no valid exit status/,
    );
    try {
      await parseSnapshot(Buffer.from('this is not cpio'));
      expect.fail('accepted garbage');
    } catch (e) {
      expect(e).to.be.instanceOf(SnapshotError);
      expect((e as Error).message).to.match(/not a readable newc cpio archive \(16 bytes\)/);
    }
  });
});

describe('readback: run readback', () => {
  it('collects stages from a recorded stream, keeps duplicates, lists what reported', async () => {
    const a = packSnapshotDir('initramfs-snapshot');
    const b = packSnapshotDir('switch-root-snapshot');
    const damaged = encodeFrame('lost', b).replace(/ [0-9a-f]{64}\n/, ` ${'0'.repeat(64)}\n`);
    const stream =
      'console junk\r\n' +
      encodeFrame('x', a) +
      damaged +
      encodeFrame('realroot', b) +
      encodeFrame('realroot', b) +
      encodeFrame('wrong', b) +
      encodeFrame('junk', 'not a cpio');
    const { readback, noise } = await readRunStream(stream.replace(/\n/g, '\r\n'));
    expect(noise).to.deep.equal(['console junk']);
    expect(readback.names).to.deep.equal(['x', 'realroot', 'realroot']);
    expect(readback.has('realroot')).to.equal(true);
    expect(readback.has('done')).to.equal(false);
    expect(readback.done).to.equal(false);
    expect(readback.stagesNamed('realroot')).to.have.length(2);
    expect(readback.stage('realroot')).to.equal(readback.stagesNamed('realroot')[1]);
    expect(readback.last).to.equal(readback.stages[2]);
    expect(readback.damaged).to.have.length(1);
    expect(readback.damaged[0]).to.include({ stage: 'lost', reason: 'hash' });
    expect(readback.unreadable.map((u) => u.stage)).to.deep.equal(['wrong', 'junk']);
    expect(readback.unreadable[0]!.error).to.match(/named "wrong" but its meta says stage=realroot/);
    expect(() => readback.stage('done')).to.throw(
      Error,
      /stage "done" never reported; stages that reported: x, realroot, realroot; damaged frame of stage "lost" \(hash: sha256 mismatch/,
    );
    const back = RunReadback.fromJSON(JSON.parse(JSON.stringify(readback)));
    expect(back.toJSON()).to.deep.equal(readback.toJSON());
  });

  it('reads a real recorded ttyS1 stream (gzip-compressed snapshots, stage x then done)', async () => {
    const { readback, noise } = await readRunStream(readFileSync(join(fixtureDir, 'initramfs-run.ttyS1')));
    expect(noise).to.deep.equal([]);
    expect(readback.damaged).to.deep.equal([]);
    expect(readback.unreadable).to.deep.equal([]);
    expect(readback.names).to.deep.equal(['x', 'done']);
    expect(readback.done).to.equal(true);
    const x = readback.stage('x');
    expect(x.mountAt('/')).to.include({ fsType: 'rootfs', source: 'rootfs' });
    expect(x.process(1)).to.include({ comm: 'init', exe: '/bin/busybox' });
    expect(x.processes.filter((p) => p.probe)).to.have.length.above(0);
  });

  it('says that no stage reported', () => {
    const r = new RunReadback();
    expect(r.last).to.equal(undefined);
    expect(() => r.stage('early')).to.throw('stage "early" never reported; no stage reported');
  });
});
