#!/bin/bash
# A/B of native threads, two builds alternating within each round, a
# fresh emul volume per run, on a tmpfs of huge pages.  T threads x N
# appends of 4 KiB, each thread to its own file.  LOG is the log's size:
# 1G holds every run below the digest's threshold; 256M makes the digest
# run (and the writes that find no room take the lock exclusively).
# The line's round trip between the cores (bench_pingpong) is printed
# before each round: on this virtual machine it moves between about 110
# and 530 ns from one minute to the next, and writers that share lines
# run at different speeds in the two.
# Usage: ab_threads.sh A_BUILD_DIR B_BUILD_DIR [ROUNDS] [N] [LOG]   (as root)
set -euo pipefail
A=$1; B=$2; R=${3:-7}; N=${4:-20000}; LOG=${5:-1G}
source bench/ram.sh
ram=$(ram_dir 4G)
trap 'ram_release "$ram"' EXIT
echo "# $(date -u +%F) $(nproc) cores; log $LOG; $($A/bench/bench_pingpong)"
for t in ${TLIST:-1 2 4}; do
	for r in $(seq 1 "$R"); do
		echo "threads=$t round=$r $("$A/bench/bench_pingpong" | sed 's/.*: \([0-9]*\) ns.*/pingpong_ns=\1/')"
		for b in "$A" "$B"; do
			rm -rf "$ram/vol"
			"$b/cairn" mkfs "$ram/vol" --media emul --log-size "$LOG" --fast-size 2G >/dev/null
			echo "threads=$t round=$r build=$b $("$b/bench/bench_append" threads-cairn "$ram/vol" "$N" "$t" | sed 's/.*ops_s=/ops_s=/')"
		done
	done
done
