/**
 * A kernel's cache entry, written once for every provider that caches kernels: the entry's
 * `kernel.json` (paths relative to the entry, so the cache can move) and the small pointer
 * files (`<name>.current`) that let a later run find the entry without the network.
 */
import { promises as fs, existsSync } from 'node:fs';
import * as path from 'node:path';
import { cacheRoot } from '../harness/cache.ts';
import { parseKernelConfig } from './config.ts';
import type { Kernel } from './index.ts';
import { DEFAULT_ARCH } from '../harness/arch/index.ts';

/** What every kernel.json holds (providers add their own fields). */
export interface KernelEntryRecord {
  id: string;
  release: string;
  vmlinuz: string;
  modulesDir?: string;
  configPath?: string;
  description: string;
  sha256: string;
  /** The architecture (harness/arch/); absent: x86_64. */
  arch?: string;
  /** Absolute: it stays in the provider's build folder. */
  vmlinux?: string;
  git?: Kernel['git'];
}

export function kernelsDir(): string {
  return path.join(cacheRoot(), 'kernels');
}

export function pointerFile(name: string): string {
  return path.join(kernelsDir(), `${name}.current`);
}

/** The pointer `name`, if it is there and `valid` accepts it. */
export async function readPointer<P extends { key: string }>(name: string, valid: (p: P) => boolean): Promise<P | undefined> {
  try {
    const p = JSON.parse(await fs.readFile(pointerFile(name), 'utf8')) as P;
    return p && typeof p.key === 'string' && valid(p) ? p : undefined;
  } catch {
    return undefined;
  }
}

/** Writes a pointer atomically (a temporary name, then a rename). */
export async function writePointer(name: string, p: { key: string }): Promise<void> {
  const file = pointerFile(name);
  await fs.mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  await fs.writeFile(tmp, JSON.stringify(p));
  await fs.rename(tmp, file);
}

/** Loads the Kernel of a whole cache entry from its kernel.json. */
export async function loadKernelEntry(dir: string): Promise<Kernel> {
  const rec = JSON.parse(await fs.readFile(path.join(dir, 'kernel.json'), 'utf8')) as KernelEntryRecord;
  const abs = (p: string | undefined): string | undefined => (p === undefined ? undefined : path.join(dir, p));
  const configPath = abs(rec.configPath);
  return {
    id: rec.id,
    release: rec.release,
    vmlinuz: path.join(dir, rec.vmlinuz),
    ...(rec.modulesDir !== undefined ? { modulesDir: abs(rec.modulesDir) } : {}),
    configPath,
    config: configPath ? parseKernelConfig(await fs.readFile(configPath, 'utf8')) : undefined,
    description: rec.description,
    sha256: rec.sha256,
    ...(rec.arch && rec.arch !== DEFAULT_ARCH ? { arch: rec.arch } : {}),
    // vmlinux: a recipe's entry keeps its own (a name in the entry); a git: build's is in its build folder (absolute).
    ...(rec.vmlinux && existsSync(path.resolve(dir, rec.vmlinux)) ? { vmlinux: path.resolve(dir, rec.vmlinux) } : {}),
    ...(rec.git ? { git: rec.git } : {}),
  };
}
