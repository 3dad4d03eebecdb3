#!/bin/sh
# Workaround (b), after switch_root: PID 1 runs from the tmpfs copy. A container runtime's
# pivot_root (in a mount namespace of its own) now works.
. /.rootprobe/lib.sh
probe copy-switch -f /.nonroot-copy \
  -c pivot-after 'unshare -m /bin/sh -c "mkdir -p /ctr && mount -t tmpfs ctr /ctr && mkdir /ctr/old && pivot_root /ctr /ctr/old && echo pivoted"'
rp_finish
