#!/bin/sh
# Run by the real root's init (busybox init, /etc/inittab sysinit) once switch_root has
# exec'd it: probe the mount tree as the real root sees it, then power off.
. /.rootprobe/lib.sh
probe realroot -f /etc/rootprobe-disk -c ls-root 'ls -a /'
rp_finish
