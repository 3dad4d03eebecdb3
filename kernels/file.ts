/**
 * Provider `file:<path>[,modules=<dir>,config=<file>]`: a bzImage on disk, with optionally its
 * modules folder and its .config (default: a `.config` beside the file, if there is one).
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { UsageError } from '../harness/errors.ts';
import { bzImageSizeProblem, readBzImageHeader } from './bzimage.ts';
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
  const header = await readBzImageHeader(spec.path);
  if (!header) {
    throw new UsageError(
      `kernel ${id}: ${spec.path} is not a bzImage (no "HdrS" boot header at offset 0x202). ` +
        `Give an x86 bzImage such as arch/x86/boot/bzImage or /boot/vmlinuz-*, not vmlinux.`,
    );
  }
  const cut = bzImageSizeProblem(header, st.size);
  if (cut) throw new UsageError(`kernel ${id}: ${spec.path}: ${cut}. Copy the whole file again.`);
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
  };
}
