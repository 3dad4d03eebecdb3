#!/.rootprobe/busybox sh
# PID 1 after pivot_root into the tmpfs shutdown root, exec'd from it: the old (loop) root
# is at /oldroot. Move the API filesystems and the partition out from under it, unmount the
# loop root, detach the loop device, unmount the partition, probe `shutdown`, power off.
# Each step is recorded in /steps (name, exit status, command, output) for the host.
. /.rootprobe/lib.sh
. /shutdown.conf
BB=/.rootprobe/busybox
loop=$($BB cat /loop)

for fs in proc sys dev host; do
  $BB mount --move /oldroot/$fs /$fs || rp_fail "mount --move /oldroot/$fs /$fs failed"
done
exec </dev/null >/dev/console 2>&1

probe pivoted -v loop="$loop"

# A holder on the partition only (for a test twin): a process run from the shutdown root
# with its cwd in /host/images.
if [ "$HOLDER" = host-cwd ]; then
  (cd /host/images && exec $BB sleep 1000000) &
fi

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
has() { case " $FAULTS " in *" $1 "*) return 0 ;; esac; return 1; }

if has lazy-umount; then
  step umount-oldroot $BB umount -l /oldroot
else
  step umount-oldroot $BB umount /oldroot
fi
has no-detach || step detach-loop $BB losetup -d "$loop"
if has lazy-umount; then
  step umount-host $BB umount -l /host
else
  has no-host-umount || step umount-host $BB umount /host
fi

dev=${loop#/dev/}
probe shutdown -v loop="$loop" -f /steps \
  -c losetup "$BB losetup $loop" \
  -c backing-file "$BB cat /sys/block/$dev/loop/backing_file"
rp_finish
