/**
 * retain_initrd (seed 002): the third workaround the seed names for a system that runs from
 * its initramfs and wants pivot_root to work, "use keepinitrd kernel cmdline option, unpack
 * initramfs to rootfs, run a script to create our target tmpfs root, unpack the same initramfs
 * there, switch root to it ... thus unpacking the same archive twice and also wasting memory,
 * because the kernel stores compressed initramfs image indefinitely".
 *
 * With `retain_initrd` the kernel keeps the image and (from Linux 6.8) shows it at
 * /sys/firmware/initrd. The /init unpacks it a second time into a tmpfs (scenarios'
 * uncpio, a newc reader: busybox cpio stops at the first of the concatenated archives) and
 * switch_roots there; a container's pivot_root then works. `retain_initrd_without` is the same
 * flow without the parameter: no image to read, so it copies the files from rootfs instead.
 * The evidence is the memory: the image's size at /sys/firmware/initrd, and MemTotal/MemFree
 * of the two flows (the kernel frees the image's pages without retain_initrd, and never with it).
 */
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { scenario, type CheckContext, type ScenarioDefinition } from '../../harness/scenario.ts';
import type { Kernel } from '../../kernels/index.ts';
import type { Stage } from '../../harness/readback/snapshot.ts';

export const RETAIN_DIR = path.dirname(fileURLToPath(import.meta.url));

/** /sys/firmware/initrd came with Linux 6.8 ("initramfs: Expose retained initrd as sysfs file"). */
export const FIRMWARE_INITRD_SINCE: [number, number] = [6, 8];

/** Why `kernel` cannot show the retained image, or undefined. */
export function noFirmwareInitrd(kernel: Pick<Kernel, 'release' | 'config'>): string | undefined {
  if (kernel.config && kernel.config.get('CONFIG_BLK_DEV_INITRD') !== 'y') return 'CONFIG_BLK_DEV_INITRD is not set: no initramfs at all';
  const m = /^(\d+)\.(\d+)/.exec(kernel.release);
  if (!m) return undefined; // a release we cannot read: boot it, the guest will show what it has
  const [maj, min] = [Number(m[1]), Number(m[2])];
  const [smaj, smin] = FIRMWARE_INITRD_SINCE;
  if (maj < smaj || (maj === smaj && min < smin)) {
    return `Linux ${maj}.${min} keeps the image with retain_initrd but has no /sys/firmware/initrd to read it back (from ${smaj}.${smin} on)`;
  }
  return undefined;
}

/** MemTotal and MemFree in kB from `grep -e MemTotal -e MemFree /proc/meminfo`. */
export function meminfo(s: Stage): { total: number; free: number } {
  const text = s.command('meminfo')?.output ?? '';
  const kb = (key: string): number => {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB$`, 'm').exec(text);
    if (!m) throw new Error(`stage \`${s.name}\`: no ${key} in its meminfo: ${JSON.stringify(text)}`);
    return Number(m[1]);
  };
  return { total: kb('MemTotal'), free: kb('MemFree') };
}

function imageSize(s: Stage): number | undefined {
  const c = s.command('image-size');
  return c && c.status === 0 ? Number(c.output.trim()) : undefined;
}

export function checkRetain(ctx: CheckContext, retained: boolean): void {
  const { stage, expect, evidence, behaviour } = ctx;
  const initramfs = stage('initramfs');
  const sw = stage('switched');
  expect(initramfs).to.have.mount('/');
  const rootfs = initramfs.mountAt('/')!;
  const size = imageSize(initramfs);
  const memBefore = meminfo(initramfs);
  const memAfter = meminfo(sw);

  if (retained) {
    expect(size, `with retain_initrd, /sys/firmware/initrd holds the image (stat said: ${initramfs.command('image-size')?.output.trim()})`)
      .to.be.a('number')
      .greaterThan(0);
    expect(sw.file('/.retain-source'), 'the tmpfs root was unpacked from /sys/firmware/initrd').to.match(
      new RegExp(`^unpacked from /sys/firmware/initrd: entries \\d+ bytes ${size}\\n$`),
    );
    expect(imageSize(sw), 'after the switch the kernel still holds the whole image').to.equal(size);
    behaviour(
      `retain_initrd: the kernel holds the ${size}-byte image at /sys/firmware/initrd for good; the same archive was unpacked a second time`,
    );
    evidence(`initramfs: /sys/firmware/initrd is ${size} bytes (${(size! / 1024).toFixed(0)} kB); ${sw.file('/.retain-source')!.trim()}`);
  } else {
    expect(size, 'without retain_initrd there is no /sys/firmware/initrd').to.equal(undefined);
    expect(sw.file('/.retain-source'), 'the tmpfs root was copied from rootfs').to.equal('copied from rootfs\n');
    behaviour('without retain_initrd: no image kept (no /sys/firmware/initrd); the files were copied from rootfs');
  }
  evidence(`memory: MemTotal ${memBefore.total} kB; MemFree ${memBefore.free} kB in the initramfs, ${memAfter.free} kB after the switch`);

  // The second root: a tmpfs atop rootfs, from which a container's pivot_root works.
  expect(sw).to.have.mount('/').of.type('tmpfs');
  const root = sw.pid1Mountinfo.at('/')!;
  expect(root.parentId, `switched: / (${root.raw}) is mounted atop the initramfs's rootfs (mount ${rootfs.mountId})`).to.equal(
    rootfs.mountId,
  );
  expect(sw.process(1)).to.have.exe('/bin/busybox');
  expect(sw)
    .to.have.command('pivot-after')
    .that.succeeded.with.output(/pivoted/);
  evidence(`switched: / is tmpfs (mount ${root.mountId}) atop rootfs (mount ${rootfs.mountId}); pivot_root in a new mount namespace works`);
}

function retainScenario(retained: boolean): ScenarioDefinition {
  return {
    name: retained ? 'retain_initrd' : 'retain_initrd_without',
    description: retained
      ? 'With retain_initrd the kernel keeps the image at /sys/firmware/initrd; /init unpacks it a second time into a tmpfs and ' +
        "switch_roots there, after which a container's pivot_root works; the image's size and MemFree are the evidence."
      : "retain_initrd's flow without the parameter: no /sys/firmware/initrd, the files are copied from rootfs into the tmpfs " +
        '(MemTotal/MemFree to set against retain_initrd).',
    seeds: ['002'],
    features: ['initrd', 'proc', 'sysfs', 'devtmpfs', 'tmpfs', 'serial'],
    skipIf: retained
      ? noFirmwareInitrd
      : (k) => {
          const why = noFirmwareInitrd(k);
          return why && `the comparison flow of retain_initrd goes only where that does: ${why}`;
        },
    async initramfs(t, ctx) {
      t.script('/init', path.join(RETAIN_DIR, 'init.sh'));
      t.script('/retain-switched.sh', path.join(RETAIN_DIR, 'switched.sh'));
      t.copy('/bin/uncpio', await ctx.program(path.join(RETAIN_DIR, 'uncpio.c')), 0o755);
    },
    cmdline: retained ? 'retain_initrd' : undefined,
    stages: ['initramfs', 'switched'],
    check: (ctx) => checkRetain(ctx, retained),
  };
}

export const without = scenario(retainScenario(false), import.meta);
export default scenario(retainScenario(true), import.meta);
