#!/bin/sh
# The initramfs's /init for bind_root (seed 002). The initramfs is the whole system (it never
# switches to a disk); a container runtime starts containers from it, each in a mount
# namespace of its own, the way runtimes do: pivot_root into the container's root, then
# detach the old root.
. /.rootprobe/lib.sh
. /nonroot.sh

mount -t proc proc /proc
mount -t devtmpfs devtmpfs /dev
# The kernel's modules the result port needs on some architectures (arm64's virtio_pci, virtio_console).
rp_load_modules

# The host's root: what the kernel unpacked the initramfs into, and how many files it holds.
probe initramfs -c host-files 'find / -xdev ! -type d | wc -l'

# 1. The runtime as it would run anywhere else: pivot_root straight from the host's root.
unshare -m /bin/sh /bind-direct.sh || rp_fail "the container run without the bind mount failed"

# 2. The seed's workaround: mount --bind / / first, and start the container from that bind.
unshare -m /bin/sh /bind-runtime.sh || rp_fail "the container run with mount --bind / / failed"

rp_finish
