#!/bin/sh
# The initramfs's /init for nonroot_initramfs (seed 002). It never leaves the initramfs for a
# disk: it tries pivot_root straight from the initramfs, then the two user-space workarounds.
. /.rootprobe/lib.sh
. /nonroot.sh

mount -t proc proc /proc
mount -t devtmpfs devtmpfs /dev
# The kernel's modules the result port needs on some architectures (arm64's virtio_pci, virtio_console).
rp_load_modules

# Where the kernel unpacked us: rootfs (the top of the mount tree), rootfs with a parent
# (newer kernels), or a tmpfs atop rootfs (a kernel honouring nonroot_initramfs).
probe initramfs -v cmdline="$(cat /proc/cmdline)" \
  -c kernel-nonroot 'dmesg | grep -e "nonroot_initramfs: " -e "Unknown kernel command line parameters"'

# 1. pivot_root from the initramfs into a tmpfs copy of it, in the initial mount namespace.
copy_root /newroot
mount -t proc proc /newroot/proc # for the probe, should the pivot work
cd /
try_pivot /newroot /newroot/oldroot
if [ $rc -eq 0 ]; then
  cd /
  probe direct -v rc=$rc -v errno=$errno -v message="$msg"
  # and back (seed 000's way back to the initramfs), so the workarounds start from it too
  try_pivot /oldroot /oldroot/newroot
  [ $rc -eq 0 ] || rp_fail "pivot_root back into the initramfs failed: $msg"
  cd /
else
  probe direct -v rc=$rc -v errno=$errno -v message="$msg"
fi
umount /newroot/proc

# 2. Workaround (a), as container runtimes (crun) and mkosi do it: in a mount namespace of
# its own, bind-mount / onto a folder, move that over /, chroot into it; pivot_root then works.
unshare -m /bin/sh /nonroot-bind.sh || rp_fail "workaround (a) in its own mount namespace failed"

# 3. Workaround (b), the two-stage archive: the copy in /newroot becomes the root by
# switch_root, which empties the initramfs first.
mount --move /proc /newroot/proc || rp_fail "mount --move /proc failed"
mount --move /dev /newroot/dev || rp_fail "mount --move /dev failed"
exec switch_root /newroot /bin/sh /nonroot-switched.sh
