/**
 * The standard guest userland: busybox with its applets, the usual folders and the few
 * device nodes a console needs before devtmpfs is mounted.
 */
import { ImageTree } from '../harness/image/tree.ts';

function userland(tree: ImageTree, busyboxExclude: string[]): ImageTree {
  for (const d of ['/bin', '/sbin', '/usr/bin', '/usr/sbin', '/dev', '/proc', '/sys', '/run', '/mnt', '/etc']) tree.dir(d);
  tree.dir('/root', 0o700);
  tree.dir('/tmp', 0o1777);
  // A real folder, not the usual link to /run: scenarios make /var/run/rootfs in it.
  tree.dir('/var');
  tree.dir('/var/run');
  tree.device('/dev/console', 'char', 5, 1, 0o600);
  tree.device('/dev/null', 'char', 1, 3, 0o666);
  // The console and the result port of the guest's architecture (harness/arch/), known when the tree is built.
  tree.consoleNodes();
  return tree.busybox('/bin', { exclude: busyboxExclude });
}

/** The base of every initramfs: busybox userland; /init is the scenario's. */
export function baseInitramfs(): ImageTree {
  return userland(new ImageTree('base-initramfs'), []);
}

/** The same userland for a real root disk; /sbin/init is left to the scenario (no busybox init link). */
export function baseRootDisk(): ImageTree {
  return userland(new ImageTree('base-root-disk'), ['/sbin/init']);
}
