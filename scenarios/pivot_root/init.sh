#!/bin/sh
# The initramfs's /init for scenario pivot_root (seeds 000, 001, 002).
#
# Stage 1 asks the kernel, in a throwaway mount namespace, whether pivot_root works with the
# initramfs as the old root. On kernels where the initramfs is the absolute root (rootfs, no
# parent mount) it fails with EINVAL (seed 002); then the initramfs re-enters itself through a
# bind mount of / moved onto / (a mount that has a parent), like seed 002's `mount --bind / /`.
# Stage 2 starts the processes whose links tell the story, pivots to the disk with the old
# root kept at /var/run/rootfs (seed 000), probes, pivots back (seed 000's way back to the
# initramfs at shutdown), probes again.
#
# /etc/rootprobe/pivot.conf may change the pivot (broken twins in the tests):
#   PIVOT_CWD       where PID 1 stands when it calls pivot_root (default: the new root)
#   PUT_OLD         put_old, absolute (default: /newroot/var/run/rootfs)
. /.rootprobe/lib.sh
PIVOT_CWD=/newroot
PUT_OLD=/newroot/var/run/rootfs
[ -f /etc/rootprobe/pivot.conf ] && . /etc/rootprobe/pivot.conf

api_mounts() {
  mount -t proc proc /proc
  mount -t sysfs sysfs /sys
  mount -t devtmpfs devtmpfs /dev
}

mount_disk() {
  rp_wait_dev /dev/vda
  mkdir -p /newroot
  mount -t ext4 /dev/vda /newroot || rp_fail "mount -t ext4 /dev/vda /newroot failed"
}

stage1() {
  api_mounts
  rp_load_modules
  mount_disk
  # In a mount namespace of its own, so that a success changes nothing here.
  direct=$(unshare -m sh -c 'cd /newroot && pivot_root . var/run/rootfs' 2>&1)
  direct_rc=$?
  umount /newroot /dev /sys /proc
  echo "$direct_rc" > /etc/rootprobe/direct.rc
  echo "$direct" > /etc/rootprobe/direct.out
  if [ "$direct_rc" = 0 ]; then
    stage2 direct
  else
    # The old root must be a mount with a parent: a bind mount of the initramfs, moved onto
    # / (atop the rootfs mount), entered with chroot. PID 1 goes on as stage 2 there.
    mkdir -p /.self
    mount --bind / /.self || rp_fail "mount --bind / /.self failed"
    cd /.self && mount --move . / || rp_fail "mount --move /.self / failed"
    exec chroot . /init stage2 bind
  fi
}

stage2() {
  how=$1
  direct_rc=$(cat /etc/rootprobe/direct.rc)
  direct_out=$(cat /etc/rootprobe/direct.out)
  api_mounts
  mount_disk

  # A process of the initramfs with a binary of its own (coreutils sleep as /bin/sleeper),
  # cwd and root at the initramfs's /.
  /bin/sleeper 100000 < /dev/null > /dev/null 2>&1 &
  # A process whose cwd is a folder of the initramfs, not its root.
  (cd /tmp && exec sleep 100001 < /dev/null > /dev/null 2>&1) &
  # Seed 001: chroot without chdir (nochdir.c): the cwd stays outside the new root, and the raw
  # getcwd syscall answers from there. It logs its getcwd now and on USR1.
  /bin/nochdir /newroot /tmp/nochdir.log < /dev/null > /dev/null 2>&1 &
  nochdir=$!
  n=0
  until grep -q '^chroot ' /tmp/nochdir.log 2>/dev/null; do
    n=$((n + 1)); [ $n -gt 300 ] && rp_fail "nochdir did not log its getcwd: $(cat /tmp/nochdir.log 2>&1)"; usleep 100000
  done

  probe initramfs -f /tmp/nochdir.log -v how="$how" -v direct_rc="$direct_rc" -v direct_out="$direct_out"

  for fs in proc sys dev; do
    mount --move /$fs /newroot/$fs || rp_fail "mount --move /$fs failed"
  done
  cd "$PIVOT_CWD" || rp_fail "cd $PIVOT_CWD failed"
  out=$(pivot_root /newroot "$PUT_OLD" 2>&1)
  rc=$?
  # Ask the chroot-without-chdir process for its getcwd again, now that the kernel has moved it.
  kill -USR1 $nochdir
  log=/var/run/rootfs/tmp/nochdir.log
  [ -f $log ] || log=/tmp/nochdir.log
  n=0
  until grep -q '^usr1 ' $log 2>/dev/null; do
    n=$((n + 1)); [ $n -gt 100 ] && break; /.rootprobe/busybox usleep 100000
  done
  probe pivoted -f $log -v pivot_rc=$rc -v pivot_out="$out" -v pid1_pwd="$(pwd)"

  # Seed 000's way back to the initramfs: a second pivot_root, the disk goes under /mnt.
  back_rc=skipped
  if cd /var/run/rootfs 2>/dev/null; then
    # Not rp_fail: a broken twin may get here with no initramfs at /var/run/rootfs; the
    # check reports it from the stages.
    for fs in proc sys dev; do
      mount --move /$fs ./$fs || echo "rootprobe-guest: mount --move /$fs back failed" >&2
    done
    out=$(pivot_root . mnt 2>&1)
    back_rc=$?
  fi
  probe back -f /tmp/nochdir.log -v back_rc=$back_rc -v back_out="$out"
  rp_finish
}

case "$1" in
  stage2) stage2 "$2" ;;
  *) stage1 ;;
esac
