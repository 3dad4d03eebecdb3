/**
 * Bench only: what one probe costs in the guest. Four probes back to back in a bare
 * initramfs; the differences of their `uptime` (read by the probe near its end) are the
 * time of one whole probe (snapshot, pack, send on ttyS1).
 */
import { scenario } from '../../harness/scenario.ts';

export default scenario(
  {
    name: 'bench-probe-cost',
    description: 'four probes back to back (bench only)',
    features: ['initrd', 'proc', 'devtmpfs', 'serial'],
    initramfs(t) {
      t.file(
        '/init',
        `#!/bin/sh
. /.rootprobe/lib.sh
mount -t proc proc /proc
mount -t devtmpfs devtmpfs /dev
probe p1
probe p2
probe p3
probe p4
rp_finish
`,
        0o755,
      );
    },
    stages: ['p1', 'p2', 'p3', 'p4'],
    check: () => undefined,
  },
  import.meta,
);
