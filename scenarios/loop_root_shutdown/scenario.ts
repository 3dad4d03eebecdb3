/**
 * loop_root_shutdown (seed 004): the root filesystem is an image file on a partition, on a
 * loop device. At shutdown PID 1 pivots into a tmpfs shutdown root and execs from it, so
 * nothing holds the old root; then the loop root is unmounted, the loop device detached and
 * the partition unmounted. The host proves it: neither the partition image nor the root
 * image inside it needs recovery, e2fsck -fn passes on both, and the log the guest wrote on
 * the loop root is there. The story and the checks are in family.ts; this file holds the family's factory.
 */
import { scenario, type Scenario } from '../../harness/scenario.ts';
import { loopRootShutdown, type LoopShutdownVariant } from './family.ts';

/** The family's factory: a loop-root shutdown with its variant's holder, faults and expectation. */
export function loopRootShutdownScenario(v: LoopShutdownVariant): Scenario {
  return scenario(loopRootShutdown(v), import.meta);
}

export default loopRootShutdownScenario({
  name: 'loop_root_shutdown',
  description:
    'The root is an ext4 image file on a partition, on a loop device; at shutdown PID 1 pivots into a tmpfs and execs ' +
    'from it, unmounts the loop root, detaches the loop device and unmounts the partition: both images are clean on the host.',
  seeds: ['004'],
  expect: 'clean',
});
