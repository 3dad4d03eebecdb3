/** `build/<recipe>`: a kernel built from Debian's linux-source by a recipe (kernels/build.ts). */
import { cachedBuildKernel, listRecipes, loadRecipe, resolveBuildKernel } from '../build.ts';
import type { KernelProvider } from '../provider.ts';

export interface BuildSpec {
  kind: 'build';
  id: string;
  recipe: string;
  [field: string]: unknown;
}

export const buildProvider: KernelProvider<BuildSpec> = {
  kind: 'build',
  forms: ['build/<recipe>'],
  summary: `built from source by a recipe in kernels/recipes/ (${listRecipes().join(', ') || 'none'})`,
  claims: (s) => s.startsWith('build/'),
  parse(s) {
    const recipe = s.slice('build/'.length);
    loadRecipe(recipe); // UsageError listing the known recipes
    return { kind: 'build', id: `build/${recipe}`, recipe };
  },
  resolve: (k, onProgress) => resolveBuildKernel(k.recipe, onProgress),
  cached: (k) => cachedBuildKernel(k.recipe),
  known: () => listRecipes().map((r) => `build/${r}`),
};
