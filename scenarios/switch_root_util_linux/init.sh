#!/bin/sh
# The initramfs's /init for switch_root_util_linux: like the core scenario, but util-linux's
# switch_root does the moving: it moves /dev, /proc, /sys and /run onto the new root itself,
# MS_MOVEs the new root over /, chroots, deletes the initramfs (in a child it forks) and
# exec's the real init.
. /.rootprobe/lib.sh
. /lib/rootprobe/switch.sh

mount_api_filesystems
mount -t tmpfs -o mode=0755 run /run
echo "written in the initramfs" > /run/rootprobe-run-marker
rp_load_modules
start_witness
probe initramfs

mount_real_root /newroot
exec /sbin/switch_root.util-linux /newroot /sbin/init
