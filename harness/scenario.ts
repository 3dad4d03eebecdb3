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
 *
 * scenario() checks the definition whole against a zod schema (scenarioSchema), from which the
 * types ScenarioDefinition and DiskSpec are inferred: a misspelt key (`modlues`), a value of the
 * wrong type or out of range is a DefinitionError naming the file, the line and the nearest
 * known key, thrown when the scenario file is imported, before anything is built or booted.
 */
import * as path from 'node:path';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { DefinitionError } from './errors.ts';
import type { ImageTree } from './image/tree.ts';
import type { ArchSpec } from './arch/index.ts';
import type { Kernel } from '../kernels/index.ts';
import { FEATURES, type Feature } from '../kernels/features.ts';
import type { RunReadback } from './readback/result.ts';
import type { Stage } from './readback/snapshot.ts';

export const STAGE_NAME = /^[A-Za-z0-9_.-]{1,64}$/;
/** Stage names the harness itself gives meaning to. */
export const RESERVED_STAGES = ['done', 'guest-error'];

export interface BuildContext {
  kernel: Kernel;
  /**
   * The guest's architecture (harness/arch/). Images are built for it without a scenario
   * saying anything: busybox, ctx.program() and hostBinary() give that architecture's programs.
   */
  arch: ArchSpec;
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

/** Fills an image tree: the initramfs's or a disk's content. */
export type TreeBuilder = (t: ImageTree, ctx: BuildContext) => void | Promise<void>;
export type CheckFn = (ctx: CheckContext) => void | Promise<void>;
export type SkipIfFn = (kernel: Kernel) => string | undefined;

/*
 * The schema of a definition (zod 4). The TypeScript types ScenarioDefinition and DiskSpec are
 * inferred from it, so what the type checker accepts and what scenario() accepts at run time
 * cannot drift apart. Objects are strict: an unknown key is an error, not silently ignored.
 */

const fn = <F>(what: string) =>
  z.custom<F>((v) => typeof v === 'function', { error: (iss) => `must be a function ${what} (got ${kindOf(iss.input)})` });

const wholeNumber = (what: string, min: number, max: number) =>
  z
    .number({ error: (iss) => `must be a number (${what}), got ${kindOf(iss.input)}` })
    .int({ error: `must be a whole number (${what})` })
    .min(min, { error: (iss) => `must be at least ${min} (${what}), got ${iss.input}` })
    .max(max, { error: (iss) => `must be at most ${max} (${what}), got ${iss.input}` });

const text = (what: string) => z.string({ error: (iss) => `must be a string (${what}), got ${kindOf(iss.input)}` });

export const FEATURE_NAMES = Object.keys(FEATURES) as [Feature, ...Feature[]];

const featureSchema = z.enum(FEATURE_NAMES, {
  error: (iss) =>
    `unknown kernel feature ${JSON.stringify(iss.input)}; known: ${FEATURE_NAMES.join(', ')}. ` +
    `Features are what the kernel must have; to load a kernel module, name it in \`modules\` ` +
    `(e.g. modules: [${JSON.stringify(String(iss.input))}]), and it is put into the initramfs with its dependencies`,
});

const diskFields = {
  /** A short name; the disks appear in the guest as /dev/vda, /dev/vdb, ... in this order. */
  name: text("the disk's name").regex(/^[a-z0-9_-]+$/, {
    error: (iss) => `must be lowercase letters, digits, _ - (got ${JSON.stringify(iss.input)})`,
  }),
  /** The disk's size in MiB (ext4: at least 2). */
  sizeMiB: wholeNumber('MiB', 1, 16384),
  /** Filled from a tree with mke2fs -d (ext4), or left empty (raw). */
  fs: z.enum(['ext4', 'raw'], { error: (iss) => `must be 'ext4' or 'raw' (got ${JSON.stringify(iss.input)})` }),
  /** The ext4 volume label (at most 16 bytes), as `mount LABEL=...` and blkid see it. */
  label: text('an ext4 volume label')
    .refine((s) => Buffer.byteLength(s) <= 16, { error: 'must be at most 16 bytes (an ext4 volume label)' })
    .optional(),
  /** The disk's content; the probe toolkit (/.rootprobe) is added to every ext4 disk, nothing else. */
  content: fn<TreeBuilder>('(t, ctx) => ... that fills the disk').optional(),
};

function checkDisk(d: { name: string; fs: string; sizeMiB: number; content?: unknown }, ctx: z.RefinementCtx): void {
  if (d.fs === 'raw' && d.content)
    ctx.addIssue({ code: 'custom', path: ['content'], message: "a raw disk has no content (use fs: 'ext4')" });
  if (d.fs === 'ext4' && d.sizeMiB < 2) ctx.addIssue({ code: 'custom', path: ['sizeMiB'], message: 'an ext4 disk needs at least 2 MiB' });
}

const innerDiskSchema = z.strictObject(diskFields).superRefine(checkDisk);

export const diskSchema = z
  .strictObject({
    ...diskFields,
    /** Built before this disk, so that its image file can be placed inside it (a loop-root file), by path in this disk. */
    images: z.record(text('a path in the disk'), innerDiskSchema).optional(),
  })
  .superRefine(checkDisk);

/** A stage name: letters, digits, _ . -; not a reserved one. */
function stageName() {
  return text('a stage name')
    .regex(STAGE_NAME, {
      error: (iss) => `${JSON.stringify(iss.input)} is not a valid stage name (letters, digits, _ . -, at most 64)`,
    })
    .refine((s) => !RESERVED_STAGES.includes(s), {
      error: (iss) => `stage ${JSON.stringify(iss.input)} is reserved: 'done' is implied as the last stage`,
    });
}

export const scenarioSchema = z
  .strictObject({
    /** The scenario's name: lowercase letters, digits, _ . - */
    name: text("the scenario's name").regex(/^[a-z0-9][a-z0-9_.-]*$/, {
      error: (iss) => `must be lowercase letters, digits, _ . - (got ${JSON.stringify(iss.input)})`,
    }),
    /** One or two sentences: what the guest does and what must hold. */
    description: text('one or two sentences').min(1, { error: 'must not be empty' }),
    /** The seed documents (shared/seeds) whose claims this scenario checks, by number: '000'. */
    seeds: z
      .array(
        text('a seed number').regex(/^\d{3}$/, { error: (iss) => `must be a seed number like '003' (got ${JSON.stringify(iss.input)})` }),
      )
      .optional(),
    /** Kernel features the guest needs; modular ones are loaded from the initramfs. */
    features: z.array(featureSchema, { error: (iss) => `must be a list of kernel features (got ${kindOf(iss.input)})` }),
    /** Modules to load beyond those the features imply (by name, as modprobe knows them: 'overlay'). */
    modules: z
      .array(
        text('a module name').regex(/^[A-Za-z0-9_-]+$/, {
          error: (iss) => `must be a module name like 'overlay' (got ${JSON.stringify(iss.input)})`,
        }),
      )
      .optional(),
    /** Adds the scenario's files to the initramfs (on top of the busybox base and the probe); false: no initramfs. */
    initramfs: z.union([fn<TreeBuilder>('(t, ctx) => ... that fills the initramfs'), z.literal(false)], {
      error: (iss) => `must be a function (t, ctx) => ... that fills the initramfs, or false (got ${kindOf(iss.input)})`,
    }),
    /** The disks, /dev/vda first. */
    disks: z.array(diskSchema).max(20, { error: 'at most 20 disks (vda..vdt)' }).optional(),
    /** Extra kernel command line. */
    cmdline: text('kernel command line words').optional(),
    /** The stages the guest probes, in order (`done`, the last, is implied). */
    stages: z.array(stageName()).min(1, { error: 'must list at least one stage' }),
    /**
     * Stages only some kernels reach (initrd_linuxrc's `linuxrc`: Linux 7 no longer runs an
     * initrd's /linuxrc): the guest may probe them, the run does not wait for them, and the
     * check asks `result.has(name)`.
     */
    optionalStages: z.array(stageName()).optional(),
    /** Under KVM; scaled for TCG and by ROOTPROBE_TIMEOUT_FACTOR. Default 30. */
    timeoutSec: z
      .number({ error: (iss) => `must be a number of seconds (got ${kindOf(iss.input)})` })
      .positive({ error: 'must be positive' })
      .max(3600, { error: 'must be at most 3600' })
      .optional(),
    /** The guest's memory (default DEFAULTS.memoryMiB: 256). */
    memoryMiB: wholeNumber('MiB of guest memory', 64, 8192).optional(),
    /** A reason to skip this scenario on this kernel (reported as skipped), or undefined to run it. */
    skipIf: fn<SkipIfFn>('(kernel) => a reason to skip, or undefined').optional(),
    /**
     * An old-style initrd (only with `initramfs: false`): an ext2 image filled from a tree with
     * mke2fs -d (not a cpio archive), given to QEMU as -initrd; the kernel loads it into
     * /dev/ram0 and runs its /linuxrc. The probe toolkit is added to it.
     */
    initrd: z
      .strictObject({
        sizeMiB: wholeNumber('MiB', 1, 1024),
        content: fn<TreeBuilder>('(t, ctx) => ... that fills the initrd image'),
      })
      .optional(),
    /**
     * Kernel reports (WARNING, BUG, KASAN, ...: verdict/kernel-log.ts) this scenario expects, by
     * their title or console line; any other fails the run even when every assertion held.
     */
    allowKernelLog: z.array(z.instanceof(RegExp, { error: 'must be a regular expression like /lkdtm/' })).optional(),
    /** What must hold. Throw (chai) to fail. */
    check: fn<CheckFn>('({ stage, expect, ... }) => ... that asserts'),
  })
  .superRefine((def, ctx) => {
    if (def.initrd && def.initramfs !== false) {
      ctx.addIssue({
        code: 'custom',
        path: ['initrd'],
        message: 'an old-style initrd needs initramfs: false: the kernel gets one or the other',
      });
    }
    const seen = new Set<string>();
    def.stages.forEach((s, i) => {
      if (seen.has(s)) ctx.addIssue({ code: 'custom', path: ['stages', i], message: `stage '${s}' is listed twice` });
      seen.add(s);
    });
    (def.optionalStages ?? []).forEach((s, i) => {
      if (seen.has(s))
        ctx.addIssue({
          code: 'custom',
          path: ['optionalStages', i],
          message: `stage '${s}' is listed twice (in stages or optionalStages)`,
        });
      seen.add(s);
    });
    const names = new Set<string>();
    (def.disks ?? []).forEach((d, i) => {
      if (names.has(d.name)) ctx.addIssue({ code: 'custom', path: ['disks', i, 'name'], message: `disk '${d.name}' is defined twice` });
      names.add(d.name);
    });
  });

export type ScenarioDefinition = z.infer<typeof scenarioSchema>;
export type DiskSpec = z.infer<typeof diskSchema>;

export interface Scenario extends ScenarioDefinition {
  /** The file that defined it (for error messages and --scenarios). */
  file: string;
  dir: string;
}

/** A value as a message names it: `the string "yes"`, `a list`, `nothing`. */
export function kindOf(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v)}`;
  if (typeof v === 'number' || typeof v === 'boolean') return `${typeof v} ${v}`;
  return `a ${typeof v}`;
}

import { nearestKey } from './nearest.ts';

export { editDistance, nearestKey } from './nearest.ts';

/** Where scenario() was called from: the file and the line of the call (for messages; the folder is import.meta's). */
function callerSite(): { file: string; line?: number } {
  const stack = new Error().stack?.split('\n') ?? [];
  for (const line of stack.slice(1)) {
    const m = /\((.*?):(\d+):\d+\)$/.exec(line) ?? /at (.*?):(\d+):\d+$/.exec(line);
    if (!m) continue;
    const f = m[1].startsWith('file://') ? fileURLToPath(m[1]) : m[1];
    if (!/[\\/]scenario\.[jt]s$/.test(f) || !f.includes(`${path.sep}harness${path.sep}`)) return { file: f, line: Number(m[2]) }; // .js: dist/
  }
  return { file: process.cwd() };
}

type PathPart = PropertyKey;

/** Keys people guess that are far from the right one in spelling. */
const KEY_ALIASES: Record<string, string> = {
  files: 'content',
  contents: 'content',
  tree: 'content',
  size: 'sizeMiB',
  sizeMB: 'sizeMiB',
  type: 'fs',
  filesystem: 'fs',
  fstype: 'fs',
  init: 'initramfs',
  initrd: 'initramfs',
  module: 'modules',
  kmods: 'modules',
  timeout: 'timeoutSec',
  memory: 'memoryMiB',
  mem: 'memoryMiB',
  append: 'cmdline',
  kernelCmdline: 'cmdline',
  assert: 'check',
  verify: 'check',
  skip: 'skipIf',
};

/** The known keys of the object at `at` in the schema (for "did you mean"). */
function knownKeysAt(at: PathPart[]): string[] {
  const strs = at.filter((p) => typeof p === 'string');
  if (strs.length === 0) return Object.keys(scenarioSchema.shape);
  if (strs[0] === 'disks') return Object.keys(strs.includes('images') ? diskFields : diskSchema.shape);
  return [];
}

/**
 * The line of a key in the scenario's source: the first `key:` (or `key(` for a method) after
 * the scenario() call and after the lines of the keys above it. Cheap and usually right; when
 * the key cannot be found, the line of the call.
 */
function lineOfKey(source: string | undefined, from: number | undefined, keys: string[]): number | undefined {
  if (!source || from === undefined) return from;
  const lines = source.split('\n');
  let at = from - 1;
  for (const key of keys) {
    const re = new RegExp(`(^|[\\s{,])['"]?${key.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}['"]?\\s*[:(]`);
    const i = lines.findIndex((l, n) => n >= at && re.test(l));
    if (i < 0) break;
    at = i;
  }
  return at + 1;
}

function pathText(p: PathPart[]): string {
  return p.map((x, i) => (typeof x === 'number' ? `[${x}]` : i === 0 ? String(x) : `.${String(x)}`)).join('');
}

/** Each problem of a definition, as `file:line: \`key\`: what is wrong` lines, or none. */
export function definitionIssues(def: unknown, file: string, callLine?: number): string[] {
  if (!def || typeof def !== 'object' || Array.isArray(def))
    return [`${file}${callLine ? `:${callLine}` : ''}: scenario() needs a definition object`];
  const r = scenarioSchema.safeParse(def, { reportInput: true });
  if (r.success) return [];
  let source: string | undefined;
  try {
    source = readFileSync(file, 'utf8');
  } catch {
    source = undefined;
  }
  const out: Array<{ line?: number; text: string }> = [];
  for (const iss of r.error.issues) {
    const at = iss.path as PathPart[];
    const strKeys = at.filter((p): p is string => typeof p === 'string');
    if (iss.code === 'unrecognized_keys') {
      for (const key of iss.keys) {
        const line = lineOfKey(source, callLine, [...strKeys, key]);
        const known = knownKeysAt(at);
        const near = nearestKey(key, known) ?? (known.includes(KEY_ALIASES[key]) ? KEY_ALIASES[key] : undefined);
        out.push({
          line,
          text:
            `${file}${line ? `:${line}` : ''}: \`${pathText([...at, key])}\`: ` +
            (near ? `did you mean \`${pathText([...at, near])}\`?` : `unknown key (known: ${known.join(', ')})`),
        });
      }
      continue;
    }
    const line = lineOfKey(source, callLine, strKeys);
    const missing = 'input' in iss && iss.input === undefined;
    const msg = missing ? `is missing (it ${iss.message.replace(/, got nothing$|\(got nothing\)$/, '').trim()})` : iss.message;
    out.push({ line, text: `${file}${line ? `:${line}` : ''}: \`${pathText(at)}\`: ${msg}` });
  }
  return out.sort((a, b) => (a.line ?? 0) - (b.line ?? 0)).map((o) => o.text);
}

/**
 * Defines a scenario; checks its shape whole now, so a mistake is reported before anything boots.
 * The second argument is the file's `import.meta`: the scenario's folder (for `ctx.here()`, its
 * guest scripts) is the file's own. Without it, a DefinitionError says what to pass.
 *
 *   export default scenario({ name: 'x', ... }, import.meta);
 */
export function scenario(definition: ScenarioDefinition, where: { url: string }): Scenario {
  // The call's place on the stack gives the line of the call, for messages (and the file, to
  // say where import.meta is missing); the folder comes from import.meta alone.
  const site = callerSite();
  if (!where || typeof where.url !== 'string' || !where.url) {
    const name = typeof (definition as { name?: unknown })?.name === 'string' ? (definition as { name: string }).name : '?';
    throw new DefinitionError(
      `scenario '${name}' (${site.file}${site.line ? `:${site.line}` : ''}): scenario() needs the file's import.meta as its second ` +
        "argument, scenario({ ... }, import.meta): the folder its guest scripts are read from (ctx.here) is that file's",
    );
  }
  const file = where.url.startsWith('file:') ? fileURLToPath(where.url) : where.url;
  const line = site.file === file ? site.line : undefined;
  // A twin made from another scenario (`{ ...other, name: ... }`) carries its `file` and `dir`:
  // those are scenario()'s own output, set anew here, not keys of a definition.
  const def =
    definition && typeof definition === 'object' ? (({ file: _f, dir: _d, ...rest }) => rest)(definition as Partial<Scenario>) : definition;
  const issues = definitionIssues(def, file, line);
  if (issues.length) {
    const name = typeof (def as { name?: unknown })?.name === 'string' ? (def as { name: string }).name : '?';
    const head = `scenario '${name}'`;
    throw new DefinitionError(
      issues.length === 1 ? `${head}: ${issues[0]}` : `${head}: ${issues.length} problems:\n  ${issues.join('\n  ')}`,
    );
  }
  return { ...(def as ScenarioDefinition), file, dir: path.dirname(file) };
}

/** Every stage a run of this scenario may report: the required ones, `done`, the optional ones. */
export function declaredStages(s: ScenarioDefinition): string[] {
  return [...expectedStages(s), ...(s.optionalStages ?? [])];
}

/** The stages a run of this scenario must report, `done` last. */
export function expectedStages(s: ScenarioDefinition): string[] {
  return [...s.stages, 'done'];
}
