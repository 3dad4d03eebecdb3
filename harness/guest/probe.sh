#!/.rootprobe/busybox sh
# rootprobe's guest probe. A scenario's guest scripts call it at each point of interest:
#
#   probe STAGE [-f PATH]... [-c NAME COMMAND]... [-v NAME=VALUE]...
#
# It snapshots the mount tree (/proc/self/mountinfo, /proc/1/mountinfo) and every process
# (comm, cmdline, ppid, and the text of its exe, cwd and root links and open fds, decorations
# such as " (deleted)" and "(unreachable)" intact), packs the snapshot as a newc cpio archive
# and sends it on the result channel (ttyS1) in a frame that carries the stage name, the
# byte length and the sha256 (docs/protocol.md).
#
# It brings everything it needs in its own folder (/.rootprobe: this script, a static
# busybox, a ttyS1 device node, an empty snap/ mount point), so it works after a root switch
# onto a root that has no /dev, no busybox and no probe of its own: every command it runs is
# "$BB applet", never a bare name looked up on PATH.
#
#   -f PATH            copy a guest file into the snapshot (files/PATH)
#   -c NAME COMMAND    run COMMAND (sh -c) after the snapshot is taken; keep its output and status
#   -v NAME=VALUE      record a value (vars/NAME)
#
# Side effects, kept as small as they can be: the mount tree and the process table are read
# first; only then is a tmpfs mounted on /.rootprobe/snap to build the archive in (nothing is
# written to any disk), and it is unmounted before the probe returns. If /proc is not mounted
# the probe mounts its own on /.rootprobe/proc for the duration and says so in meta.

