/**
 * The firmware's host tools (mkfs.vfat, mtools, objcopy, ukify) run to their end through
 * lifecycle.runGuarded: in a process group of their own that a signal to rootprobe ends, with a
 * parent-death signal, so none outlives an interrupted run.
 */
import * as path from 'node:path';
import { SetupError } from '../errors.ts';
import { runGuarded } from '../lifecycle.ts';

/** Runs `cmd`; resolves with its stdout, or rejects with a SetupError naming the command and what it said. */
export async function runTool(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; maxBuffer?: number } = {}): Promise<string> {
  const what = `${path.basename(cmd)} ${args.join(' ')}`;
  const r = await runGuarded(cmd, args, { env: opts.env, maxBuffer: opts.maxBuffer ?? 8 << 20 }).catch((e: Error) => {
    throw new SetupError(`${what} failed: ${e.message}`);
  });
  if (r.code === 0) return r.stdout.toString('utf8');
  const said = r.stderr.toString('utf8').trim();
  throw new SetupError(`${what} failed: ${said || (r.signal ? `killed by ${r.signal}` : `exit code ${r.code}`)}`);
}

/** mtools refuses a FAT whose geometry it does not like without MTOOLS_SKIP_CHECK; the images are ours or copies. */
export const MTOOLS_ENV = (): NodeJS.ProcessEnv => ({ ...process.env, MTOOLS_SKIP_CHECK: '1' });
