/**
 * Which accelerator to boot with. `/dev/kvm` existing proves nothing: on some hosts a KVM
 * guest hangs, or QEMU aborts on an MSR assertion ("failed to set MSR 0x10a"). So KVM is used
 * only when a short probe boot under it reaches the kernel's "no root" panic, and the answer is
 * cached in `<cacheRoot>/accel.json`, keyed by the host's boot id, the QEMU binary (path and
 * mtime) and the kernel's sha256.
 */
import { constants, openSync, closeSync, promises as fs, statSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { cacheRoot, fileMemo, sha256File } from '../cache.ts';
import { SetupError, UsageError } from '../errors.ts';
import { requireTool } from '../host.ts';
import { makeTempDir, removeTempDir } from '../lifecycle.ts';
import { bootQemu } from './runner.ts';
import { defaultArch, hostArchSpec, type ArchSpec } from '../arch/index.ts';
import { DEFAULTS } from '../plan/defaults.ts';

export type Accel = 'kvm' | 'tcg';

export interface AccelAnswer {
  accel: Accel;
  /** Why, for people: the override, the missing /dev/kvm, the probe's result. */
  reason: string;
  /** True when the answer came from accel.json. */
  cached: boolean;
}

export interface DetectOptions {
  onProgress?: (message: string) => void;
  /** Default 20 s; a working KVM reaches the panic in well under 1 s. */
  probeDeadlineMs?: number;
  /** The guest's architecture (default x86-64): KVM only for guests of the host's own. */
  arch?: ArchSpec;
}

const CACHE_FILE = 'accel.json';
const PROBE_MARKS = ['Kernel panic', 'VFS: Unable to mount root'];

interface CacheFile {
  entries: Record<string, { accel: Accel; reason: string; at: string; bootId: string }>;
}

function bootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return 'unknown';
  }
}

async function readCache(file: string): Promise<CacheFile> {
  try {
    const c = JSON.parse(await fs.readFile(file, 'utf8')) as CacheFile;
    if (c && typeof c.entries === 'object' && c.entries) return c;
  } catch {
    /* missing or damaged: start again */
  }
  return { entries: {} };
}

async function writeCache(file: string, c: CacheFile): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  await fs.writeFile(tmp, JSON.stringify(c, null, 1));
  await fs.rename(tmp, file);
}

function kvmUsable(): string | undefined {
  try {
    closeSync(openSync('/dev/kvm', constants.O_RDWR));
    return undefined;
  } catch (e) {
    return `/dev/kvm cannot be opened read-write (${(e as NodeJS.ErrnoException).code ?? String(e)})`;
  }
}

/** The accelerator to use with this kernel on this host, probing KVM once per boot of the host. */
export async function detectAccel(kernelPath: string, opts: DetectOptions = {}): Promise<AccelAnswer> {
  const override = process.env.ROOTPROBE_ACCEL;
  if (override !== undefined && override !== '') {
    if (override !== 'kvm' && override !== 'tcg') {
      throw new UsageError(`ROOTPROBE_ACCEL must be 'kvm' or 'tcg'; got ${JSON.stringify(override)}. Unset it to probe.`);
    }
    return { accel: override, reason: `ROOTPROBE_ACCEL=${override}`, cached: false };
  }
  const arch = opts.arch ?? defaultArch();
  const host = hostArchSpec();
  if (host?.name !== arch.name) {
    return {
      accel: 'tcg',
      reason: `an ${arch.name} guest on an ${host?.name ?? process.arch} host (KVM runs guests of the host's own architecture only)`,
      cached: false,
    };
  }
  const noKvm = kvmUsable();
  if (noKvm) return { accel: 'tcg', reason: noKvm, cached: false };

  try {
    statSync(kernelPath);
  } catch {
    throw new SetupError(`the kernel image ${kernelPath} does not exist; fetch or build the kernel first`);
  }
  const qemu = requireTool(arch.qemuBinary, 'to boot the guests');
  const key = [bootId(), qemu, statSync(qemu).mtimeMs, await fileMemo('sha256', kernelPath, () => sha256File(kernelPath))].join('|');
  const file = path.join(cacheRoot(), CACHE_FILE);
  const cache = await readCache(file);
  const hit = cache.entries[key];
  if (hit) return { accel: hit.accel, reason: hit.reason, cached: true };

  const answer = await probeKvm(kernelPath, qemu, arch, opts);
  // Entries from earlier boots of the host can never match again: drop them.
  const id = bootId();
  for (const [k, v] of Object.entries(cache.entries)) if (v.bootId !== id) delete cache.entries[k];
  cache.entries[key] = { ...answer, at: new Date().toISOString(), bootId: id };
  await writeCache(file, cache);
  return { ...answer, cached: false };
}

async function probeKvm(kernelPath: string, qemu: string, arch: ArchSpec, opts: DetectOptions): Promise<{ accel: Accel; reason: string }> {
  const deadlineMs = opts.probeDeadlineMs ?? 20_000;
  opts.onProgress?.(`probing KVM: booting ${path.basename(kernelPath)} with no root (up to ${deadlineMs / 1000} s)`);
  const runDir = await makeTempDir('rootprobe-accel-');
  try {
    let reached: string | undefined;
    const { control, outcome } = bootQemu(
      {
        kernel: kernelPath,
        append: 'root=/dev/rootprobe-none',
        accel: 'kvm',
        memoryMiB: DEFAULTS.memoryMiB,
        runDir,
        qemuBinary: qemu,
        arch,
      },
      {
        deadlineMs,
        onConsole(line) {
          if (reached === undefined && PROBE_MARKS.some((m) => line.includes(m))) {
            reached = line.replace(/^\[[ \d.]+\]\s*/, '');
            control.stop('probe reached the no-root panic');
          }
        },
      },
    );
    const o = await outcome;
    const secs = (o.durationMs / 1000).toFixed(1);
    if (reached !== undefined) {
      return { accel: 'kvm', reason: `KVM probe boot reached "${reached.slice(0, 80)}" in ${secs} s` };
    }
    const lastErr = o.stderr.trim().split('\n').pop();
    let why: string;
    if (o.end === 'deadline') why = `the KVM guest printed no panic within ${deadlineMs / 1000} s (it hangs)`;
    else if (o.end === 'panic') why = `the KVM guest panicked unexpectedly: ${o.panicLine}`;
    else
      why =
        `QEMU under KVM ended (${o.signal ? `signal ${o.signal}` : `exit ${o.exitCode}`}) after ${secs} s ` +
        `before the kernel reached its panic${lastErr ? `: ${lastErr.trim().slice(0, 200)}` : ''}`;
    return { accel: 'tcg', reason: `/dev/kvm exists but ${why}; using TCG` };
  } finally {
    await removeTempDir(runDir);
  }
}

/**
 * How much longer than under KVM things take: 1 for KVM, 5 for TCG (times the architecture's
 * measured TCG slowdown against an x86-64 guest, harness/arch/), times
 * ROOTPROBE_TIMEOUT_FACTOR when set (a positive number).
 */
export function timeoutFactor(accel: Accel, arch?: ArchSpec): number {
  const base = accel === 'tcg' ? 5 * (arch?.tcgSlowdown ?? 1) : 1;
  const env = process.env.ROOTPROBE_TIMEOUT_FACTOR;
  if (env === undefined || env === '') return base;
  const f = Number(env);
  if (!Number.isFinite(f) || f <= 0) {
    throw new UsageError(`ROOTPROBE_TIMEOUT_FACTOR must be a positive number (like 2 or 0.5); got ${JSON.stringify(env)}`);
  }
  return base * f;
}
