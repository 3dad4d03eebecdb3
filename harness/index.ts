/// <reference types="chai" />
/**
 * rootprobe's library API, for test authors who write scenarios in their own repository and
 * run them under their own mocha suite or through the CLI (`--scenarios DIR`).
 *
 * What a scenario author or a library user writes against, and nothing else: the scenario and
 * its types, the image tree, boot() and its record, the readback a check reads (stages, mount
 * tables, processes) and its assertions, the errors to catch; resolveKernel and detectAccel for
 * tools around a boot (the GitHub action's accel.mjs). The result channel's framing and the
 * snapshot parser (docs/protocol.md), the runner, the matrix and the CLI's helpers are
 * internals: code inside this repository imports them from their modules.
 */
export { scenario } from './scenario.ts';
export type { Scenario, ScenarioDefinition, DiskSpec, BuildContext, CheckContext } from './scenario.ts';
export { ImageTree } from './image/tree.ts';
export { importTar, type TarImportOptions, type TarImportSummary } from './image/tar.ts';
export type { RunRecord, RunEvent, Outcome } from './run/run-scenario.ts';
export { resolveKernel, type Kernel } from '../kernels/index.ts';
export { detectAccel } from './qemu/accel.ts';
export { rootprobeChai } from './assert/chai-rootprobe.ts';
export { RunReadback, type RunReadbackJSON, type UnreadableSnapshot } from './readback/result.ts';
export { Stage, type ProcessInfo, type CommandResult, type StageJSON } from './readback/snapshot.ts';
export { Mountinfo, parseOptions, propagationOf, type MountinfoEntry, type Propagation } from './readback/mountinfo.ts';
export type { DamagedFrameEvent } from './readback/frame.ts';
export { UsageError, SetupError, DefinitionError } from './errors.ts';

import { resolveKernel as resolveKernel_ } from '../kernels/index.ts';
import { detectAccel as detectAccel_ } from './qemu/accel.ts';
import { archOf } from './arch/index.ts';
import { runScenario as runScenario_, type RunRecord as RunRecord_ } from './run/run-scenario.ts';
import { validateScenarios as validate_ } from './validate.ts';
import { skippedRecord as skippedRecord_ } from './run/matrix.ts';
import type { Scenario as Scenario_ } from './scenario.ts';
import { DEFAULTS } from './plan/defaults.ts';
import { checkBootOptions, type BootOptions } from './boot-options.ts';

export type { BootOptions } from './boot-options.ts';

/**
 * One boot of one scenario, for a test author's own suite: checks the definition, resolves
 * (downloads into the cache if needed) the kernel, picks the accelerator, boots, runs the
 * scenario's check and returns the record: `outcome` ('passed', 'failed', ...), `message`
 * (why not), `stages` (each stage's mountinfo and processes), `evidence`, `artifacts`. A
 * scenario whose skipIf gives a reason for the kernel is not booted: outcome 'skipped'. The
 * options are checked first: an unknown key (`kernal`) or a value of the wrong type is a
 * UsageError naming it (and the nearest known key) before any kernel is resolved.
 *
 *   const run = await boot(myScenario, { kernel: 'debian/bookworm' });
 *   expect(run.outcome, run.message).to.equal('passed');
 */
export async function boot(sc: Scenario_, options: BootOptions = {}): Promise<RunRecord_> {
  // Before anything is fetched or built: a misspelt key (`kernal`) is an error, not a default.
  const opts = checkBootOptions(options);
  validate_([sc]);
  const kernel = await resolveKernel_(opts.kernel ?? DEFAULTS.kernel);
  const { accel } = await detectAccel_(kernel.vmlinuz, { arch: archOf(kernel) });
  const skip = sc.skipIf?.(kernel);
  if (skip) return skippedRecord_(sc, kernel, skip, accel);
  return runScenario_(sc, kernel, {
    accel,
    artifactsRoot: opts.artifactsRoot ?? DEFAULTS.artifactsRoot,
    keep: opts.keep,
    extraCmdline: opts.extraCmdline,
    onEvent: opts.onEvent,
    signal: opts.signal,
    firmware: opts.firmware,
    boot: opts.boot,
  });
}
