#!/bin/sh
# The initramfs's /init for switch_root_manual: the old way by hand, no switch_root program.
# Move the API filesystems and then the new root itself over / (MS_MOVE), and chroot into it.
# The initramfs is NOT cleaned up: its files stay in memory, hidden under the real root.
. /.rootprobe/lib.sh
. /lib/rootprobe/switch.sh

mount_api_filesystems
rp_load_modules
start_witness
probe initramfs

mount_real_root /newroot
move_api_filesystems /newroot
cd /newroot || rp_fail "cd /newroot failed"
mount --move . / || rp_fail "mount --move /newroot / failed"
exec chroot . /sbin/init
