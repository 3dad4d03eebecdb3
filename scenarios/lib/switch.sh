# Guest functions shared by the switch_root variants' /init scripts (sourced after
# /.rootprobe/lib.sh). Each variant's /init then reads as its story: prepare, probe, switch.

# /proc, /sys and /dev, as every initramfs mounts them.
mount_api_filesystems() {
  mount -t proc proc /proc
  mount -t sysfs sysfs /sys
  mount -t devtmpfs devtmpfs /dev
}

# The witness: a binary only the initramfs has (/bin/sleeper), started with its cwd in an
# initramfs folder, so that after the switch its exe and cwd tell what became of them.
start_witness() {
  mkdir -p /witness
  (cd /witness && exec /bin/sleeper 1000000 < /dev/null > /dev/null 2>&1) &
}

# mount_real_root DIR: the ext4 root disk (/dev/vda) on DIR.
mount_real_root() {
  rp_wait_dev /dev/vda
  mkdir -p "$1"
  mount -t ext4 /dev/vda "$1" || rp_fail "mount -t ext4 /dev/vda $1 failed"
}

# move_api_filesystems DIR: /proc, /sys and /dev moved under DIR (MS_MOVE), as an init
# must do before a switch_root that does not move them itself.
move_api_filesystems() {
  for fs in proc sys dev; do
    mount --move /$fs "$1/$fs" || rp_fail "mount --move /$fs failed"
  done
}
