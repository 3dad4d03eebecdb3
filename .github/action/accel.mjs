// Prints rootprobe's accelerator verdict for a kernel: `<accel>: <reason>` (see kvm.sh).
// Imports the package by its own name, so it runs the compiled tree the action installed.
import { detectAccel, resolveKernel } from 'rootprobe';

const kernel = await resolveKernel(process.argv[2] ?? 'debian/bookworm');
const a = await detectAccel(kernel.vmlinuz);
console.log(`${a.accel}: ${a.reason}${a.cached ? ' (cached)' : ''}`);
