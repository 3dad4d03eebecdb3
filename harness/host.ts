/**
 * The host tools, headers and static libraries rootprobe needs, which Debian package provides
 * each, which kernel provider or feature needs it (`neededBy`), and how to find them. This is
 * the one list: a provider checks what it needs with requireFor('<provider>') (or requireTool
 * for one tool), and `rootprobe doctor` checks, and `doctor --install` installs, all of it, so
 * what the doctor passes is what every provider and feature asks for.
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
  /** The kernel providers and features that need it. */
  neededBy: NeededBy[];
}

/**
 * Who needs a host requirement: `qemu` (every boot), `images` (every scenario's images),
 * `probe` (the guest probe and C helpers), `debian` (debian/<suite> kernels), `build`
 * (build/<recipe> kernels), `loop` (scenarios that check disks after the run), `util-linux`
 * (scenarios with util-linux's switch_root), `distro` (the distro tests' debootstrap roots),
 * `foreign` (guests of another architecture than the host's: their cross compiler),
 * `tests` (rootprobe's own tests).
 */
export type NeededBy =
  | 'qemu'
  | 'images'
  | 'probe'
  | 'debian'
  | 'build'
  | 'git'
  | 'uefi'
  | 'loop'
  | 'util-linux'
  | 'distro'
  | 'foreign'
  | 'tests';

export const HOST_TOOLS: HostTool[] = [
  ...Object.values(ARCHES).map((a) => ({
    command: a.qemuBinary,
    debianPackage: a.qemuPackage,
    purpose: `boots the ${a.name} guests`,
    neededBy: ['qemu'] as NeededBy[],
  })),
  ...Object.values(ARCHES).flatMap((a) =>
    a.crossCompiler
      ? [
          {
            command: a.crossCompiler.command,
            debianPackage: a.crossCompiler.debianPackage,
            purpose: `builds the guest probe and C helpers, and kernels from source, for ${a.name} guests on another host`,
            neededBy: ['foreign'] as NeededBy[],
          },
        ]
      : [],
  ),
  {
    command: 'busybox',
    debianPackage: 'busybox-static',
    purpose: 'the guest userland (a static binary, copied into images)',
    candidates: ['/bin/busybox', '/usr/bin/busybox'],
    neededBy: ['images'],
  },
  { command: 'mke2fs', debianPackage: 'e2fsprogs', purpose: 'builds ext4 disk images from a folder', neededBy: ['images'] },
  {
    command: 'debugfs',
    debianPackage: 'e2fsprogs',
    purpose: 'sets owners and device nodes in disk images without root',
    neededBy: ['images'],
  },
  { command: 'e2fsck', debianPackage: 'e2fsprogs', purpose: 'checks disk images after a run', neededBy: ['loop'] },
  {
    command: 'dumpe2fs',
    debianPackage: 'e2fsprogs',
    purpose: 'reads disk image features (needs_recovery) after a run',
    neededBy: ['images', 'loop'],
  },
  { command: 'cpio', debianPackage: 'cpio', purpose: 'GNU cpio, used by tests to cross-check our archives', neededBy: ['tests'] },
  {
    command: 'apt-get',
    debianPackage: 'apt',
    purpose: 'downloads Debian kernel packages (nothing is installed)',
    neededBy: ['debian', 'build'],
  },
  { command: 'dpkg-deb', debianPackage: 'dpkg', purpose: 'unpacks Debian kernel packages into the cache', neededBy: ['debian', 'build'] },
  { command: 'xz', debianPackage: 'xz-utils', purpose: 'decompresses .ko.xz kernel modules', neededBy: ['debian', 'build'] },
  { command: 'zstd', debianPackage: 'zstd', purpose: 'decompresses .ko.zst kernel modules', neededBy: ['debian', 'images'] },
  {
    command: 'switch_root',
    debianPackage: 'util-linux',
    purpose: "util-linux's switch_root, copied into images",
    neededBy: ['util-linux'],
  },
  { command: 'make', debianPackage: 'make', purpose: 'builds kernels from source (build/<recipe>)', neededBy: ['build'] },
  {
    command: 'gcc',
    debianPackage: 'gcc',
    purpose: 'builds the guest probe, and kernels from source (build/<recipe>)',
    neededBy: ['probe', 'build'],
  },
  { command: 'flex', debianPackage: 'flex', purpose: 'builds kernels from source (kconfig)', neededBy: ['build'] },
  { command: 'bison', debianPackage: 'bison', purpose: 'builds kernels from source (kconfig)', neededBy: ['build'] },
  { command: 'bc', debianPackage: 'bc', purpose: 'builds kernels from source', neededBy: ['build'] },
  { command: 'git', debianPackage: 'git', purpose: 'reads and checks out kernel source trees (git:, bisect)', neededBy: ['git'] },
  { command: 'patch', debianPackage: 'patch', purpose: "applies a recipe's kernel patches", neededBy: ['build'] },
  { command: 'tar', debianPackage: 'tar', purpose: 'unpacks the kernel source (build/<recipe>)', neededBy: ['build'] },
  { command: 'perl', debianPackage: 'perl', purpose: "the kernel build's scripts (build/<recipe>)", neededBy: ['build'] },
  {
    command: 'setpriv',
    debianPackage: 'util-linux',
    purpose: 'gives QEMU a parent-death signal, so it cannot outlive rootprobe',
    neededBy: ['qemu'],
  },
  {
    command: 'mkfs.vfat',
    debianPackage: 'dosfstools',
    purpose: 'makes the FAT file system of an EFI system partition image (--boot systemd-boot, uki)',
    neededBy: ['uefi'],
  },
  { command: 'mcopy', debianPackage: 'mtools', purpose: 'copies files into an ESP image without mounting it', neededBy: ['uefi'] },
  { command: 'mmd', debianPackage: 'mtools', purpose: 'makes folders in an ESP image without mounting it', neededBy: ['uefi'] },
  {
    command: 'objcopy',
    debianPackage: 'binutils',
    purpose: "assembles unified kernel images on systemd's stub (where ukify is absent)",
    neededBy: ['uefi'],
  },
  {
    command: 'debootstrap',
    debianPackage: 'debootstrap',
    purpose: 'builds the Debian roots of the distro tests (as root; images/debootstrap.ts)',
    neededBy: ['distro'],
  },
];

