/**
 * Provider `file:<path>[,modules=<dir>,config=<file>]`: a kernel image on disk (an x86 bzImage, or
 * an arm64/riscv64 Image: the image says the guest's architecture), with optionally its
 * modules folder and its .config (default: a `.config` beside the file, if there is one).
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { UsageError } from '../harness/errors.ts';
import { ARCHES, DEFAULT_ARCH, type ArchSpec } from '../harness/arch/index.ts';
import { kernelImageInfo, type KernelImageInfo } from './image-format.ts';
import { parseKernelConfig } from './config.ts';
import type { Kernel } from './index.ts';

export interface FileKernelSpec {
  path: string;
  modules?: string;
  config?: string;
}

async function statOrUndefined(p: string): Promise<import('node:fs').Stats | undefined> {
  return fs.stat(p).catch(() => undefined);
}

export async function resolveFileKernel(spec: FileKernelSpec, id: string): Promise<Kernel> {
  const st = await statOrUndefined(spec.path);
  if (!st) throw new UsageError(`kernel ${id}: ${spec.path} does not exist. Give the path of a bzImage (vmlinuz).`);
  if (!st.isFile()) throw new UsageError(`kernel ${id}: ${spec.path} is not a file. Give the path of a bzImage (vmlinuz).`);
  // The image says its architecture: an x86 bzImage, or an arm64/riscv64 Image (image-format.ts).
  let found: { arch: ArchSpec; info: KernelImageInfo } | undefined;
  let x86Problem = '';
  for (const arch of Object.values(ARCHES)) {
    const info = await kernelImageInfo(spec.path, arch);
    if (!('problem' in info)) {
      found = { arch, info };
      break;
    }
    if (arch.name === DEFAULT_ARCH) x86Problem = info.problem;
  }
  if (!found && /truncated/.test(x86Problem)) throw new UsageError(`kernel ${id}: ${spec.path}: ${x86Problem}. Copy the whole file again.`);
  if (!found) {
    throw new UsageError(
      `kernel ${id}: ${spec.path}: ${x86Problem}. Give a kernel image QEMU boots: an x86 bzImage such as ` +
        'arch/x86/boot/bzImage or /boot/vmlinuz-*, or an arm64/riscv64 arch/<arch>/boot/Image; not vmlinux.',
    );
  }
  const header = found.info;
  let modulesDir: string | undefined;
  if (spec.modules) {
    const m = await statOrUndefined(spec.modules);
    if (!m?.isDirectory()) throw new UsageError(`kernel ${id}: modules=${spec.modules} is not a folder. Give lib/modules/<release>.`);
    modulesDir = spec.modules;
  }
  let configPath = spec.config;
  if (configPath) {
    if (!(await statOrUndefined(configPath))?.isFile()) {
      throw new UsageError(`kernel ${id}: config=${configPath} is not a file. Give the kernel's .config.`);
    }
  } else {
    const beside = path.join(path.dirname(spec.path), '.config');
    if ((await statOrUndefined(beside))?.isFile()) configPath = beside;
  }
  const bytes = await fs.readFile(spec.path);
  const release = header.release ?? (modulesDir ? path.basename(modulesDir) : 'unknown');
  return {
    id,
    release,
    vmlinuz: spec.path,
    modulesDir,
    configPath,
    config: configPath ? parseKernelConfig(await fs.readFile(configPath, 'utf8')) : undefined,
    description: `${spec.path}${header.versionString ? ` (${header.versionString})` : ''}`,
    sha256: createHash('sha256').update(bytes).digest('hex'),
    arch: found.arch.name,
  };
}
