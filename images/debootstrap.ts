/**
 * Real distro images for external-mode tests: a Debian root made by `debootstrap
 * --variant=minbase` with systemd as PID 1, into which the distro's own apt installs the
 * cloud kernel and ONE initramfs generator (dracut and initramfs-tools conflict), whose
 * postinst hooks make /boot/initrd.img-<release> the way they do on any Debian machine.
 * Kept in the cache (kind 'distro'): the root as an ext4 image (mke2fs -d from the folder),
 * the kernel and the initrd taken from its /boot. The folder itself is not kept.
 *
 *   const d = await debianDistro('dracut');   // minutes the first time, then cached
 *   await runExternal({ kernel: await resolveKernel(`file:${d.vmlinuz}`), initramfs: d.initrd,
 *                       disks: [d.rootImage], cmdline: 'root=/dev/vda rw', ... });
 *
 * Needs root (debootstrap and chroot); the chroot's /proc, /sys and /dev are mounted in a
 * mount namespace of its own (unshare -m), so they vanish with it whatever happens. The
 * archive comes from the machine's apt configuration (kernels/apt-sources.ts).
 */
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { cachedEntry, cacheRoot, contentHash, isWholeEntry } from '../harness/cache.ts';
import { SetupError } from '../harness/errors.ts';
import { requireTool } from '../harness/host.ts';
import { debianArchive } from '../kernels/apt-sources.ts';

export type DistroGenerator = 'initramfs-tools' | 'dracut' | 'dracut-shell' | 'tiny-initramfs';
export const DISTRO_GENERATORS: DistroGenerator[] = ['initramfs-tools', 'dracut', 'dracut-shell', 'tiny-initramfs'];

/**
 * How each root gets its initramfs: the package its apt installs beside the kernel, and
 * configuration files written into the root before (the kernel's postinst runs the
 * generator with them). `dracut` is Debian's default: with systemd in the root, dracut puts
 * systemd into the initramfs too (its /init is systemd, initrd-switch-root.service switches).
 * `dracut-shell` omits dracut's systemd module, so its /init is dracut's shell script that
 * switches with switch_root. `tiny-initramfs` is one static C program as /init; on a cloud
 * kernel it needs virtio and ext4 as modules, named here (its auto-detection would read the
 * building machine's own root).
 */
export const DISTRO_RECIPES: Record<DistroGenerator, { package: string; files?: Record<string, string> }> = {
  'initramfs-tools': { package: 'initramfs-tools' },
  dracut: { package: 'dracut' },
  'dracut-shell': {
    package: 'dracut',
    files: { 'etc/dracut.conf.d/50-rootprobe-no-systemd.conf': 'omit_dracutmodules+=" systemd "\n' },
  },
  'tiny-initramfs': {
    package: 'tiny-initramfs',
    files: {
      'etc/tiny-initramfs/tiny-initramfs.conf': 'AUTO_MODULES=no\nINCLUDE_MODULES="virtio_pci,virtio_blk,ext4"\nMICROCODE=no\n',
    },
  },
};

/** Bump when what a build makes changes. */
const RECIPE = 'debian-distro-1';
const BASE_PACKAGES = ['systemd-sysv', 'udev'];
const KERNEL_PACKAGE = 'linux-image-cloud-amd64';

export interface DistroImages {
  dir: string;
  generator: DistroGenerator;
  suite: string;
  /** The root filesystem: ext4, / of the debootstrapped tree. Boot it with root=/dev/vda. */
  rootImage: string;
  /** /boot/vmlinuz-<release> of the root. */
  vmlinuz: string;
  /** /boot/initrd.img-<release> as the generator made it. */
  initrd: string;
  release: string;
  /** Facts of the build (package versions, sizes, seconds per step). */
  facts: Record<string, string | number>;
}

export interface DistroOptions {
  suite?: string;
  onProgress?: (msg: string) => void;
}

function run(cmd: string, args: string[], opts: { timeoutMs?: number } = {}): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(
      cmd,
      args,
      {
        maxBuffer: 64 << 20,
        timeout: opts.timeoutMs ?? 30 * 60_000,
        env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive', LC_ALL: 'C' },
      },
      (err, stdout, stderr) => {
        if (err) {
          const tail = `${stdout}\n${stderr}`.trim().split('\n').slice(-15).join('\n');
          reject(new SetupError(`${path.basename(cmd)} ${args.slice(0, 4).join(' ')} ... failed: ${err.message}\n${tail}`));
        } else resolve({ stdout, stderr });
      },
    );
  });
}

function cacheKey(generator: DistroGenerator, suite: string, uri: string): string {
  const { package: pkg, files } = DISTRO_RECIPES[generator];
  // The first two generators' keys are as before their recipe said more (caches stay valid).
  const recipe = pkg === generator && !files ? [] : [pkg, JSON.stringify(files ?? {})];
  return `${suite}-${generator}-${contentHash(RECIPE, suite, generator, BASE_PACKAGES, KERNEL_PACKAGE, uri, ...recipe)}`;
}

/** The cached images, if built; never builds. */
export async function cachedDistro(generator: DistroGenerator, suite = 'bookworm'): Promise<DistroImages | undefined> {
  const archive = await debianArchive().catch(() => undefined);
  if (!archive) return undefined;
  const dir = path.join(cacheRoot(), 'distro', cacheKey(generator, suite, archive.uri));
  if (!(await isWholeEntry(dir))) return undefined;
  return readEntry(dir, generator, suite);
}

