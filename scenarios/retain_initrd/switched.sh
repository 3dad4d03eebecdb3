#!/bin/sh
# After switch_root into the tmpfs: PID 1 runs from the second copy of the initramfs. The
# kernel's copy of the image is still held (with retain_initrd); a container runtime's
# pivot_root (in a mount namespace of its own) now works.
. /.rootprobe/lib.sh
probe switched -f /.retain-source \
  -c image-size 'stat -c %s /sys/firmware/initrd' \
  -c meminfo 'grep -e MemTotal -e MemFree /proc/meminfo' \
  -c pivot-after 'unshare -m /bin/sh -c "mkdir -p /ctr && mount -t tmpfs ctr /ctr && mkdir /ctr/old && pivot_root /ctr /ctr/old && echo pivoted"'
rp_finish
