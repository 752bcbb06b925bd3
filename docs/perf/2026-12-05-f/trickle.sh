#!/usr/bin/env bash
# The daemon's processor time while one client writes in bursts: BURST
# appends of 4 KiB, then a sleep of GAP ns, N appends in all (trickle.c,
# linked with build/libcairn.a); two builds alternating, fresh volumes.
# Usage: trickle.sh OLD/build NEW/build ROUNDS N BURST GAP_NS
set -u
old=$1 new=$2 rounds=$3 n=$4 burst=$5 gap=$6
vol=/tmp/r/tvol mnt=/tmp/p/tmnt tick=$(getconf CLK_TCK)
mkdir -p $mnt
for r in $(seq 1 "$rounds"); do
	for b in old new; do
		B=$([ $b = old ] && echo "$old" || echo "$new")
		rm -rf $vol
		$B/cairn mkfs $vol --media emul --log-size 256M --fast-size 2G >/dev/null
		$B/cairn mount $vol $mnt
		pid=$(pgrep -f "cairn mount $vol" | head -1)
		d0=$(awk '{print $14+$15}' /proc/$pid/stat); t0=$(date +%s.%N)
		/tmp/trickle $mnt "$n" "$burst" "$gap"
		d1=$(awk '{print $14+$15}' /proc/$pid/stat); t1=$(date +%s.%N)
		echo "round=$r $b burst=$burst gap_ns=$gap wall_s=$(echo "$t1-$t0" | bc | cut -c1-5) daemon_cpu_s=$(echo "($d1-$d0)/$tick" | bc -l | cut -c1-5)"
		$B/cairn umount $mnt
	done
done
rm -rf $vol
