#!/usr/bin/env node
// Entry point. An installed package runs the compiled tree (dist/, built by `prepare`; the
// package ships no TypeScript sources). A checkout of the repository runs its sources through
// tsx, so that what you edit is what runs (and what the repo's tests test); there
// `import ... from 'rootprobe'` resolves to the sources too (the `rootprobe-source` export
// condition), so user scenarios and the CLI share one copy of the harness.
// ROOTPROBE_DIST=1 makes a checkout run dist/ as an install would (`npm run build` first).
import { existsSync } from 'node:fs';
import * as nodeModule from 'node:module';
// Node 22.1+ keeps V8's compiled code of the modules on disk between runs (start-up); older
// Nodes have no such call.
nodeModule.enableCompileCache?.();
// `rootprobe ... | head`: a closed pipe ends the output quietly, as for any Unix tool.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
}
const sources = new URL('../harness/cli/main.ts', import.meta.url);
const compiled = new URL('../dist/harness/cli/main.js', import.meta.url);
let main;
if (existsSync(sources) && !process.env.ROOTPROBE_DIST) {
  const { register } = await import('tsx/esm/api');
  register();
  const hook = 'export async function resolve(s, c, next) { return next(s, { ...c, conditions: [...c.conditions, "rootprobe-source"] }); }';
  nodeModule.register(`data:text/javascript,${encodeURIComponent(hook)}`);
  ({ main } = await import(sources.href));
} else if (existsSync(compiled)) {
  ({ main } = await import(compiled.href));
} else {
  process.stderr.write('rootprobe: dist/ is missing: run `npm run build` in the package folder\n');
  process.exit(2);
}
process.exitCode = await main(process.argv.slice(2));
