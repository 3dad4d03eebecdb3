/**
 * Every report writer `rootprobe run` may need, in one module the CLI imports once the first
 * guest boots (harness/cli/main.ts), not at start-up.
 */
export { toJUnit, toTap } from './formats.ts';
export { evidenceMarkdown } from './evidence.ts';
export { summaryText } from './terminal.ts';
export { toKcidbJson } from './kcidb.ts';
export { reportJson } from './json.ts';
export { reportHtml } from './html.ts';
export { artifactConsoleLog } from './console-log.ts';
