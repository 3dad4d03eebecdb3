#!/usr/bin/env node
// Entry point: the harness is TypeScript run through tsx, so scenarios written by users in
// TypeScript (--scenarios DIR) load the same way as ours, with no build step.
import { register } from 'tsx/esm/api';
register();
const { main } = await import('../harness/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
