/**
 * The QEMU command line of one boot, as a pure function of the boot's description and its
 * architecture's entry in harness/arch/ (binary, machine, CPU, console, result port).
 *
 * Serial ports, in order: the architecture's console (QEMU's stdout, stdin from /dev/null; or
 * the user's terminal with the monitor multiplexed in interactive mode: Ctrl-a x quits), then
 * the result channel on a unix socket where QEMU is the server and waits for the host to
 * connect before it starts the guest, so no byte is lost.
 *
 * Disks are virtio-blk PCI devices in the given order (vda, vdb, ...), raw, `cache=unsafe`:
 * the guest's writes go straight to the host file (only flush requests are skipped, which
 * matters for a host crash, not for a test), so after QEMU exits normally the file holds them.
 * `werror=report,rerror=report`: a host write error (a full host disk) reaches the guest as an
 * I/O error instead of pausing the VM until the deadline (QEMU's default `werror=enospc`).
 * `snapshot: true` sends writes to a throwaway overlay (QEMU puts it in $TMPDIR; the runner
 * points that at a private temp folder).
 */
import * as path from 'node:path';
import { requireTool } from '../host.ts';
import { DefinitionError, UsageError } from '../errors.ts';
import { defaultArch, type ArchSpec } from '../arch/index.ts';
import { DEFAULTS } from '../plan/defaults.ts';

export interface BootDisk {
  path: string;
  /** The guest sees a read-only device. */
  readOnly?: boolean;
  /** The guest may write; the writes never reach the file. */
  snapshot?: boolean;
  /** virtio-blk serial (at most 20 bytes): /dev/disk/by-id/virtio-<serial> in the guest. */
  serial?: string;
}

export interface BootSpec {
  /** The kernel image (the architecture's form: a bzImage on x86-64); none: the firmware boots from `esp`. */
  kernel?: string;
  /** ONE file (the caller concatenates cpio segments) */
  initrd?: string;
  /** extra kernel cmdline (added after ours) */
  append?: string;
  /** virtio-blk, raw */
  disks?: BootDisk[];
  /** default DEFAULTS.memoryMiB */
  memoryMiB?: number;
  /** default 1 */
  cpus?: number;
  accel: 'kvm' | 'tcg';
  /** where console.log, result.stream, qemu.cmdline, qemu.pid go */
  runDir: string;
  /** default requireTool(arch.qemuBinary) */
  qemuBinary?: string;
  /** default: defaultArch() */
  arch?: ArchSpec;
  /** default 'bios' (QEMU's SeaBIOS loads -kernel); 'uefi': the architecture's OVMF, which hands -kernel to its EFI stub */
  firmware?: 'bios' | 'uefi';
  /** UEFI: the firmware's code (read-only pflash) and this run's own copy of the variable store (written). */
  uefi?: { code: string; vars: string };
  /**
   * UEFI: an EFI system partition to boot from (the first boot device; it is attached after the
   * disks, so they keep their names). `snapshot`: the guest's writes go to a throwaway overlay.
   */
  esp?: { path: string; snapshot?: boolean };
  /** QEMU's gdb stub on this unix socket (`rootprobe shell --gdb`). */
  gdbSocket?: string;
}

export interface QemuChannel {
  /** Path of the unix socket for the result port (at most 107 bytes). */
  resultSocket: string;
  /** Console on the user's terminal (`-serial mon:stdio`) instead of QEMU's stdout. */
  interactive?: boolean;
}

/**
 * The kernel command line every boot starts with: the architecture's console, no reboot on a
 * panic (QEMU's -no-reboot ends the run), an oops is a panic, the architecture's own options,
 * and the result port's device name, which the guest probe looks up (probe.c).
 */
export function baseCmdline(arch: ArchSpec = defaultArch()): string {
  return [`console=${arch.console}`, 'panic=-1', 'oops=panic', ...arch.cmdline, `rootprobe.port=${portParam(arch)}`].join(' ');
}

