#!/usr/bin/env node
// Builds the package into dist/: tsc compiles harness/, kernels/, scenarios/ and images/ to
// JavaScript and .d.ts (tsconfig.build.json; rewriteRelativeImportExtensions turns the
// sources' `.ts` import specifiers into `.js`), then every file of those folders that is not
// TypeScript (the guest's probe.c and lib.sh, the scenarios' guest scripts and C helpers,
// kernels/recipes/, external/guest/) is copied beside the compiled modules. The compiled
// tree is thus laid out like the sources, so every module that finds a file relative to its
// own import.meta.url finds it the same way in both. Run by `npm run build` and `prepare`.
import { execFileSync } from 'node:child_process';
import { cpSync, readdirSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

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
console.log(`rootprobe: built dist/ (${copied} guest files and recipes copied beside the modules)`);
