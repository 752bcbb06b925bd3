#!/usr/bin/env bash
# Native 4 KiB durable append (bench_append cairn) of two builds side by
# side, alternating within each round, each on a fresh emul volume in a
# tmpfs of huge pages.  Usage: ab_native.sh OLD_BUILD NEW_BUILD [N] [ROUNDS]
set -euo pipefail
old=$1 new=$2 n=${3:-20000} rounds=${4:-7}
dir=$(mktemp -d /tmp/r/ab.XXXXXX)
trap 'rm -rf "$dir"' EXIT
for r in $(seq 1 "$rounds"); do
	for b in old new; do
		bd=$old
		[ "$b" = new ] && bd=$new
		rm -rf "$dir/vol"
		"$bd/cairn" mkfs "$dir/vol" --media emul --log-size 256M --fast-size 1G >/dev/null
		"$bd/bench/bench_append" cairn "$dir/vol" "$n" | sed "s/^/round=$r build=$b /"
	done
done
