/**
 * What a scenario is: the guest's story (initramfs content, disks, kernel command line, the
 * stages its scripts probe) and what must hold afterwards. A scenario file reads like the
 * story it tests; its guest scripts live beside it.
 *
 *   export default scenario({
 *     name: 'switch_root',
 *     description: '...',
 *     features: ['initrd', 'devtmpfs', 'virtio-blk', 'ext4'],
 *     initramfs: (t, ctx) => t.script('/init', ctx.here('init.sh')),
 *     disks: [{ name: 'root', sizeMiB: 32, content: (t, ctx) => ... }],
 *     stages: ['initramfs', 'realroot'],
 *     check({ stage, expect }) { expect(stage('realroot')).to.have.mount('/').of.type('ext4'); },
 *   });
 */
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DefinitionError } from './errors.ts';
import type { ImageTree } from './image/tree.ts';
import type { Kernel } from '../kernels/index.ts';
import type { Feature } from '../kernels/config.ts';
import type { RunReadback } from './readback/result.ts';
import type { Stage } from './readback/snapshot.ts';

export const STAGE_NAME = /^[A-Za-z0-9_.-]{1,64}$/;
/** Stage names the harness itself gives meaning to. */
export const RESERVED_STAGES = ['done', 'guest-error'];

export interface BuildContext {
  kernel: Kernel;
  /** An absolute path beside the scenario file (for its guest scripts). */
  here(rel: string): string;
  /** The absolute path of a host tool (busybox, switch_root, ...), or a SetupError naming its package. */
  tool(command: string): string;
  /**
   * A static binary built from a C file beside the scenario (gcc -static -Os -Wall -Werror,
   * linked with `libs`), cached by its source and the compiler: a guest helper of a few KB of
   * code instead of an interpreter and its libraries in the image. Resolves to its host path.
   */
  program(rel: string, libs?: string[]): Promise<string>;
}

export interface DiskSpec {
  /** A short name; the disks appear in the guest as /dev/vda, /dev/vdb, ... in this order. */
  name: string;
  sizeMiB: number;
  /** Filled from a tree with mke2fs -d (ext4), or left empty (raw). */
  fs: 'ext4' | 'raw';
  label?: string;
  /** The disk's content; the probe toolkit (/.rootprobe) is added to every ext4 disk. */
  content?: (t: ImageTree, ctx: BuildContext) => void | Promise<void>;
  /** Built before this disk, so that its image file can be placed inside it (a loop-root file). */
  images?: Record<string, Omit<DiskSpec, 'images'>>;
}

export interface HostImage {
  /** The image file after the run (the run's own copy; the cached original is never written). */
  path: string;
}

export interface CheckContext {
  /** The stages the guest reported, in order. */
  result: RunReadback;
  /** result.stage(name): the stage, or an error listing those that did report. */
  stage(name: string): Stage;
  /** chai's expect with rootprobe's assertions. */
  expect: Chai.ExpectStatic;
  kernel: Kernel;
  /** The disk images of this run, by DiskSpec name, for host-side checks after the guest is gone. */
  disks: Record<string, HostImage>;
  /** A fact this run observed, printed with the verdict and kept in the report. */
  evidence(line: string): void;
  /** Which of several legitimate kernel behaviours this run saw (e.g. "pivot_root from rootfs: EINVAL"). */
  behaviour(name: string): void;
}

export interface ScenarioDefinition {
  name: string;
  /** One or two sentences: what the guest does and what must hold. */
  description: string;
  /** The seed documents (shared/seeds) whose claims this scenario checks, by number: '000'. */
  seeds?: string[];
  /** Kernel features the guest needs; modular ones are loaded from the initramfs. */
  features: Feature[];
  /** Modules to load beyond those the features imply. */
  modules?: string[];
  /** Adds the scenario's files to the initramfs (on top of the busybox base and the probe). */
  initramfs(t: ImageTree, ctx: BuildContext): void | Promise<void>;
  disks?: DiskSpec[];
  /** Extra kernel command line. */
  cmdline?: string;
  /** The stages the guest probes, in order (`done`, the last, is implied). */
  stages: string[];
  /** Under KVM; scaled for TCG and by ROOTPROBE_TIMEOUT_FACTOR. Default 30. */
  timeoutSec?: number;
  memoryMiB?: number;
  /** What must hold. Throw (chai) to fail. */
  check(ctx: CheckContext): void | Promise<void>;
}