/** How the probe is told its result port: a device name (`ttyS1`), or `vport:<name>` for a virtio-serial port found by name. */
export function portParam(arch: ArchSpec): string {
  const p = arch.resultPort;
  return p.attach === 'serial' ? p.device : `vport:${p.name}`;
}

/** The base command line of the default architecture. */
export const BASE_CMDLINE = baseCmdline();

/** Longest unix socket path the kernel accepts (sun_path is 108 bytes with the NUL). */
export const MAX_SOCKET_PATH = 107;

/** QEMU option lists are comma-separated: a literal comma in a value is written twice. */
export function qemuOptValue(v: string): string {
  return v.replaceAll(',', ',,');
}

/** The full argv: argv[0] is the QEMU binary. Throws on a description QEMU would reject. */
export function qemuArgs(spec: BootSpec, channel: QemuChannel): string[] {
  const arch = spec.arch ?? defaultArch();
  const binary = spec.qemuBinary ?? requireTool(arch.qemuBinary, 'to boot the guests');
  const mem = spec.memoryMiB ?? DEFAULTS.memoryMiB;
  const cpus = spec.cpus ?? DEFAULTS.cpus;
  if (!Number.isInteger(mem) || mem < 16) {
    throw new UsageError(`memoryMiB must be a whole number of MiB, at least 16; got ${spec.memoryMiB}`);
  }
  if (!Number.isInteger(cpus) || cpus < 1 || cpus > 64) {
    throw new UsageError(`cpus must be a whole number from 1 to 64; got ${spec.cpus}`);
  }
  if (spec.accel !== 'kvm' && spec.accel !== 'tcg') {
    throw new UsageError(`accel must be 'kvm' or 'tcg'; got ${String(spec.accel)}`);
  }
  if (Buffer.byteLength(channel.resultSocket) > MAX_SOCKET_PATH) {
    throw new Error(
      `internal: result socket path is ${Buffer.byteLength(channel.resultSocket)} bytes, over the ` +
        `${MAX_SOCKET_PATH} a unix socket allows: ${channel.resultSocket}`,
    );
  }
  if (spec.gdbSocket !== undefined) {
    if (spec.gdbSocket === channel.resultSocket)
      throw new Error("internal: the gdb stub needs a socket of its own, not the result channel's");
    if (Buffer.byteLength(spec.gdbSocket) > MAX_SOCKET_PATH) {
      throw new UsageError(
        `the gdb stub's socket path is ${Buffer.byteLength(spec.gdbSocket)} bytes, over the ${MAX_SOCKET_PATH} a unix socket ` +
          `allows: ${spec.gdbSocket} (set TMPDIR to a shorter folder)`,
      );
    }
  }
  const firmware = spec.firmware ?? DEFAULTS.firmware;
  if (firmware !== 'bios' && firmware !== 'uefi') throw new UsageError(`firmware must be 'bios' or 'uefi'; got ${String(spec.firmware)}`);
  if (!arch.firmware.includes(firmware)) throw new UsageError(`${arch.name} boots with ${arch.firmware.join(' or ')}, not ${firmware}`);
  if (firmware === 'uefi' && !spec.uefi)
    throw new Error('internal: a uefi boot needs the firmware code and a per-run copy of its variable store');
  if (firmware === 'bios' && spec.esp) throw new UsageError('an EFI system partition boots only with firmware uefi');
  if (spec.kernel === undefined && !spec.esp) throw new UsageError('a boot needs a kernel image or an EFI system partition');
  if (spec.kernel === undefined && (spec.initrd !== undefined || (spec.append ?? '').trim())) {
    throw new Error('internal: -initrd and -append go with -kernel; a boot from the ESP takes them from its own files');
  }
  const append = (spec.append ?? '').trim();
  const base = baseCmdline(arch);
  const argv = [
    binary,
    '-nodefaults',
    '-no-user-config',
    '-no-reboot',
    '-display',
    'none',
    '-nic',
    'none',
    '-name',
    'rootprobe',
    '-M',
    arch.machine,
    '-accel',
    spec.accel,
    '-cpu',
    arch.cpu[spec.accel],
    '-m',
    String(mem),
    '-smp',
    String(cpus),
  ];
  if (firmware === 'bios' && arch.bios) argv.push('-bios', arch.bios.file);
  if (firmware === 'uefi' && spec.uefi) {
    argv.push(
      '-drive',
      `if=pflash,format=raw,unit=0,readonly=on,file=${qemuOptValue(spec.uefi.code)}`,
      '-drive',
      `if=pflash,format=raw,unit=1,file=${qemuOptValue(spec.uefi.vars)}`,
    );
  }
  if (spec.kernel !== undefined) {
    argv.push(
      '-kernel',
      spec.kernel,
      ...(spec.initrd !== undefined ? ['-initrd', spec.initrd] : []),
      '-append',
      append ? `${base} ${append}` : base,
    );
  }
  if (channel.interactive) {
    argv.push('-serial', 'mon:stdio');
  } else {
    argv.push('-chardev', 'stdio,id=con,signal=off', '-serial', 'chardev:con');
  }
  argv.push('-chardev', `socket,id=res,path=${qemuOptValue(channel.resultSocket)},server=on,wait=on`);
  if (arch.resultPort.attach === 'serial') argv.push('-serial', 'chardev:res');
  else
    argv.push(
      '-device',
      'virtio-serial-pci,id=rpserial',
      '-device',
      `virtserialport,bus=rpserial.0,chardev=res,name=${arch.resultPort.name}`,
    );
  (spec.disks ?? []).forEach((d, i) => {
    const drive = [
      `file=${qemuOptValue(d.path)}`,
      'format=raw',
      'if=none',
      `id=disk${i}`,
      'cache=unsafe',
      'werror=report',
      'rerror=report',
      ...(d.readOnly ? ['readonly=on'] : []),
      ...(d.snapshot ? ['snapshot=on'] : []),
    ];
    const dev = ['virtio-blk-pci', `drive=disk${i}`];
    if (d.serial !== undefined) {
      if (!/^[A-Za-z0-9._-]{1,20}$/.test(d.serial)) {
        throw new DefinitionError(`disk ${d.path}: serial ${JSON.stringify(d.serial)} must be 1 to 20 characters of A-Z a-z 0-9 . _ -`);
      }
      dev.push(`serial=${d.serial}`);
    }
    argv.push('-drive', drive.join(','), '-device', dev.join(','));
  });
  if (spec.esp) {
    // After the disks (vda... stay what the scenario names), first in the firmware's boot order.
    const drive = [
      'file=' + qemuOptValue(spec.esp.path),
      'format=raw',
      'if=none',
      'id=esp',
      'cache=unsafe',
      'werror=report',
      'rerror=report',
      ...(spec.esp.snapshot ? ['snapshot=on'] : []),
    ];
    argv.push('-drive', drive.join(','), '-device', 'virtio-blk-pci,drive=esp,bootindex=0');
  }
  if (spec.gdbSocket) argv.push('-gdb', `unix:${qemuOptValue(spec.gdbSocket)},server=on,wait=off`);
  argv.push('-pidfile', path.join(spec.runDir, 'qemu.pid'));
  return argv;
}

/**
 * The gdb command that attaches to a boot's gdb stub (`-gdb unix:SOCKET`, `rootprobe shell
 * --gdb`), as argv: with the kernel's `vmlinux` when it has one (symbols: git: builds), else the
 * guest's architecture by name. A guest of another architecture than the host's needs
 * gdb-multiarch (Debian's gdb debugs the host's own only).
 */
export function gdbCommand(o: { socket: string; vmlinux?: string; arch?: ArchSpec; hostArch?: string }): string[] {
  const arch = o.arch ?? defaultArch();
  const gdb = (o.hostArch ?? process.arch) === arch.hostArch ? 'gdb' : 'gdb-multiarch';
  return [gdb, ...(o.vmlinux ? [o.vmlinux] : ['-ex', `set architecture ${arch.gdbArch}`]), '-ex', `target remote ${o.socket}`];
}

export { shellQuote, shellLine } from '../quote.ts';
