/**
 * A kernel's .config and the check that it has what a scenario needs (FEATURES), before
 * anything boots.
 */
import { DefinitionError, SetupError } from '../harness/errors.ts';
import { FEATURES, isFeature, type Feature, type FeatureSpec } from './features.ts';
import { archOf } from '../harness/arch/index.ts';
import { loadModuleIndexSync } from './modules.ts';
import type { Kernel } from './index.ts';

export { FEATURES, type Feature, type FeatureSpec } from './features.ts';

/** 'CONFIG_EXT4_FS' -> 'y' | 'm' | '"string"' | number text. Options that are not set are absent. */
export type KernelConfig = Map<string, string>;

/** Parses .config text; `# CONFIG_X is not set` and comments leave the option absent. */
export function parseKernelConfig(text: string): KernelConfig {
  const config: KernelConfig = new Map();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^(CONFIG_[A-Za-z0-9_]+)=(.*)$/.exec(line);
    if (!m) continue;
    if (m[2] === 'n') continue;
    config.set(m[1], m[2]);
  }
  return config;
}

function kernelName(kernel: Kernel): string {
  return `${kernel.id} (${kernel.release})`;
}

/**
 * Checks the kernel has every feature (built in or as module). Throws SetupError naming the
 * missing CONFIG option(s), the feature and `who` (the scenario name). Returns the module
 * names to load, in no particular order, for features that are modular. A kernel without a
 * config: modules are found by probing its modules folder, and `warnings` says what could
 * not be checked.
 */
export function checkFeatures(kernel: Kernel, features: Feature[], who: string): { modules: string[]; warnings: string[] } {
  for (const f of features) {
    if (!isFeature(f)) {
      throw new DefinitionError(
        `${who} asks for kernel feature "${f}", which rootprobe does not know. ` + `Known features: ${Object.keys(FEATURES).join(', ')}.`,
      );
    }
  }
  const wanted: Array<Feature | 'port' | 'userland'> = [...new Set(features)];
  // The console's UART is the architecture's; where the result port is not the second UART, its
  // driver is needed by every boot (the `port` pseudo-feature), and so is what the
  // architecture's userland needs of the kernel (`userland`: riscv64's C and FPU extensions).
  const arch = archOf(kernel);
  const specOf = (f: Feature | 'port' | 'userland'): FeatureSpec =>
    f === 'port'
      ? arch.features.port!
      : f === 'userland'
        ? { ...arch.features.userland!, modules: [], builtIn: true }
        : f === 'serial'
          ? { ...FEATURES.serial, ...arch.features.serial }
          : FEATURES[f];
  if (arch.features.port) wanted.push('port');
  if (arch.features.userland) wanted.push('userland');
  const modules = new Set<string>();
  const warnings: string[] = [];

  if (kernel.config) {
    const config = kernel.config;
    const problems: string[] = [];
    for (const f of wanted) {
      const spec = specOf(f);
      for (const opt of spec.options) {
        const v = config.get(opt);
        if (v === undefined) {
          problems.push(`${opt} is not set (feature ${f}: ${spec.description})`);
        } else if (v === 'm' && spec.builtIn) {
          problems.push(`${opt}=m but must be built in (=y) (feature ${f}: ${spec.description}; a module would load too late)`);
        } else if (v === 'm') {
          const mods = spec.moduleOf?.[opt] ? [spec.moduleOf[opt]] : spec.modules;
          for (const m of mods) modules.add(m);
        }
      }
    }
    if (problems.length) {
      throw new SetupError(
        `kernel ${kernelName(kernel)} lacks what ${who} needs:\n  ${problems.join('\n  ')}\n` +
          `Use a kernel with ${problems.length === 1 ? 'this option' : 'these options'} set` +
          (kernel.configPath ? ` (its config: ${kernel.configPath}).` : '.'),
      );
    }
    return { modules: [...modules].sort(), warnings };
  }

  const needsNoModule = wanted.filter((f) => specOf(f).modules.length === 0);
  if (!kernel.modulesDir) {
    warnings.push(
      `kernel ${kernelName(kernel)} has neither a .config nor a modules folder: cannot check ` +
        `${wanted.join(', ')} for ${who}; assuming they are built in. ` +
        `Give config=<file> and modules=<dir> to check them.`,
    );
    return { modules: [], warnings };
  }
  if (needsNoModule.length) {
    warnings.push(
      `kernel ${kernelName(kernel)} has no .config: cannot check ${needsNoModule.join(', ')} for ${who}; ` +
        `assuming they are built in. Give config=<file> to check them.`,
    );
  }
  const index = loadModuleIndexSync(kernel.modulesDir);
  const builtin = new Set(index.builtin);
  for (const f of wanted) {
    for (const m of specOf(f).modules) {
      if (index.modules[m]) modules.add(m);
      else if (!builtin.has(m)) {
        warnings.push(
          `kernel ${kernelName(kernel)} has no .config and module ${m} (feature ${f}) is neither in ` +
            `${kernel.modulesDir} nor in its modules.builtin; assuming it is built in.`,
        );
      }
    }
  }
  return { modules: [...modules].sort(), warnings };
}
