#!/bin/sh
# The initramfs's /init: the classic busybox flow. Mount the API filesystems, load the disk
# driver, leave a witness behind, mount the real root, move /proc, /sys and /dev over, and let
# busybox switch_root delete the initramfs and exec the real init.
. /.rootprobe/lib.sh
. /lib/rootprobe/switch.sh

mount_api_filesystems
rp_load_modules
start_witness
probe initramfs

mount_real_root /newroot
move_api_filesystems /newroot
exec switch_root /newroot /sbin/init
