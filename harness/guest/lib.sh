# rootprobe's guest library, sourced by a scenario's guest scripts:  . /.rootprobe/lib.sh
# Everything here runs through the toolkit's own static busybox, so it works on any root.

RP=/.rootprobe
BB=$RP/busybox

# probe STAGE [-f PATH]... [-c NAME COMMAND]... [-v NAME=VALUE]...   (see probe.c)
probe() { $RP/probe "$@"; }

rp_log() { echo "rootprobe-guest: $*" >&2; }

# Something the scenario needed went wrong: say so on the console, report a `guest-error`
# stage with the message (the host shows it), and power off.
rp_fail() {
  echo "rootprobe-guest: FAILED: $*" >&2
  probe guest-error -v message="$*"
  $BB sync
  $BB poweroff -f
  while :; do $BB sleep 1; done
}

# The last stage: tell the host there is nothing more, and power off.
rp_finish() {
  probe done "$@"
  $BB sync
  $BB poweroff -f
  while :; do $BB sleep 1; done
}

# Load the kernel modules the image builder put in, in dependency order.
rp_load_modules() {
  [ -f /etc/rootprobe/modules.load ] || return 0
  while read -r m; do
    [ -n "$m" ] || continue
    $BB insmod "$m" 2>/dev/null || {
      # already loaded or built in is fine; anything else is a failure
      $BB grep -q "^$($BB basename "${m%.ko}" | $BB tr - _) " /proc/modules 2>/dev/null ||
        rp_fail "insmod $m failed"
    }
  done < /etc/rootprobe/modules.load
}

# rp_wait_dev /dev/vda [seconds]: devtmpfs creates block nodes as drivers find disks.
rp_wait_dev() {
  n=0
  while [ ! -b "$1" ]; do
    n=$((n + 1))
    [ $n -gt $((${2:-20} * 10)) ] && rp_fail "$1 did not appear"
    $BB usleep 100000
  done
}
