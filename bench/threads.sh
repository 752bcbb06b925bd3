#!/usr/bin/env bash
# Threads of one process appending through the native API, each to its own
# file, on a fresh emul volume whose log (1 GiB) holds every run's data
# below the digest threshold: what the threads cost each other, without
# the digest that bench/attach.sh's runs of two and four threads (whose
# data passes the threshold of its 256 MiB log) also pay.
#   T threads x N appends of 4 KiB, ROUNDS fresh volumes per T; medians.
# The volume sits on a tmpfs of 2 MiB pages (bench/ram.sh says why).
# Usage: bench/threads.sh [N] [ROUNDS]   (defaults 20000 appends, 5 rounds)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-20000}
rounds=${2:-5}
bin=build/bench/bench_append
[ -x "$bin" ] && [ -x build/bench/bench_pingpong ] || scripts/build.sh >/dev/null
source bench/ram.sh
ram=$(ram_dir 4G)
vol=$ram/vol
trap 'ram_release "$ram"' EXIT
echo "# $(date -u +%F) $(nproc) cores; n=$n appends per thread x $rounds rounds"
echo "# $(build/bench/bench_pingpong)"
for t in 1 2 4; do
	for r in $(seq 1 "$rounds"); do
		rm -rf "$vol"
		build/cairn mkfs "$vol" --media emul --log-size 1G --fast-size 2G >/dev/null
		"$bin" threads-cairn "$vol" "$n" "$t"
	done | sed 's/.*ops_s=//' | sort -n | awk -v t="$t" '{ v[NR] = $1 }
		END { printf "threads-%d native ops_s (sorted):", t
		      for (i = 1; i <= NR; i++) printf " %s", v[i]
		      printf "  median %s\n", v[int((NR + 1) / 2)] }'
done
