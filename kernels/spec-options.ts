/**
 * The options a kernel built from source takes in its spec, after the base:
 *   ,config-add=CONFIG_X=y      one option on top of the configuration (repeatable)
 *   ,fragment=FILE              a config fragment file on top (repeatable)
 *   ,config=FILE                the tree's own .config as the base (git: kernels only)
 *   ,base=defconfig             the architecture's defconfig as the base instead of tinyconfig (git: only)
 *   ,arch=arm64                 built for that architecture (cross-compiled on another host)
 * The CLI's `--config-add CONFIG_X=y` and `--fragment FILE` add them to every such spec.
 */
import { readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { UsageError } from '../harness/errors.ts';
import { ARCHES, DEFAULT_ARCH } from '../harness/arch/index.ts';

export interface BuildExtras {
  /** `CONFIG_X=value` lines, in order. */
  configAdd: string[];
  /** Absolute paths of fragment files, in order. */
  fragments: string[];
  /** Absolute path of a .config to start from (git: only). */
  config?: string;
  /** The architecture built for, when not the default (harness/arch/). */
  arch?: string;
  /** The make target the configuration starts from when there is no config= (git: only; default tinyconfig). */
  base?: 'defconfig';
}

/** The bases a git: kernel's configuration may start from (`,base=`), the first the default. */
export const CONFIG_BASES = ['tinyconfig', 'defconfig'] as const;

const OPTION = /^CONFIG_[A-Za-z0-9_]+=(y|m|n|[0-9]+|0x[0-9a-fA-F]+|"[^"]*")$/;

/** Splits `base,key=value,...` at the commas that start a known key. */
export function splitSpec(spec: string, keys: string[]): { base: string; options: Array<[string, string]> } {
  const re = new RegExp(`,(?=(?:${keys.join('|')})=)`);
  const [base, ...rest] = spec.split(re);
  return { base, options: rest.map((p) => [p.slice(0, p.indexOf('=')), p.slice(p.indexOf('=') + 1)] as [string, string]) };
}

export function parseExtras(spec: string, options: Array<[string, string]>, allowConfig: boolean): BuildExtras {
  const out: BuildExtras = { configAdd: [], fragments: [] };
  for (const [k, v] of options) {
    if (!v) throw new UsageError(`kernel "${spec}": ${k}= needs a value.`);
    if (k === 'config-add') {
      if (!OPTION.test(v))
        throw new UsageError(`kernel "${spec}": config-add=${v} is not CONFIG_NAME=value (y, m, n, a number or "text").`);
      out.configAdd.push(v);
    } else if (k === 'fragment') {
      const abs = path.resolve(v);
      if (!statSync(abs, { throwIfNoEntry: false })?.isFile()) throw new UsageError(`kernel "${spec}": fragment ${v} is not a file.`);
      out.fragments.push(abs);
    } else if (k === 'arch') {
      if (out.arch) throw new UsageError(`kernel "${spec}": arch= given twice.`);
      if (!ARCHES[v]) throw new UsageError(`kernel "${spec}": unknown architecture arch=${v}; known: ${Object.keys(ARCHES).join(', ')}.`);
      if (v !== DEFAULT_ARCH) out.arch = v;
    } else if (k === 'base' && allowConfig) {
      if (!(CONFIG_BASES as readonly string[]).includes(v))
        throw new UsageError(`kernel "${spec}": base=${v} is not one of ${CONFIG_BASES.join(', ')}.`);
      if (v === 'defconfig') out.base = 'defconfig';
    } else if (k === 'config' && allowConfig) {
      if (out.config) throw new UsageError(`kernel "${spec}": config= given twice.`);
      const abs = path.resolve(v);
      if (!statSync(abs, { throwIfNoEntry: false })?.isFile()) throw new UsageError(`kernel "${spec}": config ${v} is not a file.`);
      out.config = abs;
    } else {
      throw new UsageError(`kernel "${spec}": unknown option ${k}=.`);
    }
  }
  if (out.base && out.config)
    throw new UsageError(`kernel "${spec}": config= and base= both name where the configuration starts; give one.`);
  return out;
}

/** The canonical spec suffix of the extras (part of the kernel's id and cache key). */
export function extrasSuffix(e: BuildExtras): string {
  return [
    ...(e.arch ? [`arch=${e.arch}`] : []),
    ...(e.base ? [`base=${e.base}`] : []),
    ...(e.config ? [`config=${e.config}`] : []),
    ...e.fragments.map((f) => `fragment=${f}`),
    ...e.configAdd.map((c) => `config-add=${c}`),
  ]
    .map((x) => `,${x}`)
    .join('');
}

/** The extras as config fragments (files read now), for kbuild() and the cache key. */
export function extraFragments(e: BuildExtras): Array<{ name: string; text: string }> {
  return [
    ...e.fragments.map((f) => ({ name: f, text: readFileSync(f, 'utf8') })),
    ...(e.configAdd.length ? [{ name: '--config-add', text: `${e.configAdd.join('\n')}\n` }] : []),
  ];
}

/** Adds the CLI's --config-add and --fragment to a spec of a provider that builds from source. */
export function withCliExtras(spec: string, configAdd: string[], fragments: string[]): string {
  if (!/^(build\/|git:)/.test(spec) || (configAdd.length === 0 && fragments.length === 0)) return spec;
  return spec + [...fragments.map((f) => `,fragment=${path.resolve(f)}`), ...configAdd.map((c) => `,config-add=${c}`)].join('');
}

/** A build/ or git: spec built for `arch` (`--arch`): `,arch=` added; UsageError when it names another. */
export function specForArch(k: { id: string; extras: BuildExtras }, arch: string): string {
  const has = k.extras.arch ?? DEFAULT_ARCH;
  if (has === arch) return k.id;
  if (k.extras.arch) throw new UsageError(`kernel "${k.id}" is built for ${has}, not for ${arch} (--arch ${arch}).`);
  return `${k.id},arch=${arch}`;
}
