#!/bin/sh
# The initramfs's /init for retain_initrd and retain_initrd_without (seed 002). The system
# runs from its initramfs and wants a root a container runtime can pivot_root from: a tmpfs
# holding the same files, switched to with switch_root. With retain_initrd the kernel kept
# the image, readable at /sys/firmware/initrd: the tmpfs gets it by unpacking the same archive
# a second time. Without it there is no image to read: the files are copied from rootfs.
. /.rootprobe/lib.sh

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# The kernel's modules the result port needs on some architectures (arm64's virtio_pci, virtio_console).
rp_load_modules

meminfo='grep -e MemTotal -e MemFree /proc/meminfo'
probe initramfs -v cmdline="$(cat /proc/cmdline)" \
  -c image-size 'stat -c %s /sys/firmware/initrd' -c meminfo "$meminfo"

mkdir -p /newroot
mount -t tmpfs -o mode=0755 root /newroot || rp_fail "mount -t tmpfs on /newroot failed"
if [ -e /sys/firmware/initrd ]; then
  out=$(/bin/uncpio /sys/firmware/initrd /newroot) || rp_fail "unpacking /sys/firmware/initrd failed: $out"
  echo "unpacked from /sys/firmware/initrd: $out" > /newroot/.retain-source
else
  for e in /* /.rootprobe; do
    case "$e" in
      /proc | /dev | /sys | /newroot) mkdir -p "/newroot$e" ;;
      *) cp -a "$e" /newroot/ || rp_fail "copying $e into /newroot failed" ;;
    esac
  done
  echo "copied from rootfs" > /newroot/.retain-source
fi

mount --move /proc /newroot/proc || rp_fail "mount --move /proc failed"
mount --move /sys /newroot/sys || rp_fail "mount --move /sys failed"
mount --move /dev /newroot/dev || rp_fail "mount --move /dev failed"
exec switch_root /newroot /bin/sh /retain-switched.sh
