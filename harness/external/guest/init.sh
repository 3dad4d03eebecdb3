#!/.rootprobe/busybox sh
# rootprobe external mode: the first process of a distro's initramfs (rdinit=/.rootprobe/init).
#
# It only starts the probe agent and then execs the distro's own init (/init, or the rdinit=
# the user gave) as PID 1 with the kernel's arguments: the flow after that is the distro's.
#  - A tmpfs of ours (source "rootprobe-agent") on /.rootprobe-agent holds a copy of the
#    toolkit, so it outlives the switch: switch_root, run-init and systemd empty the old root
#    but do not descend into other mounts. It is a folder at the top of the initramfs on
#    purpose: klibc's run-init fails when a folder it empties keeps a mount point inside.
#  - The agent (agent.sh) starts in the background from that copy. busybox sh opens /dev/null
#    for a background job; an archive without /dev/null gets one for that moment, removed
#    again once the agent runs (the agent says so by creating its `started` file).
R=/.rootprobe
BB=$R/busybox
L=/.rootprobe-agent
. $R/external.conf

# busybox sh opens /dev/null for a background job: an archive without one gets it for that
# moment only.
null=
null_on() { [ -e /dev/null ] || { $BB mknod -m 666 /dev/null c 1 3 && null=made; }; }
null_off() { [ "$null" = made ] && $BB rm -f /dev/null; null=; }

if $BB mount -t tmpfs -o mode=0700,size=16m rootprobe-agent $L; then
  for f in busybox probe lib.sh agent external.conf port hook-shutdown.sh; do
    [ -e $R/$f ] && $BB cp -a $R/$f $L/
  done
  $BB mkdir -p $L/proc
  $BB mknod -m 600 $L/console c 5 1
  $BB mknod -m 666 $L/null c 1 3
  null_on
  $BB setsid $L/busybox sh $L/agent < $L/console > $L/console 2>&1 &
  n=0
  while [ ! -e $L/started ] && [ $n -lt 100 ]; do $BB usleep 20000; n=$((n + 1)); done
  null_off
else
  echo "rootprobe: could not mount the agent's tmpfs; only the initramfs stage will report" > /dev/console
fi

# --storage-daemons: two stand-ins for root storage daemons, started here from the
# initramfs's own sleep (not busybox: it dispatches on argv[0]), each in a session of its own
# with its cwd at /. One's argv[0] is '@rootprobe-storaged' (systemd's mark for a daemon the
# switch and the final killing spree must spare), the other's 'rootprobe-storaged-plain'; with
# RP_DAEMONS=unmarked the first lacks the '@' (the broken twin of the check on it).
if [ -n "$RP_DAEMONS" ]; then
  s=
  for c in /usr/bin/sleep /bin/sleep /usr/sbin/sleep /sbin/sleep; do
    [ -f "$c" ] || continue
    case "$($BB readlink -f "$c")" in *busybox*) continue ;; esac
    s=$c
    break
  done
  if [ -n "$s" ]; then
    marked=@rootprobe-storaged
    [ "$RP_DAEMONS" = unmarked ] && marked=rootprobe-storaged
    null_on
    (cd / && exec $BB setsid $BB sh -c "exec -a $marked $s 100000" < /dev/null > /dev/null 2>&1) &
    (cd / && exec $BB setsid $BB sh -c "exec -a rootprobe-storaged-plain $s 100000" < /dev/null > /dev/null 2>&1) &
    $BB usleep 100000
    null_off
    echo "rootprobe: storage daemons started from $s ($marked, rootprobe-storaged-plain)" > /dev/console
  else
    echo "rootprobe: no sleep program of this initramfs's own (only busybox or none): no storage daemons started" > /dev/console
  fi
fi

# No hook point known in this archive (or none in it at all, as in tiny-initramfs): the
# `initramfs` stage is taken here, before the distro's init has run.
[ "$RP_PROBE_IN_WRAPPER" = 1 ] && $R/probe initramfs

exec "${RP_INIT:-/init}" "$@"
echo "rootprobe: exec ${RP_INIT:-/init} failed" > /dev/console
