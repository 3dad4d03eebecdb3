#!/bin/sh
# Workaround (a), run by unshare -m in a mount namespace of its own.
. /.rootprobe/lib.sh
. /nonroot.sh

mkdir -p /bound
mount --bind / /bound || rp_fail "mount --bind / /bound failed"
cd /bound
mount --move . / || rp_fail "mount --move . / failed"
exec chroot . /bin/sh /nonroot-bind2.sh
