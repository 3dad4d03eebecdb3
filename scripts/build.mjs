#!/usr/bin/env node
// Builds the package into dist/: tsc compiles harness/, kernels/, scenarios/ and images/ to
// JavaScript and .d.ts (tsconfig.build.json; rewriteRelativeImportExtensions turns the
// sources' `.ts` import specifiers into `.js`), then every file of those folders that is not
// TypeScript (the guest's probe.c and lib.sh, the scenarios' guest scripts and C helpers,
// kernels/recipes/, external/guest/) is copied beside the compiled modules. The compiled
// tree is thus laid out like the sources, so every module that finds a file relative to its
// own import.meta.url finds it the same way in both. Run by `npm run build` and `prepare`.
//
// zod, which checks scenario definitions, is bundled into one file (dist/vendor/zod.js, by
// esbuild) and the compiled modules import that file: zod 4 is ~95 modules, and loading them
// one by one was half of `rootprobe list`'s start-up (0.11 of 0.22 s). The .d.ts files still
// import zod's types from the zod package, a dependency.
import { execFileSync } from 'node:child_process';
import { cpSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(root, 'dist');
const SOURCES = ['harness', 'kernels', 'scenarios', 'images'];

rmSync(dist, { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
execFileSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json')], { stdio: 'inherit', cwd: root });

let copied = 0;
function copyAssets(rel) {
  for (const e of readdirSync(path.join(root, rel), { withFileTypes: true })) {
    const r = path.join(rel, e.name);
    if (e.isDirectory()) copyAssets(r);
    else if (e.isFile() && !/\.(ts|mts|cts)$/.test(e.name)) {
      cpSync(path.join(root, r), path.join(dist, r), { preserveTimestamps: true });
      copied++;
    }
  }
}
for (const d of SOURCES) copyAssets(d);

const vendored = path.join(dist, 'vendor', 'zod.js');
const { build } = await import('esbuild');
await build({
  stdin: { contents: "export * from 'zod';", resolveDir: root, loader: 'js' },
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  minify: true,
  legalComments: 'inline',
  outfile: vendored,
  logLevel: 'warning',
  // zod's messages in English only: every other locale is 260 KB of the bundle that each
  // start would parse, and rootprobe's own messages come from its error callbacks anyway.
  plugins: [
    {
      name: 'zod-english-only',
      setup(b) {
        b.onResolve({ filter: /\/locales\/index\.js$/ }, (a) => ({ path: path.resolve(a.resolveDir, a.path), namespace: 'zod-en' }));
        b.onLoad({ filter: /.*/, namespace: 'zod-en' }, (a) => ({
          contents: `export { default as en } from ${JSON.stringify(path.join(path.dirname(a.path), 'en.js'))};`,
          loader: 'js',
          resolveDir: path.dirname(a.path),
        }));
      },
    },
  ],
});
cpSync(
  path.join(path.dirname(createRequire(import.meta.url).resolve('zod/package.json')), 'LICENSE'),
  path.join(dist, 'vendor', 'zod.LICENSE'),
);
const ZOD_IMPORT = /(\bfrom\s*|\bimport\s*\(\s*)(['"])zod(\/[^'"]*)?\2/g;
let rewired = 0;
function rewire(dir) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) {
      if (p !== path.dirname(vendored)) rewire(p);
    } else if (e.name.endsWith('.js')) {
      const text = readFileSync(p, 'utf8');
      let rel = path.relative(path.dirname(p), vendored).split(path.sep).join('/');
      if (!rel.startsWith('.')) rel = `./${rel}`;
      const out = text.replace(ZOD_IMPORT, (_m, head, q, sub) => {
        if (sub) throw new Error(`${p} imports zod${sub}: only 'zod' itself is bundled (scripts/build.mjs)`);
        rewired++;
        return `${head}${q}${rel}${q}`;
      });
      if (out !== text) writeFileSync(p, out);
    }
  }
}
rewire(dist);
if (rewired === 0) throw new Error('no compiled module imports zod: scripts/build.mjs bundles it for nothing');
// The built-in scenarios' names and descriptions, for `rootprobe list` (scenarios/index.ts).
const { writeBuiltinIndex } = await import(pathToFileURL(path.join(dist, 'scenarios', 'index.js')).href);
const listed = await writeBuiltinIndex();
console.log(
  `rootprobe: built dist/ (${copied} guest files and recipes copied beside the modules; zod bundled for ${rewired} import(s); ` +
    `${listed} built-in scenarios indexed)`,
);