async function readEntry(dir: string, generator: DistroGenerator, suite: string): Promise<DistroImages> {
  const facts = JSON.parse(await fs.readFile(path.join(dir, 'facts.json'), 'utf8')) as Record<string, string | number>;
  return {
    dir,
    generator,
    suite,
    rootImage: path.join(dir, 'root.img'),
    vmlinuz: path.join(dir, 'vmlinuz'),
    initrd: path.join(dir, 'initrd.img'),
    release: String(facts.release),
    facts,
  };
}

/** Why this machine cannot build distro images, or undefined if it can. */
export function distroBuildBlocker(): string | undefined {
  if (process.getuid?.() !== 0) return 'building a debootstrapped root needs root (debootstrap, chroot)';
  for (const t of ['debootstrap', 'chroot', 'unshare', 'mke2fs']) {
    try {
      requireTool(t);
    } catch (e) {
      return (e as Error).message;
    }
  }
  return undefined;
}

/** The Debian root + kernel + initrd for `generator`, built (minutes) if not cached. */
export async function debianDistro(generator: DistroGenerator, opts: DistroOptions = {}): Promise<DistroImages> {
  const suite = opts.suite ?? 'bookworm';
  const say = opts.onProgress ?? (() => {});
  const archive = await debianArchive();
  const key = cacheKey(generator, suite, archive.uri);
  const dir = await cachedEntry('distro', key, async (tmp) => {
    const blocker = distroBuildBlocker();
    if (blocker) throw new SetupError(`cannot build the Debian ${suite} root with ${generator}: ${blocker}.`);
    const facts: Record<string, string | number> = { generator, suite };
    const root = path.join(tmp, 'root');
    try {
      let t = Date.now();
      say(`debootstrap --variant=minbase ${suite} (${generator})`);
      const keyring = archive.signedBy.includes('\n') ? [] : [`--keyring=${archive.signedBy}`];
      await run(requireTool('debootstrap'), [
        '--variant=minbase',
        `--include=${BASE_PACKAGES.join(',')}`,
        ...keyring,
        suite,
        root,
        archive.uri,
      ]);
      facts.debootstrapSec = Math.round((Date.now() - t) / 1000);
      t = Date.now();
      const recipe = DISTRO_RECIPES[generator];
      for (const [rel, text] of Object.entries(recipe.files ?? {})) {
        await fs.mkdir(path.dirname(path.join(root, rel)), { recursive: true });
        await fs.writeFile(path.join(root, rel), text);
      }
      say(`apt-get install ${KERNEL_PACKAGE} ${recipe.package} in the root`);
      const script = [
        'set -e',
        'R="$1"; shift',
        'mount -t proc proc "$R/proc"',
        'mount -t sysfs sysfs "$R/sys"',
        'mount --bind /dev "$R/dev"',
        'chroot "$R" apt-get install -y --no-install-recommends "$@"',
        'chroot "$R" apt-get clean',
        `chroot "$R" dpkg-query -W -f '\${Package} \${Version}\\n' ${KERNEL_PACKAGE} systemd "$1"`,
      ].join('\n');
      const inst = await run(requireTool('unshare'), [
        '-m',
        '--propagation',
        'private',
        'sh',
        '-c',
        script,
        'sh',
        root,
        recipe.package,
        KERNEL_PACKAGE,
      ]);
      facts.installSec = Math.round((Date.now() - t) / 1000);
      for (const line of inst.stdout.trim().split('\n').slice(-3)) {
        const [p, v] = line.split(' ');
        if (p && v) facts[`version:${p}`] = v;
      }
      const boot = await fs.readdir(path.join(root, 'boot'));
      const vmlinuz = boot.find((f) => f.startsWith('vmlinuz-'));
      if (!vmlinuz) throw new SetupError(`no /boot/vmlinuz-* in the ${suite} root after installing ${KERNEL_PACKAGE}`);
      const release = vmlinuz.slice('vmlinuz-'.length);
      if (!boot.includes(`initrd.img-${release}`)) throw new SetupError(`${generator} made no /boot/initrd.img-${release}`);
      facts.release = release;
      await fs.copyFile(path.join(root, 'boot', vmlinuz), path.join(tmp, 'vmlinuz'));
      await fs.copyFile(path.join(root, 'boot', `initrd.img-${release}`), path.join(tmp, 'initrd.img'));
      facts.initrdBytes = (await fs.stat(path.join(tmp, 'initrd.img'))).size;

      t = Date.now();
      const du = await run('du', ['-sm', root]);
      const usedMiB = Number(du.stdout.split(/\s/)[0]);
      const sizeMiB = Math.ceil((usedMiB * 1.4 + 256) / 64) * 64;
      facts.rootUsedMiB = usedMiB;
      facts.rootImageMiB = sizeMiB;
      say(`mke2fs -d: ${usedMiB} MiB into a ${sizeMiB} MiB ext4 image`);
      await run(requireTool('mke2fs'), ['-q', '-t', 'ext4', '-L', 'root', '-d', root, path.join(tmp, 'root.img'), `${sizeMiB}M`]);
      facts.mke2fsSec = Math.round((Date.now() - t) / 1000);
    } finally {
      await fs.rm(root, { recursive: true, force: true });
    }
    await fs.writeFile(path.join(tmp, 'facts.json'), JSON.stringify(facts, null, 1));
  });
  return readEntry(dir, generator, suite);
}
