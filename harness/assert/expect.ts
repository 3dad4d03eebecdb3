/// <reference types="chai" />
/**
 * chai's expect with rootprobe's assertions (chai-rootprobe.ts), loaded on first use. A run
 * needs it only for its check, after the guest powered off; loading chai at start-up cost
 * 16-24 ms before QEMU could start. A plan starts the load while its guest boots
 * (BootPlan.whileBooting), so the check does not wait for it either.
 */
import { rootprobeChai } from './chai-rootprobe.ts';

let loaded: Promise<Chai.ExpectStatic> | undefined;

// Only chai itself is imported late, never a module of ours: a user's mocha with tsx can load
// the harness through require() (tsx makes it CommonJS), and an import() of our own module
// from there loads a second copy of the harness beside it (its Stage is not the run's Stage:
// "the subject is a Stage, not a Stage or a Mountinfo", test/dayday.test.ts's README run).
export function rootprobeExpect(): Promise<Chai.ExpectStatic> {
  loaded ??= import('chai').then((chai) => {
    chai.use(rootprobeChai);
    return chai.expect;
  });
  return loaded;
}

/** Starts the load and forgets it: a failure shows when the check awaits rootprobeExpect(). */
export function preloadExpect(): void {
  rootprobeExpect().catch(() => {});
}
