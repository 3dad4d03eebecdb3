/**
 * sysvinit_loop_root_request (seed 004): sysvinit_loop_root, but the shutdown writes the
 * crafted struct init_request (magic 0x03091969, INIT_CMD_RUNLVL, runlevel 'U': seed 004's
 * reload-init.bin) to the old /run/initctl instead of running telinit.
 */
import { sysvinitLoopRootScenario } from '../sysvinit_loop_root/scenario.ts';

export default sysvinitLoopRootScenario({
  name: 'sysvinit_loop_root_request',
  description:
    'sysvinit_loop_root with the crafted init_request (reload-init.bin: magic 0x03091969, runlevel U) written to the old fifo: ' +
    'init re-execs from the tmpfs and the partition unmounts cleanly.',
  seeds: ['004'],
  way: 'request',
  expect: 'released',
});
