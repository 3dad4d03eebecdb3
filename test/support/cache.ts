/**
 * A cache of the suite's own: ROOTPROBE_CACHE points into a fresh temp folder for the suite
 * (or for each test) and is put back afterwards, so tests never fill or read the user's cache.
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export interface PrivateCache {
  /** The temp folder: the cache is its `cache` subfolder; tests may put their own files beside it. */
  readonly dir: string;
}

export function usePrivateCache(prefix: string, opts: { each?: boolean } = {}): PrivateCache {
  const state = { dir: '', saved: undefined as string | undefined };
  const setUp = async (): Promise<void> => {
    state.dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
    state.saved = process.env.ROOTPROBE_CACHE;
    process.env.ROOTPROBE_CACHE = path.join(state.dir, 'cache');
  };
  const tearDown = async (): Promise<void> => {
    if (state.saved === undefined) delete process.env.ROOTPROBE_CACHE;
    else process.env.ROOTPROBE_CACHE = state.saved;
    if (state.dir) await fs.rm(state.dir, { recursive: true, force: true });
  };
  if (opts.each) {
    beforeEach(setUp);
    afterEach(tearDown);
  } else {
    before(setUp);
    after(tearDown);
  }
  return {
    get dir() {
      return state.dir;
    },
  };
}
