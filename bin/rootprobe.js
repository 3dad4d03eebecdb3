#!/usr/bin/env node
// Entry point: the harness is TypeScript run through tsx, so scenarios written by users in
// TypeScript (--scenarios DIR) load the same way as ours, with no build step.
import { register } from 'tsx/esm/api';
// `rootprobe ... | head`: a closed pipe ends the output quietly, as for any Unix tool.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
}
register();
const { main } = await import('../harness/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
