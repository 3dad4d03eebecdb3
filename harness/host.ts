/**
 * The host tools rootprobe runs, which Debian package provides each, and how to find them.
 * `rootprobe doctor` reports on this table; code that needs a tool calls requireTool() so a
 * missing one is a clear error naming the package, before anything boots.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import * as path from 'node:path';
import { SetupError } from './errors.ts';
import { ARCHES } from './arch/index.ts';

export interface HostTool {
  /** The command name looked up on PATH (plus /usr/sbin and /sbin). */
  command: string;
  /** The Debian package that provides it. */
  debianPackage: string;
  /** What rootprobe uses it for, for the doctor's report. */
  purpose: string;
  /** Absolute paths tried before PATH (e.g. busybox-static's binary). */
  candidates?: string[];
}

export const HOST_TOOLS: HostTool[] = [
  ...Object.values(ARCHES).map((a) => ({ command: a.qemuBinary, debianPackage: a.qemuPackage, purpose: `boots the ${a.name} guests` })),
  {
    command: 'busybox',
    debianPackage: 'busybox-static',
    purpose: 'the guest userland (a static binary, copied into images)',
    candidates: ['/bin/busybox', '/usr/bin/busybox'],
  },
  { command: 'mke2fs', debianPackage: 'e2fsprogs', purpose: 'builds ext4 disk images from a folder' },
  { command: 'debugfs', debianPackage: 'e2fsprogs', purpose: 'sets owners and device nodes in disk images without root' },
  { command: 'e2fsck', debianPackage: 'e2fsprogs', purpose: 'checks disk images after a run' },
  { command: 'dumpe2fs', debianPackage: 'e2fsprogs', purpose: 'reads disk image features (needs_recovery) after a run' },
  { command: 'cpio', debianPackage: 'cpio', purpose: 'GNU cpio, used by tests to cross-check our archives' },
  { command: 'apt-get', debianPackage: 'apt', purpose: 'downloads Debian kernel packages (nothing is installed)' },
  { command: 'dpkg-deb', debianPackage: 'dpkg', purpose: 'unpacks Debian kernel packages into the cache' },
  { command: 'xz', debianPackage: 'xz-utils', purpose: 'decompresses .ko.xz kernel modules' },
  { command: 'zstd', debianPackage: 'zstd', purpose: 'decompresses .ko.zst kernel modules' },
  { command: 'switch_root', debianPackage: 'util-linux', purpose: "util-linux's switch_root, copied into images" },
  { command: 'make', debianPackage: 'make', purpose: 'builds kernels from source (build/<recipe>)' },
  { command: 'gcc', debianPackage: 'gcc', purpose: 'builds the guest probe, and kernels from source (build/<recipe>)' },
  { command: 'flex', debianPackage: 'flex', purpose: 'builds kernels from source (kconfig)' },
  { command: 'bison', debianPackage: 'bison', purpose: 'builds kernels from source (kconfig)' },
  { command: 'bc', debianPackage: 'bc', purpose: 'builds kernels from source' },
  { command: 'git', debianPackage: 'git', purpose: 'reads and checks out kernel source trees (git:, bisect)' },
  { command: 'patch', debianPackage: 'patch', purpose: "applies a recipe's kernel patches" },
  { command: 'setpriv', debianPackage: 'util-linux', purpose: 'gives QEMU a parent-death signal, so it cannot outlive rootprobe' },
  { command: 'mkfs.vfat', debianPackage: 'dosfstools', purpose: 'makes the FAT file system of an EFI system partition image (--boot systemd-boot, uki)' },
  { command: 'mcopy', debianPackage: 'mtools', purpose: 'copies files into an ESP image without mounting it' },
  { command: 'mmd', debianPackage: 'mtools', purpose: 'makes folders in an ESP image without mounting it' },
  { command: 'objcopy', debianPackage: 'binutils', purpose: "assembles unified kernel images on systemd's stub (where ukify is absent)" },
  { command: 'debootstrap', debianPackage: 'debootstrap', purpose: 'builds the Debian roots of the distro tests (as root; images/debootstrap.ts)' },
];

/** Files (not commands) rootprobe boots with: UEFI firmware and systemd's EFI binaries. */
export interface HostFile {
  /** What doctor calls it. */
  name: string;
  /** Tried in order; the first that exists is used. */
  candidates: string[];
  debianPackage: string;
  purpose: string;
}

