/**
 * sysvinit_loop_root (seed 004): the loop root's PID 1 is Debian's real sysvinit; at shutdown
 * a child pivots into a tmpfs and runs `telinit u`: init re-execs into the tmpfs's copy of
 * itself and lets go of /run/initctl and the old root, which then unmounts cleanly. The
 * variants sysvinit_loop_root_request (the crafted init_request) and sysvinit_loop_root_usr1
 * (SIGUSR1) call the factory; the story and the checks are in family.ts.
 */
import { scenario, type Scenario } from '../../harness/scenario.ts';
import { sysvinitLoopRoot, type SysvinitVariant } from './family.ts';

/** The family's factory: one way of making sysvinit let go, and what it is expected to do. */
export function sysvinitLoopRootScenario(v: SysvinitVariant): Scenario {
  return scenario(sysvinitLoopRoot(v), import.meta);
}

export default sysvinitLoopRootScenario({
  name: 'sysvinit_loop_root',
  description:
    "Debian's sysvinit is PID 1 on a loop root; at shutdown a child pivots into a tmpfs and runs `telinit u`: init re-execs " +
    'from the tmpfs, lets go of /run/initctl and the old root, and the partition unmounts cleanly (host: e2fsck -fn).',
  seeds: ['004'],
  way: 'telinit',
  expect: 'released',
});
