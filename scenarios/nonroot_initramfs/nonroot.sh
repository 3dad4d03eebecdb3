# Shared by the nonroot_initramfs guest scripts (sourced after /.rootprobe/lib.sh).

# errno_of MESSAGE: the errno name in a busybox error message ("pivot_root: ...: Invalid argument").
errno_of() {
  case "$1" in
    *"Invalid argument"*) echo EINVAL ;;
    *"Device or resource busy"*) echo EBUSY ;;
    *"Operation not permitted"*) echo EPERM ;;
    *"No such file or directory"*) echo ENOENT ;;
    *"Not a directory"*) echo ENOTDIR ;;
    *"Permission denied"*) echo EACCES ;;
    "") echo none ;;
    *) echo unknown ;;
  esac
}

# try_pivot NEW PUT_OLD: runs pivot_root and sets rc, msg and errno for the probe's -v.
try_pivot() {
  msg=$(pivot_root "$1" "$2" 2>&1)
  rc=$?
  [ $rc -eq 0 ] && errno=none || errno=$(errno_of "$msg")
}

# copy_root DEST: a tmpfs at DEST holding a copy of the files of / (not of the API filesystems
# nor of DEST), with empty /proc, /dev, /sys and /oldroot to mount on.
copy_root() {
  mkdir -p "$1"
  mount -t tmpfs -o mode=0755 tmpfs "$1" || rp_fail "mount -t tmpfs on $1 failed"
  for e in /* /.rootprobe; do
    case "$e" in
      /proc | /dev | /sys | "$1") mkdir -p "$1$e" ;;
      *) cp -a "$e" "$1/" || rp_fail "copying $e into $1 failed" ;;
    esac
  done
  mkdir -p "$1/oldroot"
  echo "a copy of the initramfs" > "$1/.nonroot-copy"
}