export const SYSTEMD_BOOT_EFI = '/usr/lib/systemd/boot/efi';

export const HOST_FILES: HostFile[] = [
  ...Object.values(ARCHES).flatMap((a) =>
    a.uefi ? [{ name: `uefi-${a.name}`, candidates: a.uefi.code, debianPackage: a.uefi.debianPackage, purpose: `UEFI firmware of the ${a.name} guests (--firmware uefi)` }] : [],
  ),
  ...Object.values(ARCHES).flatMap((a) =>
    a.uefi
      ? [
          { name: `systemd-boot${a.uefi.efiArch}.efi`, candidates: [`${SYSTEMD_BOOT_EFI}/systemd-boot${a.uefi.efiArch}.efi`], debianPackage: 'systemd-boot-efi', purpose: 'the boot loader of --boot systemd-boot' },
          { name: `linux${a.uefi.efiArch}.efi.stub`, candidates: [`${SYSTEMD_BOOT_EFI}/linux${a.uefi.efiArch}.efi.stub`], debianPackage: 'systemd-boot-efi', purpose: 'systemd-stub, the base of the unified kernel images rootprobe assembles' },
        ]
      : [],
  ),
];

/** The first existing candidate of a HOST_FILES entry, or undefined. */
export function findHostFile(f: HostFile): string | undefined {
  return f.candidates.find((c) => {
    try {
      accessSync(c, constants.R_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** A file of HOST_FILES by its path, or a SetupError naming its package. */
export function requireHostFile(file: string, why: string): string {
  const entry = HOST_FILES.find((f) => f.candidates.includes(file));
  const found = entry ? findHostFile({ ...entry, candidates: [file] }) : findHostFile({ name: file, candidates: [file], debianPackage: '', purpose: '' });
  if (found) return found;
  throw new SetupError(
    `${file} is not installed${entry ? ` (Debian package ${entry.debianPackage})` : ''}; it is needed ${why}. ` +
      `Run \`npx rootprobe doctor --install\` as root, or install it yourself.`,
  );
}

const EXTRA_DIRS = ['/usr/local/sbin', '/usr/sbin', '/sbin'];

function isExecutable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The absolute path of a command, or undefined. */
export function findCommand(command: string, candidates: string[] = []): string | undefined {
  for (const c of candidates) if (isExecutable(c)) return c;
  const dirs = [...(process.env.PATH ?? '').split(':').filter(Boolean), ...EXTRA_DIRS];
  for (const d of dirs) {
    const p = path.join(d, command);
    if (isExecutable(p)) return p;
  }
  return undefined;
}

/** Static libraries the guest probe is linked with (found through gcc -print-file-name). */
export const STATIC_LIBS: Array<{ file: string; debianPackage: string }> = [
  { file: 'libc.a', debianPackage: 'libc6-dev' },
  { file: 'libz.a', debianPackage: 'zlib1g-dev' },
];

/** Where gcc finds a static library, or undefined (also when there is no gcc). */
export function findStaticLib(file: string): string | undefined {
  const gcc = findCommand('gcc');
  if (!gcc) return undefined;
  const r = spawnSync(gcc, [`-print-file-name=${file}`], { encoding: 'utf8' });
  const p = r.status === 0 ? r.stdout.trim() : '';
  return path.isAbsolute(p) ? p : undefined;
}

/** A static library from STATIC_LIBS, or a SetupError naming its package. */
export function requireStaticLib(file: string, why: string): string {
  const found = findStaticLib(file);
  if (found) return found;
  const pkg = STATIC_LIBS.find((l) => l.file === file)?.debianPackage;
  throw new SetupError(
    `${file} is not installed${pkg ? ` (Debian package ${pkg})` : ''}; it is needed ${why}. ` +
      `Run \`npx rootprobe doctor --install\` as root, or install it yourself.`,
  );
}

/** The absolute path of a tool from HOST_TOOLS (or any command), or a SetupError naming its package. */
export function requireTool(command: string, why?: string): string {
  const tool = HOST_TOOLS.find((t) => t.command === command);
  const found = findCommand(command, tool?.candidates);
  if (found) return found;
  const pkg = tool ? ` (Debian package ${tool.debianPackage})` : '';
  throw new SetupError(
    `${command} is not installed${pkg}${why ? `; it is needed ${why}` : ''}. ` +
      `Run \`npx rootprobe doctor --install\` as root, or install it yourself.`,
  );
}
