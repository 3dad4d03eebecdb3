#!/bin/sh
# Workaround (a), inside the chroot: / is now a bind mount of the initramfs with a parent.
. /.rootprobe/lib.sh
. /nonroot.sh
cd /
mount -t proc proc /proc
probe bind-chroot

# What a container runtime does next: pivot_root into the container's root.
copy_root /newroot
mount -t proc proc /newroot/proc
try_pivot /newroot /newroot/oldroot
cd /
probe bind-pivot -v rc=$rc -v errno=$errno -v message="$msg"
