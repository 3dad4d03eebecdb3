#!/bin/sh
# /linuxrc on the old-style initrd of initrd_linuxrc (seed 003). The kernel loaded the ext2
# image into /dev/ram0, mounted it, and runs this from a kernel thread's child (a user-mode
# helper), not as PID 1: when it exits, the kernel mounts root= and runs the real init.
. /.rootprobe/lib.sh

mount -t proc proc /proc
probe linuxrc -v pid=$$ -f /etc/rootprobe-initrd \
  -c kernel-said 'dmesg | grep -e "RAMDISK" -e "deprecated initrd" -e "Initramfs unpacking"'
# Leave nothing mounted inside the initrd: the kernel moves it whole to /initrd afterwards.
umount /proc
exit 0
