/**
 * `rootprobe shell --gdb` without booting: QEMU's gdb stub on a unix socket of its own (not the
 * result channel's, no TCP port), and the gdb command line shell prints for it, with the
 * kernel's vmlinux when it has one, and gdb-multiarch for a guest of another architecture.
 */
import { expect } from 'chai';
import { gdbNotice } from '../harness/cli/shell.ts';
import { archByName } from '../harness/arch/index.ts';
import { UsageError } from '../harness/errors.ts';
import { gdbCommand, MAX_SOCKET_PATH, qemuArgs, type BootSpec } from '../harness/qemu/command.ts';

const base: BootSpec = { kernel: '/k/bzImage', accel: 'tcg', runDir: '/run/x', qemuBinary: '/usr/bin/qemu-system-x86_64' };
const ch = { resultSocket: '/tmp/rp-a/res.sock', interactive: true };
const SOCKET = '/tmp/rootprobe-gdb-1234-5678-abc/gdb.sock';

/** Every value of `flag` in argv. */
const valuesOf = (argv: string[], flag: string): string[] => argv.flatMap((a, i) => (a === flag ? [argv[i + 1]] : []));

describe('shell --gdb: the gdb stub in the QEMU arguments', () => {
  it('is a unix socket of its own, QEMU the server, the guest not held for gdb', () => {
    const a = qemuArgs({ ...base, gdbSocket: SOCKET }, ch);
    expect(valuesOf(a, '-gdb')).to.deep.equal([`unix:${SOCKET},server=on,wait=off`]);
    // the result channel is still its own socket, and nothing listens on TCP
    expect(valuesOf(a, '-chardev').filter((c) => c.startsWith('socket,'))).to.deep.equal([
      'socket,id=res,path=/tmp/rp-a/res.sock,server=on,wait=on',
    ]);
    expect(a).to.not.include('-s');
    expect(a.join(' ')).to.not.match(/tcp:/);
    expect(valuesOf(a, '-serial')).to.include('mon:stdio');
  });

  it('is absent without --gdb', () => {
    expect(qemuArgs(base, ch)).to.not.include('-gdb');
  });

  it("doubles a comma in the socket's path (QEMU's option syntax)", () => {
    expect(valuesOf(qemuArgs({ ...base, gdbSocket: '/tmp/a,b/gdb.sock' }, ch), '-gdb')).to.deep.equal([
      'unix:/tmp/a,,b/gdb.sock,server=on,wait=off',
    ]);
  });

  it("refuses the result channel's socket, and a path too long for a unix socket (naming TMPDIR)", () => {
    expect(() => qemuArgs({ ...base, gdbSocket: ch.resultSocket }, ch)).to.throw(/socket of its own/);
    const long = `/tmp/${'d'.repeat(MAX_SOCKET_PATH)}/gdb.sock`;
    expect(() => qemuArgs({ ...base, gdbSocket: long }, ch)).to.throw(UsageError, /gdb stub's socket path is \d+ bytes.*TMPDIR/);
  });
});

describe('shell --gdb: the gdb command line it prints', () => {
  it("with the kernel's vmlinux: gdb loads its symbols and attaches to the stub's socket", () => {
    expect(gdbCommand({ socket: SOCKET, vmlinux: '/cache/git-linux/build/vmlinux', hostArch: 'x64' })).to.deep.equal([
      'gdb',
      '/cache/git-linux/build/vmlinux',
      '-ex',
      `target remote ${SOCKET}`,
    ]);
    const text = gdbNotice({ vmlinux: '/cache/git-linux/build/vmlinux' }, SOCKET, 'x64');
    expect(text).to.include(`  QEMU's gdb stub: ${SOCKET}\n`);
    expect(text).to.include(`  attach with:  gdb /cache/git-linux/build/vmlinux -ex 'target remote ${SOCKET}'\n`);
    expect(text).to.not.include('no vmlinux');
  });

  it('without one: the architecture instead, and a word on which kernels have symbols', () => {
    const text = gdbNotice({}, SOCKET, 'x64');
    expect(text).to.include(`  attach with:  gdb -ex 'set architecture i386:x86-64' -ex 'target remote ${SOCKET}'\n`);
    expect(text).to.include('this kernel has no vmlinux with symbols: git: kernels have one');
  });

  it('quotes a vmlinux path with spaces so that the line can be pasted', () => {
    expect(gdbNotice({ vmlinux: '/home/me/my tree/vmlinux' }, SOCKET, 'x64')).to.include(
      `gdb '/home/me/my tree/vmlinux' -ex 'target remote ${SOCKET}'`,
    );
  });

  it("a guest of another architecture: gdb-multiarch, and that architecture's name without vmlinux", () => {
    expect(gdbNotice({ arch: 'arm64' }, SOCKET, 'x64')).to.include(
      `attach with:  gdb-multiarch -ex 'set architecture aarch64' -ex 'target remote ${SOCKET}'`,
    );
    expect(gdbNotice({ arch: 'riscv64', vmlinux: '/c/vmlinux' }, SOCKET, 'x64')).to.include(
      `attach with:  gdb-multiarch /c/vmlinux -ex 'target remote ${SOCKET}'`,
    );
    // on an arm64 host, the arm64 guest is the host's own, the x86-64 one is foreign
    expect(gdbCommand({ socket: SOCKET, arch: archByName('arm64'), hostArch: 'arm64' })[0]).to.equal('gdb');
    expect(gdbCommand({ socket: SOCKET, arch: archByName('x86_64'), hostArch: 'arm64' }).slice(0, 3)).to.deep.equal([
      'gdb-multiarch',
      '-ex',
      'set architecture i386:x86-64',
    ]);
  });

  it('attaches to the very socket QEMU was given', () => {
    const [gdb] = valuesOf(qemuArgs({ ...base, gdbSocket: SOCKET }, ch), '-gdb');
    const target = gdbCommand({ socket: SOCKET }).at(-1)!;
    expect(`unix:${target.replace(/^target remote /, '')},server=on,wait=off`).to.equal(gdb);
  });
});