D=${0%/*}
BB=$D/busybox
[ -x "$BB" ] || { echo "rootprobe probe: $BB is missing" >&2; exit 70; }

stage=$1
case "$stage" in
  '' | -*) echo "usage: probe STAGE [-f PATH]... [-c NAME COMMAND]... [-v NAME=VALUE]..." >&2; exit 64 ;;
esac
if [ "${#stage}" -gt 64 ] || [ -n "$(echo "$stage" | $BB tr -d 'A-Za-z0-9_.-')" ]; then
  echo "rootprobe probe: bad stage name '$stage' (letters, digits, _ . - only)" >&2
  exit 64
fi
shift

# The result channel: the guest's /dev/ttyS1 if it has one, else the probe's own node.
TTY=/dev/ttyS1
[ -c "$TTY" ] || TTY=$D/ttyS1

PROC=/proc
own_proc=0
if [ ! -r /proc/self/mountinfo ]; then
  PROC=$D/proc
  $BB mkdir -p "$PROC" 2>/dev/null
  $BB mount -t proc rootprobe-proc "$PROC" && own_proc=1
fi

# 1. The mount tree, before the probe changes anything.
mi_self=$($BB cat $PROC/self/mountinfo)
mi_1=$($BB cat $PROC/1/mountinfo 2>/dev/null)

# 2. Somewhere to build the archive that is no disk: a tmpfs on our own mount point.
S=$D/snap
own_tmpfs=0
$BB mkdir -p "$S" 2>/dev/null
if $BB mount -t tmpfs -o size=32m,mode=0700 rootprobe-snap "$S" 2>/dev/null; then
  own_tmpfs=1
fi
W=$S/s
$BB rm -rf "$W" && $BB mkdir -p "$W/proc" "$W/files" "$W/cmd" "$W/vars" || {
  echo "rootprobe probe: cannot write to $S" >&2
  exit 73
}
printf '%s\n' "$mi_self" > "$W/mountinfo.self"
printf '%s\n' "$mi_1" > "$W/mountinfo.1"

# 3. Every process. Under TCG every fork costs 3-6 ms and a guest has a hundred kernel
#    threads, so per process only shell builtins run (read, printf, parameter expansion),
#    plus one cat of the NUL-separated cmdline for processes that are not kernel threads;
#    the links and fds of all processes come from two `ls -l` calls.
pids() { all_pids="$*"; }
cd "$PROC" && pids [0-9]*
cd "$W/proc" && $BB mkdir $all_pids
# fields after "pid (comm) ": state ppid pgrp session tty tpgid flags ...
stat_fields() { ppid=$2; flags=$7; }
for p in $all_pids; do
  dir=$PROC/$p
  o=$W/proc/$p
  read -r c < "$dir/comm" 2>/dev/null && printf '%s' "$c" > "$o/comm"
  read -r st < "$dir/stat" 2>/dev/null || continue
  stat_fields ${st##*) }
  printf '%s' "$ppid" > "$o/ppid"
  if [ $((flags & 0x200000)) = 0 ]; then # not PF_KTHREAD
    $BB cat "$dir/cmdline" > "$o/cmdline" 2>/dev/null
  else
    : > "$o/cmdline"
  fi
done
cd /
# "lrwxrwxrwx 1 0 0 0 Nov 22 03:20 /proc/7/cwd -> /tmp (deleted)": the name is the last word
# before the first " -> ", the link text everything after it.
$BB ls -l $PROC/[0-9]*/exe $PROC/[0-9]*/cwd $PROC/[0-9]*/root 2>/dev/null |
  while IFS= read -r line; do
    case "$line" in *" -> "*) ;; *) continue ;; esac
    left=${line%% -> *}
    t=${line#* -> }
    f=${left##* $PROC/}
    [ -d "$W/proc/${f%%/*}" ] && printf '%s' "$t" > "$W/proc/$f"
  done
$BB ls -l $PROC/[0-9]*/fd 2>/dev/null |
  while IFS= read -r line; do
    case "$line" in
      "$PROC"/*/fd:) p=${line#$PROC/}; p=${p%%/*} ;;
      *" -> "*)
        left=${line%% -> *}
        [ -d "$W/proc/$p" ] && printf '%s %s\n' "${left##* }" "${line#* -> }" >> "$W/proc/$p/fd" ;;
    esac
  done

# 4. What the scenario asked for.
while [ $# -gt 0 ]; do
  case "$1" in
    -f)
      [ -n "$2" ] || { echo "rootprobe probe: -f needs a path" >&2; exit 64; }
      rel=${2#/}
      $BB mkdir -p "$W/files/$($BB dirname "$rel")"
      [ -e "$2" ] && $BB cat "$2" > "$W/files/$rel" 2>/dev/null
      shift 2 ;;
    -c)
      [ -n "$2" ] && [ -n "$3" ] || { echo "rootprobe probe: -c needs a name and a command" >&2; exit 64; }
      $BB sh -c "$3" > "$W/cmd/$2.out" 2>&1 < /dev/null
      echo $? > "$W/cmd/$2.rc"
      shift 3 ;;
    -v)
      case "$2" in
        *=*) printf '%s' "${2#*=}" > "$W/vars/${2%%=*}" ;;
        *) echo "rootprobe probe: -v needs NAME=VALUE" >&2; exit 64 ;;
      esac
      shift 2 ;;
    *) echo "rootprobe probe: unknown argument '$1'" >&2; exit 64 ;;
  esac
done

read -r up _ < $PROC/uptime
{
  echo "stage=$stage"
  echo "probe_pid=$$"
  echo "uname_r=$($BB uname -r)"
  echo "uptime=$up"
  echo "own_proc=$own_proc"
  echo "own_tmpfs=$own_tmpfs"
} > "$W/meta"

# 5. Pack, frame, send.
(cd "$W" && $BB find * | $BB cpio -o -H newc 2>/dev/null | $BB gzip -1) > "$S/payload"
len=$($BB wc -c < "$S/payload")
sum=$($BB sha256sum "$S/payload")
sum=${sum%% *}
$BB stty -F "$TTY" raw -echo 2>/dev/null
{
  echo "ROOTPROBE-BEGIN v1 $stage $len $sum"
  $BB base64 "$S/payload"
  echo "ROOTPROBE-END $stage"
} > "$TTY"
rc=$?

# `rootprobe shell --stage STAGE` puts rootprobe.shell=STAGE on the kernel command line: once
# that stage is sent (and the probe's own mounts are gone again), an interactive shell on the
# console; the guest script goes on when it exits.
shell_here=0
read -r kcmd < $PROC/cmdline
case " $kcmd " in *" rootprobe.shell=$stage "*) shell_here=1 ;; esac

cd /
if [ $own_tmpfs = 1 ]; then $BB umount "$S"; else $BB rm -rf "$W" "$S/payload"; fi
[ $own_proc = 1 ] && $BB umount "$PROC"
if [ $shell_here = 1 ] && [ -c /dev/console ]; then
  echo "rootprobe: stage '$stage' sent; guest shell (exit: the guest goes on; Ctrl-a x: quit QEMU)" > /dev/console
  PS1="[$stage] \w # " $BB setsid $BB cttyhack $BB sh -i < /dev/console > /dev/console 2>&1
fi
exit $rc
