/**
 * The probe toolkit: what the guest probe needs, in one folder (/.rootprobe) so that it can
 * be appended to any initramfs as a cpio segment of its own, and added to every disk image
 * rootprobe builds: the probe script, its shell library, a static busybox, a device node for
 * the result channel (ttyS1, for roots without /dev) and empty mount points for the probe's
 * own tmpfs and proc.
 */
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ImageTree } from '../image/tree.ts';
import { requireTool } from '../host.ts';

export const TOOLKIT_DIR = '/.rootprobe';
const here = path.dirname(fileURLToPath(import.meta.url));

export const PROBE_SCRIPT = path.join(here, 'probe.sh');
export const GUEST_LIB = path.join(here, 'lib.sh');

export function probeToolkit(): ImageTree {
  const t = new ImageTree('probe toolkit');
  t.dir(TOOLKIT_DIR, 0o755);
  t.copy(`${TOOLKIT_DIR}/busybox`, requireTool('busybox', 'as the probe\'s own shell'), 0o755);
  t.script(`${TOOLKIT_DIR}/probe`, PROBE_SCRIPT);
  t.copy(`${TOOLKIT_DIR}/lib.sh`, GUEST_LIB, 0o644);
  t.device(`${TOOLKIT_DIR}/ttyS1`, 'char', 4, 65, 0o600);
  t.dir(`${TOOLKIT_DIR}/snap`, 0o700);
  t.dir(`${TOOLKIT_DIR}/proc`, 0o555);
  return t;
}
