#!/bin/bash
# A/B of two builds, alternating within each round, fresh emul volume per
# run (256 MiB log, so the digest runs during every run):
#   procs-P   P attached client processes (1, 2, 4), each appending N x 4 KiB
#             to its own file; aggregate over the appends' own window
#   native-T  T threads (1, 2, 4) of one process on the native API, 4N
#             appends in all (4N/T each): the same bytes for every T
# Usage: ab_digest_stores.sh A_BUILD_DIR B_BUILD_DIR [ROUNDS] [N]
#        (as root, from the repo; defaults 3 rounds, N = 40000)
set -euo pipefail
A=$1; B=$2; R=${3:-3}; N=${4:-40000}
source bench/ram.sh
ram=$(ram_dir 6G)
mnt=$(mktemp -d)
trap 'umount "$mnt" 2>/dev/null || true; ram_release "$ram"; rmdir "$mnt"' EXIT
fresh() {
	rm -rf "$ram/vol"
	"$1/cairn" mkfs "$ram/vol" --media emul --log-size 256M --fast-size 2G >/dev/null
}
for r in $(seq 1 "$R"); do
	for b in "$A" "$B"; do
		for p in 1 2 4; do
			fresh "$b"
			"$b/cairn" mount "$ram/vol" "$mnt"
			out=$(mktemp)
			for i in $(seq 1 "$p"); do "$b/bench/bench_append" attach "$mnt" "$N" >>"$out" & done
			wait
			"$b/cairn" umount "$mnt"
			awk -v p="$p" -v n="$N" -v r="$r" -v b="$b" '{ for (i = 1; i <= NF; i++) { split($i, kv, "=")
				if (kv[1] == "from_us" && (!a || kv[2] < a)) a = kv[2]
				if (kv[1] == "to_us" && kv[2] > e) e = kv[2] } }
				END { printf "round=%s build=%s procs-%d ops_s=%.0f\n", r, b, p, p * n / ((e - a) / 1e6) }' "$out"
			rm -f "$out"
		done
		for t in 1 2 4; do
			fresh "$b"
			"$b/bench/bench_append" threads-cairn "$ram/vol" $((4 * N / t)) "$t" |
				sed "s/^threads-cairn threads=\([0-9]*\)/native-\1/; s|^|round=$r build=$b |"
		done
	done
done
