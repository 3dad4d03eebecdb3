#!/.rootprobe-agent/busybox sh
# rootprobe external mode: the probe agent. It runs from its own tmpfs (/.rootprobe-agent in
# the initramfs) and follows the distro's flow from outside it:
#
#  1. It waits until PID 1 has switched root (PID 1's root is on another device than the
#     initramfs, and PID 1 runs a program from there), then probes `realroot` chrooted into
#     PID 1's root, so the snapshot shows the real root as the distro's processes see it.
#  2. Unless RP_END=none: it waits until systemd says the boot is over (systemctl
#     is-system-running --wait, bounded), then asks for the distro's own shutdown:
#     `poweroff` run inside the real root (systemctl poweroff on systemd).
#  3. SIGTERM from the switch (systemd kills leftover initrd processes) is ignored. SIGTERM
#     after the switch is systemd-shutdown's: with --storage-daemons the agent probes
#     `killing-spree` (who is left after it); if the distro restored its shutdown initramfs
#     (/run/initramfs/shutdown, dracut), the agent copies the toolkit into it and adds a
#     shutdown hook that probes `shutdown` there; then it exits, so shutdown does not wait.
L=/.rootprobe-agent
BB=$L/busybox
P=$L/proc
N=$L/null # the initramfs's /dev is gone after the switch: our own null device
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
. $L/external.conf
me=$$
cd $L || exit 1

log() { echo "rootprobe-agent: $*"; }

$BB mount -t proc rootprobe-agent-proc $P || { log "cannot mount proc"; exit 1; }
dev0=$($BB stat -L -c %d $P/1/root/)
state=initramfs

in_root() { $BB chroot $P/1/root "$@"; }

# The probe, chrooted into PID 1's root; its files are reached through our own cwd link.
probe_root() {
  if [ -d $P/1/root/proc/$me ]; then
    in_root /proc/$me/cwd/probe "$@"
  else
    log "the real root has no /proc: probing from the agent's own root"
    $L/probe "$@" -v view=agent
  fi
}

# Why the `shutdown` stage will not come: on the console, and as a guest-error frame whose
# message the verdict quotes beside the missing stage.
no_shutdown() {
  log "no shutdown stage: $1"
  probe_root guest-error -v "message=no shutdown stage: $1" > $N 2>&1
}

on_term() {
  [ $state = initramfs ] && return 0
  if [ -n "$RP_DAEMONS" ]; then
    # --storage-daemons: the process table as systemd-shutdown's SIGTERM to every remaining
    # process (all but those whose argv[0] begins with '@') left it; a plain sleep dies of it
    # at once, and systemd-shutdown waits for us before its SIGKILL.
    $BB usleep 200000
    probe_root killing-spree
  fi
  sd=$P/1/root/run/initramfs
  if [ "$RP_SHUTDOWN" = 1 ] && [ -e $sd/shutdown ]; then
    hooks=$sd/$RP_HOOKDIR/shutdown
    $BB mkdir -p $sd/.rootprobe/proc $hooks
    for f in busybox probe lib.sh port; do $BB cp -a $L/$f $sd/.rootprobe/; done
    $BB cp $L/hook-shutdown.sh $hooks/99-rootprobe.sh
    log "shutdown hook installed in the shutdown initramfs"
    # systemd-shutdown returns into it only if access("/run/initramfs/shutdown", X_OK)
    # succeeds, which it cannot on a noexec /run (dracut's shell /init mounts /run so).
    ro=$($BB awk '$5 == "/run" { print $6 }' $P/1/mountinfo 2>$N | $BB tail -n 1)
    case ",$ro," in
      *,noexec,*) no_shutdown "/run is mounted noexec ($ro), so systemd-shutdown cannot execute /run/initramfs/shutdown and will not return into the shutdown initramfs" ;;
    esac
  elif [ "$RP_SHUTDOWN" = 1 ]; then
    no_shutdown "no shutdown initramfs at /run/initramfs (nothing restored it)"
  fi
  $BB umount $P 2>$N
  exit 0
}
trap '' HUP INT
trap on_term TERM

: > $L/started
log "started (pid $me); waiting for the switch of root"
n=0
while [ $state = initramfs ]; do
  r=$($BB stat -L -c %d $P/1/root/ 2>$N)
  if [ -n "$r" ] && [ "$r" != "$dev0" ]; then
    e=$($BB stat -L -c %d $P/1/exe 2>$N)
    n=$((n + 1))
    # PID 1 runs a program from the new root (or 5 s have passed since the root changed).
    if [ "$e" = "$r" ] || [ $n -gt 50 ]; then
      state=realroot
      probe_root realroot
      log "realroot probed"
    fi
  fi
  [ $state = initramfs ] && $BB usleep 100000
done

if [ "$RP_END" != none ]; then
  if in_root /bin/sh -c 'command -v systemctl' > $N 2>&1; then
    # Right after the switch systemd is still deserialising and refuses connections; after a
    # shell initramfs's switch_root it has only just been exec'd and says `offline` (no
    # /run/systemd/system yet): a poweroff asked then is queued before sysinit.target, so
    # units such as dracut-shutdown.service never start. Ask again until it answers with the
    # state of a running manager, then wait for the boot to be over.
    k=0
    st=
    while [ $k -lt "$RP_BOOT_WAIT" ]; do
      st=$($BB timeout "$RP_BOOT_WAIT" $BB chroot $P/1/root systemctl is-system-running --wait 2>&1)
      case "$st" in initializing | starting | running | degraded | maintenance | stopping) break ;; esac
      $BB sleep 1
      k=$((k + 1))
    done
    log "systemd says the system is ${st:-?}"
  fi
  log "asking the distro to power off"
  k=0
  until in_root /bin/sh -c 'exec poweroff'; do
    log "poweroff in the real root failed (status $?)"
    k=$((k + 1))
    [ $k -gt 20 ] && { log "poweroff did not go through"; break; }
    $BB sleep 1
  done
fi
# Stay until systemd-shutdown's SIGTERM (see on_term).
while :; do $BB sleep 1; done
