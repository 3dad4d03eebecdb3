/**
 * External mode's stand-in storage daemons (harness/external/daemons.ts) on the process tables
 * recorded from two real boots of Debian bookworm roots (test/distro.test.ts boots them):
 * dracut with systemd in the initramfs (the plain daemon is gone after the switch, the
 * `@`-marked one is alive through the shutdown initramfs) and dracut's shell flow (both survive
 * the switch, the plain one dies of systemd-shutdown's SIGTERM: the agent's `killing-spree`
 * stage; no shutdown stage). The broken twin: the same tables with the marked daemon's
 * `@` taken away, as if it had been started without it, and a table where it died.
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  daemonBehaviours,
  daemonEvidence,
  daemonFates,
  MARKED,
  PLAIN,
  type StageProcesses,
  storageDaemonProblem,
  UNMARKED,
} from '../harness/external/daemons.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const recorded = JSON.parse(readFileSync(path.join(here, 'fixtures/external/storage-daemons.json'), 'utf8')) as Record<
  string,
  { stages: StageProcesses[] }
>;

describe('external mode: stand-in storage daemons (harness/external/daemons.ts)', () => {
  it('systemd in the initramfs: the @ daemon is alive in every stage, the plain one gone from the switch on', () => {
    const fates = daemonFates(recorded['dracut-systemd'].stages);
    expect(fates.map((f) => f.argv0)).to.deep.equal([MARKED, PLAIN]);
    expect(daemonBehaviours(fates)).to.deep.equal([
      `storage daemon ${MARKED}: alive at initramfs, realroot, killing-spree, shutdown`,
      `storage daemon ${PLAIN}: alive at initramfs; gone at realroot, killing-spree, shutdown`,
    ]);
    expect(storageDaemonProblem(fates)).to.equal(undefined);
    const ev = daemonEvidence(fates);
    // After the switch the exe text still names /usr/bin/sleep: only ` (deleted)` tells it from
    // the real root's own sleep; its root reads `/` like any process of the real root.
    expect(ev).to.include.members([
      `initramfs: ${MARKED} pid ${fates[0].seen[0].process!.pid}, exe /usr/bin/sleep, cwd /, root /`,
      `realroot: ${MARKED} pid ${fates[0].seen[0].process!.pid}, exe /usr/bin/sleep (deleted), cwd /, root /`,
      `realroot: ${PLAIN} gone`,
    ]);
  });

  it("dracut's shell flow: both survive the switch; systemd-shutdown's SIGTERM kills the plain one", () => {
    const fates = daemonFates(recorded['dracut-shell'].stages);
    expect(daemonBehaviours(fates)).to.deep.equal([
      `storage daemon ${MARKED}: alive at initramfs, realroot, killing-spree`,
      `storage daemon ${PLAIN}: alive at initramfs, realroot; gone at killing-spree`,
    ]);
    expect(storageDaemonProblem(fates)).to.equal(undefined);
  });

  it('the broken twin: the storage daemon without its @ (or dead) is a problem naming the stage and why', () => {
    const unmarked = structuredClone(recorded['dracut-systemd'].stages);
    // As started without the '@': systemd treats it as any leftover (here: gone after the switch).
    for (const s of unmarked) {
      const d = s.processes.find((p) => p.cmdline[0] === MARKED);
      if (d) d.cmdline[0] = UNMARKED;
    }
    for (const s of unmarked.slice(1))
      (s as unknown as { processes: unknown[] }).processes = s.processes.filter((p) => p.cmdline[0] !== UNMARKED);
    const fates = daemonFates(unmarked, 'unmarked');
    expect(fates[0].argv0).to.equal(UNMARKED);
    expect(storageDaemonProblem(fates)).to.equal(
      `the storage daemon ${UNMARKED} is gone at realroot, killing-spree, shutdown: its argv[0] '${UNMARKED}' lacks the '@' that tells systemd to spare a root storage daemon`,
    );
    const dead = structuredClone(recorded['dracut-systemd'].stages);
    (dead[3] as unknown as { processes: unknown[] }).processes = dead[3].processes.filter((p) => p.cmdline[0] !== MARKED);
    expect(storageDaemonProblem(daemonFates(dead))).to.equal(`the storage daemon ${MARKED} is gone at shutdown`);
    const never = structuredClone(recorded['dracut-systemd'].stages);
    for (const s of never)
      (s as unknown as { processes: unknown[] }).processes = s.processes.filter((p) => !p.cmdline[0]?.includes('storaged'));
    expect(storageDaemonProblem(daemonFates(never))).to.match(
      new RegExp(`^the storage daemon ${MARKED} was in no stage: it never started`),
    );
  });
});