export interface Scenario extends ScenarioDefinition {
  /** The file that defined it (for error messages and --scenarios). */
  file: string;
  dir: string;
}

/** Where the caller of scenario() lives: the file that defines the scenario. */
function callerFile(): string {
  const stack = new Error().stack?.split('\n') ?? [];
  for (const line of stack.slice(1)) {
    const m = /\((.*?):\d+:\d+\)$/.exec(line) ?? /at (.*?):\d+:\d+$/.exec(line);
    if (!m) continue;
    const f = m[1].startsWith('file://') ? fileURLToPath(m[1]) : m[1];
    if (!/[\\/]scenario\.[jt]s$/.test(f) || !f.includes(`${path.sep}harness${path.sep}`)) return f; // .js: dist/
  }
  return process.cwd();
}

/** Defines a scenario; checks its shape now, so a mistake is reported before anything boots. */
export function scenario(def: ScenarioDefinition): Scenario {
  const file = callerFile();
  const where = `scenario '${def?.name ?? '?'}' (${file})`;
  const fail = (msg: string): never => {
    throw new DefinitionError(`${where}: ${msg}`);
  };
  if (!def || typeof def !== 'object') fail('scenario() needs a definition object');
  if (!/^[a-z0-9][a-z0-9_.-]*$/.test(def.name ?? '')) fail(`name must be lowercase letters, digits, _ . - (got '${def.name}')`);
  if (!def.description) fail('description is missing');
  if (!Array.isArray(def.features)) fail('features must be a list of kernel features');
  if (typeof def.initramfs !== 'function') fail('initramfs must be a function (t, ctx) => ...');
  if (typeof def.check !== 'function') fail('check must be a function');
  if (!Array.isArray(def.stages) || def.stages.length === 0) fail('stages must list at least one stage');
  const seen = new Set<string>();
  for (const s of def.stages) {
    if (!STAGE_NAME.test(s)) fail(`stage '${s}' is not a valid name (letters, digits, _ . -, at most 64)`);
    if (RESERVED_STAGES.includes(s)) fail(`stage '${s}' is reserved: 'done' is implied as the last stage`);
    if (seen.has(s)) fail(`stage '${s}' is listed twice`);
    seen.add(s);
  }
  const disks = def.disks ?? [];
  const diskNames = new Set<string>();
  for (const d of disks) {
    if (!/^[a-z0-9_-]+$/.test(d.name ?? '')) fail(`disk name '${d.name}' must be lowercase letters, digits, _ -`);
    if (diskNames.has(d.name)) fail(`disk '${d.name}' is defined twice`);
    diskNames.add(d.name);
    if (!(d.sizeMiB > 0 && d.sizeMiB <= 16384)) fail(`disk '${d.name}': sizeMiB must be between 1 and 16384`);
    if (d.fs !== 'ext4' && d.fs !== 'raw') fail(`disk '${d.name}': fs must be 'ext4' or 'raw'`);
    if (d.fs === 'raw' && d.content) fail(`disk '${d.name}': a raw disk has no content`);
  }
  if (disks.length > 20) fail('at most 20 disks (vda..vdt)');
  if (def.timeoutSec !== undefined && !(def.timeoutSec > 0)) fail('timeoutSec must be positive');
  if (def.memoryMiB !== undefined && !(def.memoryMiB >= 64 && def.memoryMiB <= 8192)) fail('memoryMiB must be 64..8192');
  return { ...def, file, dir: path.dirname(file) };
}

/** The stages a run of this scenario must report, `done` last. */
export function expectedStages(s: ScenarioDefinition): string[] {
  return [...s.stages, 'done'];
}
