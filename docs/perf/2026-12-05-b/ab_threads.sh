#!/bin/bash
# A/B of native threads, two builds alternating within each round, a
# fresh emul volume per run (1 GiB log: no digest), on a tmpfs of huge
# pages.  T threads x N appends of 4 KiB, each thread to its own file.
# Usage: ab_threads.sh A_BUILD_DIR B_BUILD_DIR [ROUNDS] [N]   (as root)
set -euo pipefail
A=$1; B=$2; R=${3:-7}; N=${4:-20000}
source bench/ram.sh
ram=$(ram_dir 4G)
trap 'ram_release "$ram"' EXIT
echo "# $(date -u +%F) $(nproc) cores; $($A/bench/bench_pingpong)"
for t in 1 2 4; do
	for r in $(seq 1 "$R"); do
		for b in "$A" "$B"; do
			rm -rf "$ram/vol"
			"$b/cairn" mkfs "$ram/vol" --media emul --log-size 1G --fast-size 2G >/dev/null
			echo "threads=$t round=$r build=$b $("$b/bench/bench_append" threads-cairn "$ram/vol" "$N" "$t" | sed 's/.*ops_s=/ops_s=/')"
		done
	done
done
