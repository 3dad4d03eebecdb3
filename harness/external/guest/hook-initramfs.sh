#!/.rootprobe/busybox sh
# rootprobe external mode: the `initramfs` stage, just before the distro switches root.
# Sourced by dracut (hooks/pre-pivot), run by initramfs-tools (scripts/init-bottom/ORDER).
/.rootprobe/probe initramfs
# dracut restores its shutdown initramfs (/run/initramfs) only when a module asked for it
# with need_shutdown (dm, md, crypt, ... do); for the `shutdown` stage we ask the same way.
if [ -e /.rootprobe/want-shutdown ] && command -v need_shutdown > /dev/null 2>&1; then
  need_shutdown
fi
true
