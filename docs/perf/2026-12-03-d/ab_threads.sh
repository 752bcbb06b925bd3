#!/usr/bin/env bash
# A/B of bench_append threads-cairn: A and B binaries alternate per round,
# each on a fresh emul volume on a tmpfs of 2 MiB pages (bench/ram.sh).
#   ab_threads.sh A_BUILD B_BUILD ROUNDS N
set -euo pipefail
cd "$(dirname "$0")/../../.."
A=$1 B=$2 rounds=${3:-5} n=${4:-20000}
source bench/ram.sh
ram=$(ram_dir 8G)
trap 'ram_release "$ram"' EXIT
for r in $(seq 1 "$rounds"); do
	for t in 1 2 4; do
		for side in A B; do
			b=$A; [ "$side" = B ] && b=$B
			rm -rf "$ram/vol"
			"$b/cairn" mkfs "$ram/vol" --media emul --log-size 1G --fast-size 2G >/dev/null
			echo "round=$r side=$side $("$b/bench/bench_append" threads-cairn "$ram/vol" "$n" "$t")"
		done
	done
done