export interface HostHeader {
  /** The header file; any of `alternatives` will do too. */
  header: string;
  alternatives?: string[];
  debianPackage: string;
  purpose: string;
  neededBy: NeededBy[];
}

export const HOST_HEADERS: HostHeader[] = [
  ...Object.values(ARCHES).flatMap((a) =>
    a.crossCompiler
      ? [
          {
            header: a.crossCompiler.libc.header,
            debianPackage: a.crossCompiler.libc.debianPackage,
            purpose: `the C library the ${a.name} cross compiler builds the guest probe against`,
            neededBy: ['foreign'] as NeededBy[],
          },
        ]
      : [],
  ),
  {
    header: '/usr/include/libelf.h',
    alternatives: ['/usr/include/gelf.h'],
    debianPackage: 'libelf-dev',
    purpose: 'objtool, in a kernel build from source (build/<recipe>)',
    neededBy: ['build'],
  },
];

export function findHeader(h: HostHeader): string | undefined {
  return [h.header, ...(h.alternatives ?? [])].find((f) => {
    try {
      accessSync(f, constants.R_OK);
      return true;
    } catch {
      return false;
    }
  });
}

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
    a.bios
      ? [
          {
            name: `bios-${a.name}`,
            candidates: [a.bios.file],
            debianPackage: a.bios.debianPackage,
            purpose: `the firmware that starts the ${a.name} guests' kernel`,
          },
        ]
      : [],
  ),
  ...Object.values(ARCHES).flatMap((a) =>
    a.uefi
      ? [
          {
            name: `uefi-${a.name}`,
            candidates: a.uefi.code,
            debianPackage: a.uefi.debianPackage,
            purpose: `UEFI firmware of the ${a.name} guests (--firmware uefi)`,
          },
        ]
      : [],
  ),
  ...Object.values(ARCHES).flatMap((a) =>
    a.uefi
      ? [
          {
            name: `systemd-boot${a.uefi.efiArch}.efi`,
            candidates: [`${SYSTEMD_BOOT_EFI}/systemd-boot${a.uefi.efiArch}.efi`],
            debianPackage: 'systemd-boot-efi',
            purpose: 'the boot loader of --boot systemd-boot',
          },
          {
            name: `linux${a.uefi.efiArch}.efi.stub`,
            candidates: [`${SYSTEMD_BOOT_EFI}/linux${a.uefi.efiArch}.efi.stub`],
            debianPackage: 'systemd-boot-efi',
            purpose: 'systemd-stub, the base of the unified kernel images rootprobe assembles',
          },
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
  const found = entry
    ? findHostFile({ ...entry, candidates: [file] })
    : findHostFile({ name: file, candidates: [file], debianPackage: '', purpose: '' });
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
export const STATIC_LIBS: Array<{ file: string; debianPackage: string; neededBy: NeededBy[] }> = [
  { file: 'libc.a', debianPackage: 'libc6-dev', neededBy: ['probe'] },
  { file: 'libz.a', debianPackage: 'zlib1g-dev', neededBy: ['probe'] },
];

/** Where gcc finds a static library, or undefined (also when there is no gcc). */
export function findStaticLib(file: string): string | undefined {
  const gcc = findCommand('gcc');
  if (!gcc) return undefined;
  const r = spawnSync(gcc, [`-print-file-name=${file}`], { encoding: 'utf8' });
  const p = r.status === 0 ? r.stdout.trim() : '';
  return path.isAbsolute(p) ? p : undefined;
}

/** A header of HOST_HEADERS (or any file), or a SetupError naming its package. */
export function requireHeader(header: string, why: string): string {
  const entry = HOST_HEADERS.find((h) => h.header === header) ?? { header, debianPackage: '', purpose: '', neededBy: [] };
  const found = findHeader(entry);
  if (found) return found;
  throw new SetupError(
    `${header} is not installed${entry.debianPackage ? ` (Debian package ${entry.debianPackage})` : ''}; it is needed ${why}. ` +
      `Run \`npx rootprobe doctor --install\` as root, or install it yourself.`,
  );
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

export interface HostNeed {
  kind: 'command' | 'header' | 'static library';
  name: string;
  debianPackage: string;
  purpose: string;
  neededBy: NeededBy[];
  found?: string;
}

/** Every host requirement (of `user`, or of all), with where it was found. */
export function hostNeeds(user?: NeededBy): HostNeed[] {
  const all: HostNeed[] = [
    ...HOST_TOOLS.map((t) => ({
      kind: 'command' as const,
      name: t.command,
      debianPackage: t.debianPackage,
      purpose: t.purpose,
      neededBy: t.neededBy,
      found: findCommand(t.command, t.candidates),
    })),
    ...HOST_HEADERS.map((h) => ({
      kind: 'header' as const,
      name: h.header,
      debianPackage: h.debianPackage,
      purpose: h.purpose,
      neededBy: h.neededBy,
      found: findHeader(h),
    })),
    ...STATIC_LIBS.map((l) => ({
      kind: 'static library' as const,
      name: l.file,
      debianPackage: l.debianPackage,
      purpose: 'links the guest probe statically',
      neededBy: l.neededBy,
      found: findStaticLib(l.file),
    })),
  ];
  return user ? all.filter((n) => n.neededBy.includes(user)) : all;
}

/**
 * Checks everything `user` needs at once; returns the commands' paths by name, or throws one
 * SetupError naming every missing piece and its package.
 */
export function requireFor(user: NeededBy, why: string): Record<string, string> {
  const needs = hostNeeds(user);
  const missing = needs.filter((n) => !n.found);
  if (missing.length) {
    const one = missing.length === 1;
    throw new SetupError(
      `${missing.map((m) => `${m.name} (Debian package ${m.debianPackage})`).join(', ')} ${one ? 'is' : 'are'} not installed; ` +
        `${one ? 'it is' : 'they are'} needed ${why}. Run \`npx rootprobe doctor --install\` as root, or install ${one ? 'it' : 'them'} yourself.`,
    );
  }
  return Object.fromEntries(needs.filter((n) => n.kind === 'command').map((n) => [n.name, n.found!]));
}
