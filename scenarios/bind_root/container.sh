# Shared by the bind_root guest scripts (sourced after /.rootprobe/lib.sh and /nonroot.sh).

# make_container DIR: the container's root, a tmpfs at DIR with what the probe and a shell
# need (the toolkit and busybox), an /oldroot to pivot into and a proc of its own.
make_container() {
  mkdir -p "$1"
  mount -t tmpfs -o mode=0755 ctr "$1" || rp_fail "mount -t tmpfs on $1 failed"
  mkdir -p "$1/bin" "$1/proc" "$1/dev" "$1/oldroot"
  cp -a /.rootprobe "$1/" || rp_fail "copying the toolkit into $1 failed"
  cp /bin/busybox "$1/bin/busybox" && ln -s busybox "$1/bin/sh" || rp_fail "copying busybox into $1 failed"
  echo "the container's root" > "$1/.container"
  mount -t proc proc "$1/proc" || rp_fail "mounting proc on $1/proc failed"
}

# root_line: the mountinfo line of the topmost mount at / as this process sees it.
root_line() {
  grep '^[0-9]* [0-9]* [0-9:]* [^ ]* / ' /proc/self/mountinfo | tail -n 1
}

# enter_container DIR: pivot_root into DIR (old root at DIR/oldroot) and detach the old root,
# as runc and crun do; sets rc, errno and msg (try_pivot) for the probe.
enter_container() {
  cd "$1" || rp_fail "cd $1 failed"
  try_pivot . oldroot
  [ $rc -eq 0 ] || return 0
  cd /
  umount -l /oldroot || rp_fail "umount -l /oldroot (detaching the old root) failed"
}
