#!/usr/bin/env bash
# One client process's durable 4 KiB append latency (bench_append attach,
# N appends) on a fresh emul volume served by `cairn mount`, two builds
# alternating.  Usage: lat_stream.sh OLD/build NEW/build ROUNDS N
set -u
old=$1 new=$2 rounds=${3:-5} n=${4:-100000}
vol=/tmp/r/lvol mnt=/tmp/p/lmnt
mkdir -p $mnt
for r in $(seq 1 "$rounds"); do
	for b in old new; do
		B=$([ $b = old ] && echo "$old" || echo "$new")
		rm -rf $vol
		$B/cairn mkfs $vol --media emul --log-size 256M --fast-size 2G >/dev/null
		$B/cairn mount $vol $mnt
		echo "round=$r $b $($B/bench/bench_append attach $mnt "$n" | grep -o 'p50_us=[0-9.]* p99_us=[0-9.]* mean_us=[0-9.]*')"
		$B/cairn umount $mnt
	done
done
rm -rf $vol
