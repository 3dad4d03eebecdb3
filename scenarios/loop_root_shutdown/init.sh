#!/bin/sh
# The initramfs's /init: the root filesystem is an image file on a partition (seed 004).
# Mount the partition, attach the file to a loop device, mount that as the new root, move
# /proc, /sys, /dev and the partition itself under it (the partition must stay reachable:
# the loop device reads its backing file through it), and switch_root.
. /.rootprobe/lib.sh

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
rp_load_modules

rp_wait_dev /dev/vda
mkdir -p /host /newroot
mount -t ext4 /dev/vda /host || rp_fail "mount -t ext4 /dev/vda /host failed"
[ -f /host/images/root.img ] || rp_fail "/host/images/root.img is missing on the partition"
loop=$(losetup -f) || rp_fail "losetup -f found no free loop device"
losetup "$loop" /host/images/root.img || rp_fail "losetup $loop /host/images/root.img failed"

probe initramfs -v loop="$loop" -c losetup "losetup $loop"

mount -t ext4 "$loop" /newroot || rp_fail "mount -t ext4 $loop /newroot failed"
for fs in proc sys dev host; do
  mount --move /$fs /newroot/$fs || rp_fail "mount --move /$fs /newroot/$fs failed"
done
echo "$loop" > /newroot/run/rootprobe-loop || rp_fail "cannot write to the loop root"
exec switch_root /newroot /sbin/init
