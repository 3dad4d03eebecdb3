#!/bin/sh
# The container's side of the workaround: its root is the bind mount of / (with the host's
# root as its parent), so pivot_root works; the old root is detached afterwards.
. /.rootprobe/lib.sh
. /nonroot.sh
. /bind-lib.sh

mount -t proc proc /proc || rp_fail "mounting proc in the bind mount failed"
probe bound

make_container /ctr
enter_container /ctr
[ $rc -eq 0 ] || rp_fail "pivot_root from the bind mount of / failed: $msg"
probe container -v rc=$rc -f /.container -c root-entries 'ls -A /'
