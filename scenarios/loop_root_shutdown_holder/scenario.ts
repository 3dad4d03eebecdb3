/**
 * loop_root_shutdown_holder (seed 004, the failing variant): the same loop-root shutdown as
 * loop_root_shutdown, but a holder is left behind on the loop root, as sysvinit's
 * /run/initctl fifo in seed 004: a process with its cwd in /var/log and the fifo open. The
 * unmount of the old root fails with EBUSY, so does the partition's, and the guest still
 * reaches `shutdown` and `done`. This scenario passes when it observes exactly that: the
 * busy mount, who held it (from the readback's cwd/root/fd links), and the partition image
 * left unclean on the host.
 */
import { loopRootShutdownScenario } from '../loop_root_shutdown/scenario.ts';

export default loopRootShutdownScenario({
  name: 'loop_root_shutdown_holder',
  description:
    'loop_root_shutdown with a holder left on the loop root (a process with its cwd there and a /run/initctl fifo open): ' +
    'the unmounts fail with EBUSY, the readback names the holder, and the host finds the partition unclean.',
  seeds: ['004'],
  holder: 'initctl',
  expect: 'busy',
});
