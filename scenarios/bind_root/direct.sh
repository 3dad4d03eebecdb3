#!/bin/sh
# Run by unshare -m: the container runtime without any workaround. Its root is the host's
# root as the kernel left it; pivot_root works only where that root has a parent mount.
. /.rootprobe/lib.sh
. /nonroot.sh
. /bind-lib.sh

make_container /ctr-direct
before=$(root_line)
enter_container /ctr-direct
probe direct -v rc=$rc -v errno=$errno -v message="$msg" -v before="$before" -f /.container
