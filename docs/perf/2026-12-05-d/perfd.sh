#!/usr/bin/env bash
set -euo pipefail
B=${B:-build}; n=${1:-200000}; P=${2:-2}
vol=/tmp/r/pvol; mnt=/tmp/p/mnt; rm -rf $vol
$B/cairn mkfs $vol --media emul --log-size ${LOG:-2G} --fast-size 3G >/dev/null
$B/cairn mount $vol $mnt
pid=$(pgrep -f "cairn mount $vol" | head -1)
perf record --call-graph dwarf,16384 -F 2000 -p $pid -o /tmp/p/perf.data 2>/dev/null &
pp=$!
sleep 0.5
for i in $(seq 1 $P); do $B/bench/bench_append attach $mnt $n & done; wait %2 %3 2>/dev/null || true
sleep 0.2; kill -INT $pp; wait $pp || true
$B/cairn umount $mnt; rm -rf $vol
