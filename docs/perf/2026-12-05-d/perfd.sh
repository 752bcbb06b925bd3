#!/usr/bin/env bash
# perf record (dwarf call graphs) of the daemon while P client processes each
# append N x 4 KiB (bench_append attach) to a fresh emul volume; LOG sets the
# log size (default 2G: no digest).  Usage: perfd.sh [N] [P], from the
# repository, as root; /tmp/r a tmpfs of 2 MiB pages (bench/ram.sh says why).
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
