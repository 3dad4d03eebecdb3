#!/usr/bin/env bash
# The action's KVM step. Where the runner has /dev/kvm, makes it usable by the runner's user
# with the udev rule GitHub's documentation gives for Linux runners; then lets rootprobe
# decide whether KVM works by its own probe boot (the device existing proves nothing: on some
# machines a guest under it hangs). The answer is cached for the run that follows. Without
# KVM it says so and the job goes on under TCG: this step never fails the job.
#
#   kvm.sh [KERNEL]        (default debian/bookworm; fetched into the cache if need be)
#
# ROOTPROBE_KVM_DEVICE and ROOTPROBE_UDEV_RULES_DIR override /dev/kvm and /etc/udev/rules.d.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dev=${ROOTPROBE_KVM_DEVICE:-/dev/kvm}
rules=${ROOTPROBE_UDEV_RULES_DIR:-/etc/udev/rules.d}
kernel=${1:-debian/bookworm}
say() { echo "kvm: $*"; }

if [ ! -e "$dev" ]; then
  say "no $dev on this runner: rootprobe runs the guests under TCG (slower; its deadlines scale for it)"
  exit 0
fi
if [ ! -r "$dev" ] || [ ! -w "$dev" ]; then
  sudo=()
  [ "$(id -u)" = 0 ] || sudo=(sudo)
  rule='KERNEL=="kvm", GROUP="kvm", MODE="0666", OPTIONS+="static_node=kvm"'
  if echo "$rule" | "${sudo[@]}" tee "$rules/99-kvm4all.rules" >/dev/null &&
    "${sudo[@]}" udevadm control --reload-rules && "${sudo[@]}" udevadm trigger --name-match=kvm; then
    say "udev rule written to $rules/99-kvm4all.rules"
  else
    say "could not apply the udev rule for $dev"
  fi
  if [ ! -r "$dev" ] || [ ! -w "$dev" ]; then
    say "$dev is not readable and writable by $(id -un): rootprobe runs the guests under TCG"
    exit 0
  fi
fi
say "$dev is readable and writable by $(id -un); a probe boot decides whether it works"
answer=$(node "$here/accel.mjs" "$kernel" 2>&1)
status=$?
if [ $status -ne 0 ]; then
  say "the probe boot could not run ($answer): rootprobe decides again at the run"
  exit 0
fi
case "$answer" in
  kvm*) say "KVM works: $answer" ;;
  *) say "no usable KVM: $answer" ;;
esac
exit 0
