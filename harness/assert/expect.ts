/// <reference types="chai" />
/**
 * chai's expect with rootprobe's assertions (chai-rootprobe.ts), loaded on first use. A run
 * needs it only for its check, after the guest powered off; loading chai at start-up cost
 * 16-24 ms before QEMU could start. A plan starts the load while its guest boots
 * (BootPlan.whileBooting), so the check does not wait for it either.
 */
let loaded: Promise<Chai.ExpectStatic> | undefined;

export function rootprobeExpect(): Promise<Chai.ExpectStatic> {
  loaded ??= Promise.all([import('chai'), import('./chai-rootprobe.ts')]).then(([chai, { rootprobeChai }]) => {
    chai.use(rootprobeChai);
    return chai.expect;
  });
  return loaded;
}

/** Starts the load and forgets it: a failure shows when the check awaits rootprobeExpect(). */
export function preloadExpect(): void {
  rootprobeExpect().catch(() => {});
}
