#!/bin/bash
# A/B of P attached client processes (1 and 2), each appending N x 4 KiB to
# its own file, fresh emul volume per run, builds A and B alternating.
# Usage: ab_procs.sh A_BUILD_DIR B_BUILD_DIR [ROUNDS] [N]   (as root, from the repo)
set -euo pipefail
A=$1; B=$2; R=${3:-3}; N=${4:-100000}
source bench/ram.sh
ram=$(ram_dir 8G)
mnt=$(mktemp -d)
for r in $(seq 1 "$R"); do
	for b in "$A" "$B"; do
		for p in 1 2; do
			rm -rf "$ram/vol"
			"$b/cairn" mkfs "$ram/vol" --media emul --log-size 256M --fast-size 2G >/dev/null
			"$b/cairn" mount "$ram/vol" "$mnt"
			t0=$(date +%s.%N)
			for i in $(seq 1 "$p"); do "$b/bench/bench_append" attach "$mnt" "$N" >/dev/null & done
			wait
			t1=$(date +%s.%N)
			echo "round=$r build=$b procs=$p ops_s=$(echo "$p*$N/($t1-$t0)" | bc)"
			"$b/cairn" umount "$mnt"
		done
	done
done
ram_release "$ram"
rmdir "$mnt"
