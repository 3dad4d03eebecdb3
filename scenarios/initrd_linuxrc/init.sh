#!/bin/sh
# /sbin/init on the real root of initrd_linuxrc: the kernel mounted root=/dev/vda itself after
# /linuxrc exited, and runs this as PID 1. The old initrd is at /initrd (this disk has the
# folder) or was unmounted and freed.
. /.rootprobe/lib.sh

mount -t proc proc /proc
grep -q ' /dev ' /proc/self/mountinfo || mount -t devtmpfs devtmpfs /dev

probe realroot -v pid=$$ -f /etc/rootprobe-disk -f /initrd/etc/rootprobe-initrd \
  -c kernel-said 'dmesg | grep -e "deprecated initrd" -e "old root" -e "VFS: Mounted root" -e "Freeing initrd" -e "RAMDISK: Loading"'
rp_finish
