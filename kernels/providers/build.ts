/** `build/<recipe>`: a kernel built from Debian's linux-source by a recipe (kernels/build.ts). */
import { cachedBuildKernel, listRecipes, loadRecipe, resolveBuildKernel } from '../build.ts';
import type { KernelProvider } from '../provider.ts';
import { extrasSuffix, parseExtras, specForArch, splitSpec, type BuildExtras } from '../spec-options.ts';

export interface BuildSpec {
  kind: 'build';
  id: string;
  recipe: string;
  extras: BuildExtras;
  [field: string]: unknown;
}

export const buildProvider: KernelProvider<BuildSpec> = {
  kind: 'build',
  forms: ['build/<recipe>[,arch=<arch>][,config-add=CONFIG_X=y]...[,fragment=FILE]...'],
  summary: `built from source by a recipe in kernels/recipes/ (${listRecipes().join(', ') || 'none'})`,
  claims: (s) => s.startsWith('build/'),
  parse(s) {
    const { base, options } = splitSpec(s, ['config-add', 'fragment', 'arch']);
    const recipe = base.slice('build/'.length);
    loadRecipe(recipe); // UsageError listing the known recipes
    const extras = parseExtras(s, options, false);
    return { kind: 'build', id: `build/${recipe}${extrasSuffix(extras)}`, recipe, extras };
  },
  resolve: (k, onProgress) => resolveBuildKernel(k.recipe, onProgress, k.extras),
  cached: (k) => cachedBuildKernel(k.recipe, k.extras),
  forArch: (k, arch) => specForArch(k, arch),
  known: () => listRecipes().map((r) => `build/${r}`),
};
