#!/usr/bin/env bash
# A/B of two builds of the daemon in the steady regime of bench/scaling.sh
# (a 256 MiB log, SN appends per writer, the digest running throughout):
# one and two client processes, and one native thread; a fresh volume per
# run, the builds alternating.  The clients are the tree's build of
# bench_append; each BUILD's cairn serves the volume, and its
# bench_append is the native writer.
# Usage: ab_steady.sh ROUNDS SN OLD_BUILD NEW_BUILD   (as root, from the tree)
set -euo pipefail
rounds=$1 sn=$2
shift 2
source bench/ram.sh
source bench/writers.sh
ram_scratch 8G
for r in $(seq 1 "$rounds"); do
	for b in "$@"; do
		for kind in client-1 client-2 native-1; do
			rm -rf "$vol"
			"$b/cairn" mkfs "$vol" --media emul --log-size 256M --fast-size 4G >/dev/null
			case $kind in
			client-*)
				"$b/cairn" mount "$vol" "$work/mnt"
				ops=$(parallel "${kind#client-}" attach "$work/mnt" "$sn")
				"$b/cairn" umount "$work/mnt" ;;
			native-1)
				ops=$("$b/bench/bench_append" threads-cairn "$vol" "$sn" 1 |
					sed -n 's/.*ops_s=\([0-9]*\).*/\1/p') ;;
			esac
			echo "round=$r build=$b $kind ops_s=$ops"
		done
	done
done
