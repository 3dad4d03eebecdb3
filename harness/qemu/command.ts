/**
 * The QEMU command line of one boot, as a pure function of the boot's description.
 *
 * Choices (measured on a 2-core host under TCG with the Debian bookworm cloud kernel 6.1,
 * busybox initramfs that powers off at once, 3 runs each): `-M pc` 2.59-2.65 s, `-M q35`
 * 2.42-2.62 s (no real gain), `-M microvm` 2.25 s but one run in three hung before /init, and
 * it needs virtio_mmio (a module in that kernel) for disks. So: `pc`.
 *
 * Serial ports, in order: ttyS0 = console (QEMU's stdout, stdin from /dev/null; or the user's
 * terminal with the monitor multiplexed in interactive mode: Ctrl-a x quits), ttyS1 = result
 * channel on a unix socket where QEMU is the server and waits for the host to connect before it
 * starts the guest, so no byte is lost.
 *
 * Disks are virtio-blk PCI devices in the given order (vda, vdb, ...), raw, `cache=unsafe`:
 * the guest's writes go straight to the host file (only flush requests are skipped, which
 * matters for a host crash, not for a test), so after QEMU exits normally the file holds them.
 * `snapshot: true` sends writes to a throwaway overlay (QEMU puts it in $TMPDIR; the runner
 * points that at a private temp folder).
 */
import * as path from 'node:path';
import { requireTool } from '../host.ts';
import { DefinitionError, UsageError } from '../errors.ts';

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
  /** bzImage path */
  kernel: string;
  /** ONE file (the caller concatenates cpio segments) */
  initrd?: string;
  /** extra kernel cmdline (added after ours) */
  append?: string;
  /** virtio-blk, raw */
  disks?: BootDisk[];
  /** default 512 */
  memoryMiB?: number;
  /** default 1 */
  cpus?: number;
  accel: 'kvm' | 'tcg';
  /** where console.log, result.stream, qemu.cmdline, qemu.pid go */
  runDir: string;
  /** default requireTool('qemu-system-x86_64') */
  qemuBinary?: string;
}

export interface QemuChannel {
  /** Path of the unix socket for ttyS1 (at most 107 bytes). */
  resultSocket: string;
  /** Console on the user's terminal (`-serial mon:stdio`) instead of QEMU's stdout. */
  interactive?: boolean;
}

/**
 * The kernel command line we always start with. `no_timer_check`: on a busy host a TCG guest's
 * timer interrupt can miss the kernel's early IO-APIC timer check, which then panics ("IO-APIC
 * + timer doesn't work!"; 1 boot in 700 of a soak with four VMs on two cores). The check
 * matters for real hardware, never for a root switch; cloud images and libvirt guests skip it
 * the same way.
 */
export const BASE_CMDLINE = 'console=ttyS0 panic=-1 oops=panic no_timer_check';

/** Longest unix socket path the kernel accepts (sun_path is 108 bytes with the NUL). */
export const MAX_SOCKET_PATH = 107;

/** QEMU option lists are comma-separated: a literal comma in a value is written twice. */
export function qemuOptValue(v: string): string {
  return v.replaceAll(',', ',,');
}

/** The full argv: argv[0] is the QEMU binary. Throws on a description QEMU would reject. */
export function qemuArgs(spec: BootSpec, channel: QemuChannel): string[] {
  const binary = spec.qemuBinary ?? requireTool('qemu-system-x86_64', 'to boot the guests');
  const mem = spec.memoryMiB ?? 512;
  const cpus = spec.cpus ?? 1;
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
  const append = (spec.append ?? '').trim();
  const argv = [
    binary,
    '-nodefaults',
    '-no-user-config',
    '-no-reboot',
    '-display', 'none',
    '-nic', 'none',
    '-name', 'rootprobe',
    '-M', 'pc',
    ...(spec.accel === 'kvm' ? ['-accel', 'kvm', '-cpu', 'host'] : ['-accel', 'tcg', '-cpu', 'max']),
    '-m', String(mem),
    '-smp', String(cpus),
    '-kernel', spec.kernel,
    ...(spec.initrd !== undefined ? ['-initrd', spec.initrd] : []),
    '-append', append ? `${BASE_CMDLINE} ${append}` : BASE_CMDLINE,
  ];
  if (channel.interactive) {
    argv.push('-serial', 'mon:stdio');
  } else {
    argv.push('-chardev', 'stdio,id=con,signal=off', '-serial', 'chardev:con');
  }
  argv.push(
    '-chardev', `socket,id=res,path=${qemuOptValue(channel.resultSocket)},server=on,wait=on`,
    '-serial', 'chardev:res',
  );
  (spec.disks ?? []).forEach((d, i) => {
    const drive = [
      `file=${qemuOptValue(d.path)}`,
      'format=raw',
      'if=none',
      `id=disk${i}`,
      'cache=unsafe',
      ...(d.readOnly ? ['readonly=on'] : []),
      ...(d.snapshot ? ['snapshot=on'] : []),
    ];
    const dev = ['virtio-blk-pci', `drive=disk${i}`];
    if (d.serial !== undefined) {
      if (!/^[A-Za-z0-9._-]{1,20}$/.test(d.serial)) {
        throw new DefinitionError(
          `disk ${d.path}: serial ${JSON.stringify(d.serial)} must be 1 to 20 characters of A-Z a-z 0-9 . _ -`,
        );
      }
      dev.push(`serial=${d.serial}`);
    }
    argv.push('-drive', drive.join(','), '-device', dev.join(','));
  });
  argv.push('-pidfile', path.join(spec.runDir, 'qemu.pid'));
  return argv;
}

/** One argument quoted for a POSIX shell (left bare when that is safe). */
export function shellQuote(arg: string): string {
  if (/^[A-Za-z0-9_\/.,:=+@%-]+$/.test(arg)) return arg;
  return `'${arg.replaceAll("'", `'\\''`)}'`;
}

/** The argv on one line, quoted so a person can paste it into a shell. */
export function shellLine(argv: string[]): string {
  return argv.map(shellQuote).join(' ');
}
