/**
 * Every default of a boot, in one place: what a plan gets when its source (a scenario,
 * external mode, `shell`, `build`, the library's `boot()`) does not say.
 */
export const DEFAULTS = {
  /** The kernel when none is named. */
  kernel: 'debian/bookworm',
  /** Guest memory of a scenario's boot: the busybox initramfs and a small disk fit twice over. */
  memoryMiB: 256,
  /** A distro's initramfs (external mode) unpacks into RAM and runs systemd. */
  externalMemoryMiB: 1024,
  cpus: 1,
  /** A scenario's deadline under KVM (scaled for TCG: qemu/accel.ts timeoutFactor). */
  timeoutSec: 30,
  externalTimeoutSec: 120,
  /** After the last stage, the guest powers off by itself; this long (under KVM), then it is stopped. */
  graceSec: 5,
  /** A distro's own shutdown takes a while. */
  externalGraceSec: 60,
  /** Seconds external mode's agent waits for systemd to finish booting before asking for a power-off. */
  bootWaitSec: 240,
  /** An interactive session (`shell`) has no deadline worth the name: one day. */
  sessionMs: 24 * 3600 * 1000,
  firmware: 'bios' as const,
  artifactsRoot: 'rootprobe-artifacts',
  invocation: 'npx rootprobe',
};
