#!/bin/bash
# A/B of processes writing through the FUSE mount (each appends 4 KiB
# writes to its own file, fdatasync-free: a write through the mount is
# durable when it returns), the daemon of build A then of build B on a
# fresh emul volume (1 GiB log) in each round; P = 1, 2, 4 processes.
# Usage: ab_fuse_procs.sh A_BUILD B_BUILD [ROUNDS] [N]   (as root)
set -euo pipefail
A=$1; B=$2; R=${3:-5}; N=${4:-20000}
source bench/ram.sh
ram=$(ram_dir 4G)
mnt=$(mktemp -d)
trap 'fusermount3 -u "$mnt" 2>/dev/null || true; rmdir "$mnt"; ram_release "$ram"' EXIT
parallel() { # P BIN: appends/s over the writers' own window
	local p=$1 bin=$2 out
	out=$(mktemp)
	for i in $(seq 1 "$p"); do "$bin" write "$mnt" "$N" >>"$out" & done
	wait
	awk -v p="$p" -v n="$N" '{ for (i = 1; i <= NF; i++) { split($i, kv, "=")
	         if (kv[1] == "from_us" && (!a || kv[2] < a)) a = kv[2]
	         if (kv[1] == "to_us" && kv[2] > b) b = kv[2] } }
	     END { printf "%.0f", p * n / ((b - a) / 1e6) }' "$out"
	rm -f "$out"
}
echo "# $(date -u +%F) $(nproc) cores; N=$N"
for r in $(seq 1 "$R"); do
	echo "round=$r $("$A/bench/bench_pingpong" | sed 's/.*: \([0-9]*\) ns.*/pingpong_ns=\1/')"
	for b in "$A" "$B"; do
		rm -rf "$ram/vol"
		"$b/cairn" mkfs "$ram/vol" --media emul --log-size 1G --fast-size 2G >/dev/null
		"$b/cairn" mount "$ram/vol" "$mnt"
		for p in 1 2 4; do
			echo "round=$r build=$b procs=$p ops_s=$(parallel "$p" "$b/bench/bench_append")"
		done
		"$b/cairn" unmount "$mnt" 2>/dev/null || fusermount3 -u "$mnt"
	done
done
