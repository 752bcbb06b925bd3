#!/bin/bash
# A/B of two builds under `cairn run`, alternating within each round, a
# fresh emul volume per run (on a tmpfs of huge pages): varmail ops/s
# (bench_fs varmail, 3 s) and SQLite rollback-journal FULL tx/s (2000 tx).
# Usage: ab_spare_files.sh A_BUILD_DIR B_BUILD_DIR [ROUNDS]   (as root)
set -euo pipefail
A=$1; B=$2; R=${3:-5}
source bench/ram.sh
ram=$(ram_dir 6G)
mnt=$(mktemp -d)
trap 'umount "$mnt" 2>/dev/null || true; ram_release "$ram"; rmdir "$mnt"' EXIT
for r in $(seq 1 "$R"); do
	for b in "$A" "$B"; do
		rm -rf "$ram/vol"
		"$b/cairn" mkfs "$ram/vol" --media emul --log-size 256M --fast-size 2G >/dev/null
		"$b/cairn" mount "$ram/vol" "$mnt"
		mkdir "$mnt/v" "$mnt/s"
		v=$("$b/cairn" run --mount "$mnt" -- "$b/bench/bench_fs" --dir "$mnt/v" varmail --seconds 3 2>/dev/null | awk -F, '$1 == "varmail" { print $3 }')
		s=$("$b/cairn" run --mount "$mnt" -- "$b/bench/bench_fs" --dir "$mnt/s" sqlite --journal delete --n 2000 2>/dev/null | awk -F, '$1 == "sqlite_delete" { print $3 }')
		"$b/cairn" umount "$mnt"
		echo "round=$r build=$b varmail_ops_s=$v sqlite_delete_tx_s=$s"
	done
done
