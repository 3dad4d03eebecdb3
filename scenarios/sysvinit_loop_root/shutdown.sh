#!/.rootprobe/busybox sh
# The shutdown, run from the tmpfs root (the old loop root at /oldroot), by a child of PID 1.
# Moves the API filesystems and the partition out, probes `pivoted`, tries the variant's way
# (seed 004) to make PID 1 let go of /oldroot, waits up to 10 s for PID 1's exe, cwd, root and
# fds to leave /oldroot (probe `released`), then unmounts the loop root, detaches the loop
# device and unmounts the partition, each step recorded in /steps (probe `shutdown`).
. /.rootprobe/lib.sh
. /sysv.conf
BB=/.rootprobe/busybox
loop=$($BB cat /loop)

for fs in proc sys dev host; do
  $BB mount --move /oldroot/$fs /$fs || rp_fail "mount --move /oldroot/$fs /$fs failed"
done
exec </dev/null >/dev/console 2>&1

probe pivoted -v loop="$loop"

: > /steps
# step NAME COMMAND...: runs it, records "NAME<TAB>STATUS<TAB>COMMAND<TAB>OUTPUT" (one line).
step() {
  name=$1
  shift
  out=$("$@" 2>&1)
  rc=$?
  printf '%s\t%s\t%s\t%s\n' "$name" "$rc" "$*" "$(echo "$out" | $BB tr '\n\t' '  ')" >> /steps
  return $rc
}

case "$WAY" in
  # The loop root's own telinit, chrooted so that it reaches the fifo PID 1 has open.
  telinit) step way $BB chroot /oldroot /sbin/telinit u ;;
  # The crafted struct init_request, written to the old fifo (reload-init.bin of seed 004) in
  # one write(2): cat's second (empty) splice can find the fifo already closed by init (SIGPIPE).
  request) step way $BB dd if=/$REQUEST of=/oldroot/run/initctl bs=384 count=1 ;;
  usr1) step way $BB kill -USR1 1 ;;
  *) rp_fail "unknown WAY=$WAY" ;;
esac

# Who of PID 1 still points into /oldroot: its exe, cwd, root and fd links.
held() { $BB ls -l /proc/1/exe /proc/1/cwd /proc/1/root /proc/1/fd/ 2>/dev/null | $BB grep -c ' -> /oldroot'; }
n=0
while [ "$(held)" != 0 ] && [ $n -lt 50 ]; do
  $BB usleep 200000
  n=$((n + 1))
done
# A moment more for a re-exec'd init to settle (reopen its fifo) before the readback.
$BB sleep 1
probe released -v loop="$loop" -v waited_ms=$((n * 200)) -f /steps

step umount-oldroot $BB umount /oldroot
step detach-loop $BB losetup -d "$loop"
step umount-host $BB umount /host

dev=${loop#/dev/}
probe shutdown -v loop="$loop" -f /steps \
  -c losetup "$BB losetup $loop" \
  -c backing-file "$BB cat /sys/block/$dev/loop/backing_file"
rp_finish
