#!/usr/bin/env bash
set -euo pipefail
B=${B:-/work/main/build}; n=${1:-300000}; P=${2:-2}
vol=/tmp/r/pvol; mnt=/tmp/p/mnt; mkdir -p $mnt; rm -rf $vol
$B/cairn mkfs $vol --media emul --log-size 256M --fast-size 4G >/dev/null
$B/cairn mount $vol $mnt
for i in $(seq 1 $P); do $B/bench/bench_append attach $mnt $n & done
sleep 0.2
perf sched record -o /tmp/p/sched.data -- sleep 0.4 2>&1 | tail -1
wait
$B/cairn umount $mnt; rm -rf $vol
