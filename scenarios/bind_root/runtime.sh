#!/bin/sh
# Run by unshare -m: the runtime with the seed's workaround. Its own root stays the host's
# root (as a runtime's does: it is not the container), so after the container has pivoted
# and detached its old root, this process still sees the whole mount tree of the namespace.
. /.rootprobe/lib.sh
. /nonroot.sh

mount --bind / / || rp_fail "mount --bind / / failed"
# A path walk from / does not cross what is mounted on / itself; ".." does (it steps onto
# the topmost mount there): the container starts in the bind mount. (chroot(2) gets "/.."
# as it is; a shell's cd would tidy it into "/" first.)
chroot /.. /bin/sh /bind-inside.sh || rp_fail "the container's script failed"

cd /
probe runtime -c host-files 'find / -xdev ! -type d | wc -l'
