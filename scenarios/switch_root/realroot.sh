#!/bin/sh
# Run by the real root's init (busybox init, /etc/inittab sysinit) once switch_root has
# exec'd it: probe the mount tree as the real root sees it, then power off.
. /.rootprobe/lib.sh

# The witness left behind in the initramfs still has rootfs as its root: through its
# /proc/PID/root the probe can list what switch_root left of the initramfs.
w=$(pidof sleep)
probe realroot -f /etc/rootprobe-disk \
  -c rootfs-files "find /proc/$w/root/ -xdev ! -type d" \
  -c rootfs-dirs "cd /proc/$w/root/ && find . -xdev -type d | sort"
rp_finish
