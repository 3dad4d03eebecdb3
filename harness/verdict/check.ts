/**
 * The verdict of a plan's check on the readback: an assertion that did not hold is `failed`
 * with its message; anything else thrown is the check's own bug, `error` with its stack.
 */
import type { Verdict } from './channel.ts';

export function isAssertion(e: unknown): boolean {
  const err = e as Error;
  // chai's AssertionError, node:assert's and any other library's say so by name (chai itself
  // is not loaded for this: a run loads it only for its check, harness/assert/expect.ts).
  return err?.name === 'AssertionError';
}

export async function checkVerdict(what: string, check: () => void | Promise<void>): Promise<Verdict> {
  try {
    await check();
    return { outcome: 'passed' };
  } catch (e) {
    const err = e as Error;
    if (isAssertion(err)) return { outcome: 'failed', message: err.message };
    return { outcome: 'error', message: `${what} threw: ${err.stack ?? err.message}` };
  }
}
