/**
 * The kernel the boot tests use: Debian bookworm's cloud kernel, fetched into the cache on
 * first use (as a user's first run would), or the one named by ROOTPROBE_TEST_KERNEL_SPEC.
 * Tests never skip for want of a kernel: a fresh machine downloads it.
 */
import * as path from 'node:path';
import { resolveKernel, type Kernel } from '../../kernels/index.ts';

export const testKernel: Kernel = await resolveKernel(process.env.ROOTPROBE_TEST_KERNEL_SPEC ?? 'debian/bookworm');
export const TEST_KERNEL = testKernel.vmlinuz;
export const TEST_RELEASE = testKernel.release;
/** lib/modules/<release> of the test kernel. */
export const TEST_MODULES_DIR = testKernel.modulesDir ?? '';
/** The folder that holds lib/modules (for `depmod -b`). */
export const TEST_KERNEL_ROOT = TEST_MODULES_DIR ? path.resolve(TEST_MODULES_DIR, '../../..') : '';
