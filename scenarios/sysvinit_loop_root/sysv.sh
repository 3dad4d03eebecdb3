#!/bin/sh
# Run by Debian's sysvinit (PID 1 on the loop root) from /etc/inittab (`rp:2:once:`). Writes a
# log onto the loop root, probes `realroot` once PID 1 has its /run/initctl fifo open, builds
# the tmpfs shutdown root (the probe toolkit, a copy of the real init with its libraries and
# inittab, the shutdown script), pivot_roots into it (which moves PID 1's root and cwd along)
# and execs the tmpfs's busybox, so that only PID 1 can still hold the old root.
. /.rootprobe/lib.sh
. /etc/rootprobe/sysv.conf   # WAY, REQUEST (the variant)

loop=$(cat /run/rootprobe-loop)
{
  echo "rootprobe sysvinit loop root log"
  echo "booted on $loop from $(cat /proc/cmdline)"
  i=0
  while [ $i -lt 200 ]; do echo "line $i written before shutdown"; i=$((i + 1)); done
  echo "end of log"
} > /var/log/rootprobe.log

# init creates and opens /run/initctl in its main loop.
n=0
until ls -l /proc/1/fd/ 2>/dev/null | grep -q ' /run/initctl$'; do
  n=$((n + 1))
  [ $n -gt 100 ] && rp_fail "PID 1 did not open /run/initctl within 10 s"
  usleep 100000
done

probe realroot -v loop="$loop" -f /var/log/rootprobe.log -f /etc/inittab

S=/shutdown
mount -t tmpfs -o mode=0755 shutdown $S || rp_fail "mount -t tmpfs shutdown $S failed"
cp -a /.rootprobe $S/.rootprobe || rp_fail "cannot copy /.rootprobe to the shutdown root"
mkdir -p $S/sbin $S/etc $S/run $S/oldroot $S/proc $S/sys $S/dev $S/host
# The re-exec target: the same init binary, its libraries (the only ones on this root) and inittab.
# (/lib64 holds x86-64's program interpreter; arm64's and riscv64's are in /lib.)
cp -a /sbin/init $S/sbin/init && ln -s init $S/sbin/telinit && cp -a /lib $S/ && { [ ! -e /lib64 ] || cp -a /lib64 $S/; } &&
  cp /etc/inittab $S/etc/inittab ||
  rp_fail "cannot copy init and its libraries to the shutdown root"
cp /etc/rootprobe/shutdown.sh /etc/rootprobe/sysv.conf /etc/rootprobe/*.bin $S/ || rp_fail "cannot copy the shutdown script"
echo "$loop" > $S/loop
cd $S || rp_fail "cd $S failed"
pivot_root . oldroot || rp_fail "pivot_root . oldroot failed"
exec /.rootprobe/busybox sh /shutdown.sh </oldroot/dev/null >/oldroot/dev/console 2>&1
