#!/bin/sh
. /.rootprobe/lib.sh              # probe, rp_finish, rp_fail, rp_load_modules, rp_wait_dev
mount -t proc proc /proc
mount -t devtmpfs devtmpfs /dev
probe before                      # snapshot: mountinfo, processes, links
mkdir -p /scratch
mount -t tmpfs -o size=1m scratch /scratch || rp_fail "mount tmpfs on /scratch failed"
(cd /scratch && exec sleep 1000) &
probe after -c df 'df /scratch'   # -c: a command run after the snapshot, output kept
rp_finish                         # probes `done` and powers off
