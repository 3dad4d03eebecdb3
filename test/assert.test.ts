import * as chai from 'chai';
import { rootprobeChai } from '../harness/assert/index.ts';
import { Mountinfo, parseSnapshot, type Stage, type ProcessInfo } from '../harness/readback/index.ts';
import { fixtureText, packSnapshotDir } from './fixtures/readback/fixtures.ts';

chai.use(rootprobeChai);
const { expect } = chai;

/** Runs an assertion that must fail; returns its message. */
function failure(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e, 'a failing rootprobe assertion throws an AssertionError').to.be.instanceOf(chai.AssertionError);
    return (e as Error).message;
  }
  throw new Error('the assertion passed, but it should have failed');
}

describe('assert: chai-rootprobe', () => {
  let stage: Stage;
  let initramfs: Stage;
  before(async () => {
    stage = await parseSnapshot(packSnapshotDir('switch-root-snapshot'));
    initramfs = await parseSnapshot(packSnapshotDir('initramfs-snapshot'));
  });

  describe('mounts', () => {
    it('passes on a mount and its type, source, root and parent', () => {
      expect(stage).to.have.mount('/').of.type('ext4').from('/dev/vda').with.root('/');
      expect(stage).to.have.mount('/mnt/my data').with.root('/srv/data dir').and.of.type(/^ext/);
      expect(stage)
        .to.have.mount('/mnt/loop/tmp')
        .from('over')
        .with.parent.from('tmp fs\ttab\\x')
        .with.parent.of.type('ext4')
        .from('/dev/loop0');
      expect(initramfs).to.have.mount('/proc').with.parent.of.type('rootfs');
      expect(stage).to.not.have.mount('/mnt');
      expect(stage).to.have.mount('/run').that.is.not.of.type('ext4');
      expect(stage.pid1Mountinfo).to.have.mount('/dev').of.type('devtmpfs');
      expect(stage.mountAt('/proc')).to.be.of.type('proc');
    });

    it('shows the stage name and its mount tree, as `rootprobe show` prints it, when a mount is missing', () => {
      const msg = failure(() => expect(stage).to.have.mount('/mnt/new'));
      expect(msg).to.equal(
        [
          'expected a mount at "/mnt/new" in stage "realroot", but there is none',
          'mount tree of stage "realroot":',
          '  TARGET                SOURCE                  FSTYPE   OPTIONS                         ID CHANGE',
          '  [mount 1]             ?                       ?                                         1 not listed (a parent id)',
          '  └─/                   /dev/vda                ext4     rw,relatime                     21',
          '    ├─/proc             proc                    proc     rw,nosuid,nodev,noexec,relatime 22',
          '    ├─/dev              devtmpfs                devtmpfs rw,nosuid,relatime              23',
          '    ├─/run              tmpfs                   tmpfs    rw,nosuid,nodev                 24',
          '    ├─/mnt/my data      /dev/vda[/srv/data dir] ext4     rw,relatime                     25',
          '    └─/mnt/loop         /dev/loop0              ext4     rw,relatime                     26',
          '      └─/mnt/loop/tmp   tmp fs\\x09tab\\x         tmpfs    rw,relatime                     27 below 28 (tmpfs at /mnt/loop/tmp)',
          '        └─/mnt/loop/tmp over                    tmpfs    rw,relatime                     28',
        ].join('\n'),
      );
    });

    it('shows the mount found and the tree when a mount should be absent', () => {
      const msg = failure(() => expect(stage).to.not.have.mount('/run'));
      expect(msg).to.match(
        /^expected no mount at "\/run" in stage "realroot", but found \/run tmpfs tmpfs rw,nosuid,nodev \[id 24, shared:4\]\nmount tree of stage "realroot":\n  TARGET +SOURCE +FSTYPE +OPTIONS +ID CHANGE\n  \[mount 1\] .*\n  └─\/ +\/dev\/vda +ext4 /,
      );
    });

    it('names the field and the actual value when type, source or root differ', () => {
      let msg = failure(() => expect(stage).to.have.mount('/').of.type('rootfs'));
      expect(msg).to.match(
        /^expected the mount at "\/" \(id 21\) in stage "realroot" to have type "rootfs", but it is "ext4"\nmount tree of stage "realroot":\n  TARGET .*\n.*\n  └─\/ +\/dev\/vda +ext4 /,
      );
      msg = failure(() => expect(stage).to.have.mount('/mnt/loop').from('/dev/vda'));
      expect(msg).to.match(/to have source "\/dev\/vda", but it is "\/dev\/loop0"\nmount tree/);
      msg = failure(() => expect(stage).to.have.mount('/mnt/my data').with.root('/'));
      expect(msg).to.match(/^expected the mount at "\/mnt\/my data" \(id 25\) .* to have root "\/", but it is "\/srv\/data dir"/);
      msg = failure(() => expect(stage.pid1Mountinfo).to.have.mount('/run'));
      expect(msg).to.match(/^expected a mount at "\/run" in stage "realroot" \(as pid 1 sees it\), but there is none\nmount tree/);
      msg = failure(() => expect(initramfs).to.have.mount('/').with.parent);
      expect(msg).to.match(
        /^the mount at "\/" \(id 1\) in stage "x" has no parent in this view \(parent id 1, itself\)\nmount tree of stage "x":\n  TARGET .*\n  \/ +rootfs +rootfs +rw +1$/m,
      );
    });

    it('works on a Mountinfo that belongs to no stage', () => {
      const m = Mountinfo.parse(fixtureText('edge-mountinfo.txt'));
      expect(m).to.have.mount('/mnt/over').from('second').with.parent.from('first');
      const msg = failure(() => expect(m).to.have.mount('/nope'));
      expect(msg).to.match(
        /^expected a mount at "\/nope" in this mountinfo, but there is none\nmount tree of this mountinfo:\n  TARGET .*\n  \/ +rootfs +rootfs +rw +1$/m,
      );
    });

    it('says how to start when the subject is not a stage or a mount', () => {
      expect(failure(() => expect(42).to.have.mount('/'))).to.equal('mount("/"): the subject is number 42, not a Stage or a Mountinfo');
      expect(failure(() => expect(stage).to.be.of.type('ext4'))).to.match(
        /not a mount entry; start with expect\(stage\)\.to\.have\.mount\(mountPoint\)/,
      );
      expect(failure(() => expect(stage, 'custom').to.have.mount('/nope'))).to.match(/^custom: expected a mount/);
    });
  });

  describe('processes', () => {
    it('passes on exact link texts, RegExps and decorations', () => {
      expect(stage.process(1)).to.have.exe('/bin/busybox').and.cwd('/').and.root('/');
      expect(stage)
        .to.have.process(150)
        .with.exe('/bin/busybox (deleted)')
        .and.cwd(/^\(unreachable\)/);
      expect(stage.process(150)).to.have.deletedExe.and.unreachableCwd.and.unreachableRoot;
      expect(stage.process(150)).to.not.have.deletedCwd;
      expect(stage.process(151)).to.have.deletedCwd.and.not.unreachableCwd;
      expect(stage.process(1)).to.not.have.deletedExe;
      expect(stage.process(2)).to.not.have.deletedExe; // unreadable: neither deleted nor unreachable
      expect(stage).to.have.processNamed('sleep').with.exe('/bin/busybox (deleted)'); // pid 150, not the probe's 212
      expect(stage).to.not.have.processNamed('busybox');
      expect(stage).to.not.have.process(999);
      expect(stage.process(1)).to.not.have.exe('/sbin/init');
    });

    it('shows the process table (without probe processes) when a link differs', () => {
      const msg = failure(() => expect(stage.process(1)).to.have.exe('/sbin/init'));
      const lines = msg.split('\n');
      expect(lines[0]).to.equal('expected pid 1 (init) in stage "realroot" to have exe "/sbin/init", but it is "/bin/busybox"');
      expect(lines[1]).to.equal(
        'processes of stage "realroot" (probe processes left out; 2 kernel threads folded into this line: kthreadd, kworker):',
      );
      expect(lines[2]).to.match(/^  PID +PPID +COMM +EXE +CWD +ROOT$/);
      expect(msg).to.match(/\n  1 +0 +init +\/bin\/busybox +\/ +\/\n/);
      expect(msg).to.match(/\n  150 +1 +sleep +"\/bin\/busybox \(deleted\)" +\(unreachable\)\/ +\(unreachable\)\//);
      expect(msg).not.to.match(/\n  21[012] /);
    });

    it('explains decoration failures with the link text and the process row', () => {
      let msg = failure(() => expect(stage.process(152)).to.have.deletedExe);
      expect(msg).to.match(
        /^expected pid 152 \(sleep\) in stage "realroot" to have a deleted exe \(link text ends in ' \(deleted\)'\), but it is "\/bin\/busybox"\nprocesses of stage/,
      );
      expect(msg).to.match(/\n  152 +1 +sleep +\/bin\/busybox/);
      msg = failure(() => expect(stage.process(150)).to.not.have.unreachableCwd);
      expect(msg).to.match(/^expected pid 150 \(sleep\) in stage "realroot" not to have an unreachable cwd, but it is "\(unreachable\)\/"/);
      msg = failure(() => expect(stage.process(2)).to.have.exe(/busybox/));
      expect(msg).to.match(/^expected pid 2 \(kthreadd\) in stage "realroot" to have exe \/busybox\/, but it could not be read\n/);
    });

    it('shows the probe process itself when it is the subject', () => {
      const msg = failure(() => expect(stage).to.have.process(212).with.cwd('/tmp'));
      expect(msg).to.match(/\n  212 +211 +sleep +\/\.rootprobe\/busybox +\/ +\/ +probe$/);
    });

    it('shows the table when a pid or a name is missing', () => {
      let msg = failure(() => expect(stage).to.have.process(4242));
      expect(msg).to.match(
        /^expected stage "realroot" to have a process with pid 4242, but it has none\nprocesses of stage "realroot" \(probe processes left out; 2 kernel threads folded into this line: kthreadd, kworker\):\n  PID/,
      );
      msg = failure(() => expect(stage).to.have.processNamed('systemd'));
      expect(msg).to.match(/^expected stage "realroot" to have a process named "systemd" \(probe processes left out\), but it has none\n/);
      expect(msg).to.match(/\n  152 +1 +sleep/);
      msg = failure(() => expect(stage).to.not.have.processNamed('sleep'));
      expect(msg).to.match(/^expected stage "realroot" to have no process named "sleep", but it has pid 150, pid 152\n/);
    });

    it('works on a ProcessInfo that belongs to no stage', () => {
      const p: ProcessInfo = { pid: 7, ppid: 1, comm: 'x', cmdline: [], exe: '/x (deleted)', cwd: '/', root: '/', fds: [], probe: false };
      expect(p).to.have.deletedExe;
      const msg = failure(() => expect(p).to.have.cwd('/tmp'));
      expect(msg).to.match(/^expected pid 7 \(x\) to have cwd "\/tmp", but it is "\/"\nprocess:\n  PID .*\n  7 +1 +x/);
    });

    it('says what to do when the subject is undefined', () => {
      const msg = failure(() => expect(stage.process(4242)).to.have.exe('/x'));
      expect(msg).to.match(/the subject is undefined, not a process \(stage\.process\(pid\) gives undefined/);
    });
  });

  describe('commands', () => {
    it('passes on status and output', () => {
      expect(stage)
        .to.have.command('pivot')
        .that.failed.with.output(/Invalid argument/);
      expect(stage).to.have.command('true').that.succeeded.with.output('ok');
      expect(stage).to.have.command('true').that.has.not.failed;
      expect(stage).to.have.command('pivot').that.does.not.have.output('Success');
      expect(stage).to.not.have.command('mount');
    });

    it('shows the status and the output when a command check fails', () => {
      let msg = failure(() => expect(stage).to.have.command('pivot').that.succeeded);
      expect(msg).to.equal(
        'expected command "pivot" in stage "realroot" to succeed (exit status 0), but it exited 1\n' +
          'output:\n  pivot_root: Invalid argument',
      );
      msg = failure(() => expect(stage).to.have.command('true').that.failed);
      expect(msg).to.equal('expected command "true" in stage "realroot" to fail (non-zero exit status), but it exited 0\noutput:\n  ok');
      msg = failure(() =>
        expect(stage)
          .to.have.command('pivot')
          .with.output(/Device or resource busy/),
      );
      expect(msg).to.equal(
        'expected command "pivot" in stage "realroot" to have output matching /Device or resource busy/, ' +
          'but it does not (exit status 1)\noutput:\n  pivot_root: Invalid argument',
      );
    });

    it('lists the commands that ran when one is missing', () => {
      const msg = failure(() => expect(stage).to.have.command('mount'));
      expect(msg).to.equal('expected stage "realroot" to have run command "mount", but it did not; commands it ran: "pivot", "true"');
      expect(failure(() => expect(initramfs).to.have.command('x'))).to.match(/commands it ran: none$/);
    });
  });
});
