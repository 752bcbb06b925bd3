#!/bin/bash
# Native threads of one process, each appending 4 KiB records to its own
# file: the code before (A) and after (B) writes beside each other,
# alternating, beside ext4 on a RAM loop (write + fdatasync) and tmpfs
# (write alone) with the same writers, in one run.  A fresh emul volume
# per cairn run, its log (1 GiB) large enough that no digest runs.  The
# line's round trip between the cores (bench_pingpong) is printed before
# each round: on this virtual machine it moves between about 110 and 530
# ns from one minute to the next.
# Usage: threads_side_by_side.sh A_BUILD B_BUILD [ROUNDS] [N]   (as root)
set -euo pipefail
A=$1; B=$2; R=${3:-5}; N=${4:-20000}
source bench/ram.sh
ram_scratch 6G
mkdir -p "$ram/tmpfs"
echo "# $(date -u +%F) $(nproc) cores; N=$N appends per thread"
for r in $(seq 1 "$R"); do
	for t in 1 2 4; do
		echo "round=$r threads=$t $("$A/bench/bench_pingpong" | sed 's/.*: \([0-9]*\) ns.*/pingpong_ns=\1/')"
		for b in "$A" "$B"; do
			rm -rf "$vol"
			"$b/cairn" mkfs "$vol" --media emul --log-size 1G --fast-size 2G >/dev/null
			echo "round=$r threads=$t build=$b $("$b/bench/bench_append" threads-cairn "$vol" "$N" "$t" | sed 's/.*ops_s=/ops_s=/')"
		done
		echo "round=$r threads=$t ext4-ram $("$B/bench/bench_append" threads-fdatasync "$work/ext4" "$N" "$t" | sed 's/.*ops_s=/ops_s=/')"
		echo "round=$r threads=$t tmpfs $("$B/bench/bench_append" threads-write "$ram/tmpfs" "$N" "$t" | sed 's/.*ops_s=/ops_s=/')"
	done
done
