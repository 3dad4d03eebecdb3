/**
 * sysvinit_loop_root_usr1 (seed 004's open question): sysvinit_loop_root, but the shutdown
 * sends SIGUSR1 to PID 1. The seed: "it might not work in practice".
 */
import { sysvinitLoopRootScenario } from '../sysvinit_loop_root/scenario.ts';

export default sysvinitLoopRootScenario({
  name: 'sysvinit_loop_root_usr1',
  description:
    'sysvinit_loop_root with kill -USR1 1 instead of a re-exec: init closes and reopens its fifo, but its exe stays on the ' +
    'old root, so the loop root stays busy and the partition is left unclean.',
  seeds: ['004'],
  way: 'usr1',
  expect: 'held',
});
