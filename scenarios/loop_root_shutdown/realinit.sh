#!/bin/sh
# /sbin/init of the loop root: PID 1 is this shell script (the loop root's busybox sh).
# It writes a log onto the loop root, probes, and then shuts down the way seed 004 says:
# a tmpfs shutdown root holding what it needs, pivot_root into it, and exec from it, so
# that PID 1 itself no longer holds anything on the old root. shutdown.sh does the rest.
. /.rootprobe/lib.sh
. /etc/rootprobe/shutdown.conf   # HOLDER, FAULTS (the scenario's variant)

loop=$(cat /run/rootprobe-loop)

# Something written to the loop root, so that an unclean unmount leaves journal state behind.
{
  echo "rootprobe loop root log"
  echo "booted on $loop from $(cat /proc/cmdline)"
  i=0
  while [ $i -lt 200 ]; do echo "line $i written by PID 1 before shutdown"; i=$((i + 1)); done
  echo "end of log"
} > /var/log/rootprobe.log

# The negative variant: a holder left behind on the loop root, like sysvinit's /run/initctl
# fifo (seed 004): a process with its cwd in /var/log and the fifo open.
if [ "$HOLDER" = initctl ]; then
  mkfifo /run/initctl
  (cd /var/log && exec sleep 1000000 <> /run/initctl) &
fi

probe realroot -v loop="$loop" -f /var/log/rootprobe.log

# The shutdown root: a tmpfs with the probe toolkit (its static busybox is all the shell
# that is needed), the shutdown script and mount points for what is moved over.
mount -t tmpfs -o mode=0755 shutdown /shutdown || rp_fail "mount -t tmpfs shutdown /shutdown failed"
cp -a /.rootprobe /shutdown/.rootprobe || rp_fail "cannot copy /.rootprobe to the shutdown root"
cp /etc/rootprobe/shutdown.sh /etc/rootprobe/shutdown.conf /shutdown/ || rp_fail "cannot copy the shutdown script"
mkdir /shutdown/oldroot /shutdown/proc /shutdown/sys /shutdown/dev /shutdown/host
echo "$loop" > /shutdown/loop
cd /shutdown || rp_fail "cd /shutdown failed"
pivot_root . oldroot || rp_fail "pivot_root . oldroot failed"
# Now / is the tmpfs; exec its busybox so that PID 1's exe, cwd, root and fds all leave the
# old root (stdio is reopened on the console below the moved /dev in shutdown.sh).
exec /.rootprobe/busybox sh /shutdown.sh </oldroot/dev/null >/oldroot/dev/console 2>&1
