/**
 * rootprobe's library API, for test authors who write scenarios in their own repository and
 * run them under their own mocha suite or through the CLI (`--scenarios DIR`).
 */
export { scenario, expectedStages } from './scenario.ts';
export type { Scenario, ScenarioDefinition, DiskSpec, BuildContext, CheckContext } from './scenario.ts';
export { ImageTree } from './image/tree.ts';
export { runScenario, type RunRecord, type RunOptions, type Outcome } from './run/run-scenario.ts';
export { runMatrix, type MatrixOptions } from './run/matrix.ts';
export { prepareImages } from './run/prepare.ts';
export { resolveKernel, type Kernel } from '../kernels/index.ts';
export { detectAccel } from './qemu/accel.ts';
export { rootprobeChai } from './assert/chai-rootprobe.ts';
export * from './readback/index.ts';
export { UsageError, SetupError, DefinitionError } from './errors.ts';
