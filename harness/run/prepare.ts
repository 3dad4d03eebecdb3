/**
 * A scenario's images for one kernel: the initramfs as cached cpio segments (busybox base,
 * the kernel's modules, the scenario's own files, the probe toolkit) and its disk images.
 * Each part is cached by content, so a second run builds nothing.
 */
import * as path from 'node:path';
import { ImageTree } from '../image/tree.ts';
import { buildCpioSegment } from '../image/initramfs.ts';
import { buildExt4, rawImage } from '../image/disk.ts';
import { probeToolkit, staticProgram } from '../guest/toolkit.ts';
import { requireTool } from '../host.ts';
import { SetupError } from '../errors.ts';
import { settled } from '../lifecycle.ts';
import { archOf } from '../arch/index.ts';
import { baseInitramfs } from '../../images/base.ts';
import { checkFeatures } from '../../kernels/config.ts';
import type { Kernel } from '../../kernels/index.ts';
import type { BuildContext, DiskSpec, Scenario } from '../scenario.ts';

export interface PreparedDisk {
  name: string;
  /** The cached image: copy it before a guest writes to it. */
  cachedPath: string;
}

export interface PreparedImages {
  /** cpio segments in the order the kernel unpacks them. */
  segments: Array<{ name: string; path: string }>;
  disks: PreparedDisk[];
  /** Modules loaded from the initramfs, in no particular order. */
  modules: string[];
  warnings: string[];
}

export function buildContext(sc: Scenario, kernel: Kernel): BuildContext {
  const arch = archOf(kernel);
  return {
    kernel,
    arch,
    here: (rel: string) => path.resolve(sc.dir, rel),
    tool: (command: string) => requireTool(command, `by scenario '${sc.name}'`),
    program: (rel: string, libs?: string[]) =>
      staticProgram(path.resolve(sc.dir, rel), { libs, purpose: `helper ${rel} of scenario '${sc.name}'`, arch }),
  };
}

async function diskTree(spec: Omit<DiskSpec, 'images'>, ctx: BuildContext, extra?: (t: ImageTree) => Promise<void>): Promise<ImageTree> {
  const t = new ImageTree(`disk '${spec.name}'`, { arch: ctx.arch });
  if (spec.content) await spec.content(t, ctx);
  if (extra) await extra(t);
  t.merge(await probeToolkit());
  return t;
}

async function buildDisk(spec: DiskSpec, ctx: BuildContext): Promise<string> {
  if (spec.fs === 'raw') return rawImage({ sizeMiB: spec.sizeMiB });
  const inner = spec.images ?? {};
  const t = await diskTree(spec, ctx, async (tree) => {
    // Images stored as files on this disk (a loop root on a partition): built first.
    for (const [guestPath, innerSpec] of Object.entries(inner)) {
      const innerPath = await buildDisk(innerSpec as DiskSpec, ctx);
      tree.copy(guestPath, innerPath, 0o644);
    }
  });
  await t.validate();
  return buildExt4(t, { sizeMiB: spec.sizeMiB, label: spec.label });
}

/** Checks the kernel and builds (or finds in the cache) everything a boot of `sc` needs. */
export async function prepareImages(sc: Scenario, kernel: Kernel, opts: { firmware?: 'bios' | 'uefi' } = {}): Promise<PreparedImages> {
  const { modules, warnings } = checkFeatures(kernel, sc.features, sc.name);
  // Under UEFI the probe reads the loader's variables from efivarfs: its module goes in too.
  const efi = opts.firmware === 'uefi' && kernel.config?.get('CONFIG_EFIVAR_FS') === 'm' && kernel.modulesDir ? ['efivarfs'] : [];
  const wanted = [...new Set([...modules, ...(sc.modules ?? []), ...efi])].sort();
  const ctx = buildContext(sc, kernel);
  // No initramfs: the kernel mounts the root itself; no segment at all (and no -initrd).
  if (sc.initramfs === false) {
    if (modules.length > 0) {
      throw new SetupError(
        `scenario '${sc.name}' boots without an initramfs, but kernel ${kernel.id} has these options as modules, ` +
          `which nothing could load: ${modules.join(', ')} (the scenario's skipIf should name this kernel)`,
      );
    }
    const disks = await buildDisks(sc, ctx);
    // An old-style initrd: an ext2 image, the only "segment" (QEMU's -initrd takes it as it is).
    const segments: PreparedImages['segments'] = [];
    if (sc.initrd) {
      const t = await diskTree({ name: 'initrd', fs: 'ext4', sizeMiB: sc.initrd.sizeMiB, content: sc.initrd.content }, ctx);
      await t.validate();
      segments.push({ name: 'initrd', path: await buildExt4(t, { sizeMiB: sc.initrd.sizeMiB, fsType: 'ext2', label: 'initrd' }) });
    }
    return { segments, disks, modules: [], warnings };
  }

  const base = baseInitramfs().forArch(ctx.arch);
  const mods = new ImageTree(`modules for ${kernel.release}`, { arch: ctx.arch });
  if (wanted.length > 0) {
    if (!kernel.modulesDir) {
      throw new SetupError(
        `kernel ${kernel.id} has these options as modules but no modules folder: ${wanted.join(', ')}; ` +
          `give one with file:<bzImage>,modules=<dir>, or build them in`,
      );
    }
    mods.kernelModules(kernel, wanted);
  }
  const overlay = new ImageTree(`scenario '${sc.name}' initramfs`, { arch: ctx.arch });
  if (sc.initramfs) await sc.initramfs(overlay, ctx); // false: no initramfs of its own (the boot-plan runner decides)
  // The base's /bin/busybox is the toolkit's own busybox unless the scenario puts another there.
  const toolkit = (await probeToolkit({ busyboxAt: (await overlay.has('/bin/busybox')) ? undefined : '/bin/busybox' })).forArch(ctx.arch);

  const parts: Array<[string, ImageTree]> = [
    ['base', base],
    ['modules', mods],
    ['scenario', overlay],
    ['probe', toolkit],
  ];
  await settled(parts.map(([, t]) => t.validate()));
  // The segments and disks at once: a warm run checks each in the cache, a cold one builds
  // its cpio segments beside its mke2fs runs.
  const [built, disks] = await settled([
    settled(parts.map(async ([name, t]) => ((await t.list()).length === 0 ? undefined : { name, path: await buildCpioSegment(t) }))),
    buildDisks(sc, ctx),
  ] as const);
  return { segments: built.filter((s) => s !== undefined), disks, modules: wanted, warnings };
}

function buildDisks(sc: Scenario, ctx: BuildContext): Promise<PreparedDisk[]> {
  return settled((sc.disks ?? []).map(async (d) => ({ name: d.name, cachedPath: await buildDisk(d, ctx) })));
}
