#!/bin/sh
# The initramfs's /init: the classic busybox flow. Mount the API filesystems, load the
# disk driver, leave a witness process behind, mount the real root, move /proc, /sys and
# /dev over, and let busybox switch_root delete the initramfs and exec the real init.
. /.rootprobe/lib.sh

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
rp_load_modules

# The witness: a binary only the initramfs has, started with its cwd in an initramfs
# folder. After the switch its exe can only read as deleted.
mkdir -p /witness
(cd /witness && exec /bin/sleeper 1000000 < /dev/null > /dev/null 2>&1) &

probe initramfs

rp_wait_dev /dev/vda
mkdir -p /newroot
mount -t ext4 /dev/vda /newroot || rp_fail "mount -t ext4 /dev/vda /newroot failed"
for fs in proc sys dev; do
  mount --move /$fs /newroot/$fs || rp_fail "mount --move /$fs failed"
done
exec switch_root /newroot /sbin/init
