#!/bin/sh
# /sbin/init on the root disk of kernel_root (seed 003). No initramfs: the kernel found
# root=/dev/vda itself, mounted it over its own absolute root (rootfs) and chrooted into it,
# then ran this as PID 1.
. /.rootprobe/lib.sh

mount -t proc proc /proc
# devtmpfs: mounted by the kernel on /dev of the new root (CONFIG_DEVTMPFS_MOUNT), or not yet.
grep -q ' /dev ' /proc/self/mountinfo || mount -t devtmpfs devtmpfs /dev

probe realroot -v pid=$$ -f /etc/rootprobe-disk \
  -c kernel-said 'dmesg | grep -e "VFS: Mounted root" -e "devtmpfs: mounted" -e "Run /sbin/init"'
rp_finish
