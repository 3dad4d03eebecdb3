#!/bin/sh
# The initramfs's /init for switch_root_manual: the old way by hand, no switch_root program.
# Move the API filesystems and then the new root itself over / (MS_MOVE), and chroot into it.
# The initramfs is NOT cleaned up: its files stay in memory, hidden under the real root.
. /.rootprobe/lib.sh

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
rp_load_modules

mkdir -p /witness
(cd /witness && exec /bin/sleeper 1000000 < /dev/null > /dev/null 2>&1) &

probe initramfs

rp_wait_dev /dev/vda
mkdir -p /newroot
mount -t ext4 /dev/vda /newroot || rp_fail "mount -t ext4 /dev/vda /newroot failed"
for fs in proc sys dev; do
  mount --move /$fs /newroot/$fs || rp_fail "mount --move /$fs failed"
done
cd /newroot || rp_fail "cd /newroot failed"
mount --move . / || rp_fail "mount --move /newroot / failed"
exec chroot . /sbin/init
