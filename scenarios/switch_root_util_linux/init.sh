#!/bin/sh
# The initramfs's /init for switch_root_util_linux: like the core scenario, but util-linux's
# switch_root does the moving: it moves /dev, /proc, /sys and /run onto the new root itself,
# MS_MOVEs the new root over /, chroots, deletes the initramfs (in a child it forks) and
# exec's the real init.
. /.rootprobe/lib.sh

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs -o mode=0755 run /run
echo "written in the initramfs" > /run/rootprobe-run-marker
rp_load_modules

# The witness: a binary only the initramfs has, cwd in an initramfs folder.
mkdir -p /witness
(cd /witness && exec /bin/sleeper 1000000 < /dev/null > /dev/null 2>&1) &

probe initramfs

rp_wait_dev /dev/vda
mkdir -p /newroot
mount -t ext4 /dev/vda /newroot || rp_fail "mount -t ext4 /dev/vda /newroot failed"
exec /sbin/switch_root.util-linux /newroot /sbin/init
