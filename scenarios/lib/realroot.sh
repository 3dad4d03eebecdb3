#!/bin/sh
# The real root's sysinit (busybox init, /etc/inittab) for the switch_root variants: probe the
# mount tree as the real root sees it, then power off.
. /.rootprobe/lib.sh

# The witness started from the initramfs (/bin/sleeper, a binary only the initramfs has) still
# has the initramfs as its root: through /proc/PID/root the probe lists what the switch left.
w=$(pidof sleeper)
left() { find /proc/$w/root/ -xdev ! -type d 2>/dev/null; }
first=$(left | wc -l)
polls=0
# util-linux's switch_root deletes the initramfs in a child it forks before exec'ing init:
# the deletion may still run when init starts. Wait for it (10 s at most) where asked to.
if [ -f /etc/rootprobe/wait-cleanup ]; then
  while [ -n "$(left | head -n 1)" ] && [ $polls -lt 100 ]; do
    polls=$((polls + 1))
    usleep 100000
  done
fi
probe realroot -f /etc/rootprobe-disk -f /run/rootprobe-run-marker \
  -v files_at_first_look="$first" -v cleanup_polls="$polls" \
  -c rootfs-files "find /proc/$w/root/ -xdev ! -type d" \
  -c rootfs-dirs "cd /proc/$w/root/ && find . -xdev -type d | sort" \
  -c witness-exe-path "ls -l $(readlink /proc/$w/exe | sed 's/ (deleted)$//')"
rp_finish
