#!/usr/bin/env bash
# Usage: B=build docs/perf/2026-12-05-d/vm_ab.sh [ROUNDS], from the repository, as root.
# varmail and SQLite rollback, alternating: the mount, the shim, the shim with
# its native path off (CAIRN_CLIENT_LOG=0); a fresh emul volume each run.
set -euo pipefail
B=${B:-build}; rounds=${1:-5}
source bench/ram.sh
root=$(ram_dir 8G); mkdir -p $root/m
trap '$B/cairn umount $root/m >/dev/null 2>&1; ram_release $root' EXIT
one() { # HOW WORKLOAD
	rm -rf $root/vol; $B/cairn mkfs $root/vol --media emul --log-size 512M --fast-size 4G >/dev/null
	$B/cairn mount $root/vol $root/m; mkdir $root/m/d
	local run=()
	case $1 in shim) run=($B/cairn run --mount $root/m --) ;; shim-nolog) run=(env CAIRN_CLIENT_LOG=0 $B/cairn run --mount $root/m --) ;; esac
	case $2 in
	varmail) "${run[@]}" $B/bench/bench_fs --dir $root/m/d varmail --seconds 3 | awk -F, '$2=="ops/s"{print $3}' ;;
	sqlite) "${run[@]}" $B/bench/bench_fs --dir $root/m/d sqlite --journal delete --n 3000 | awk -F, '$2=="tx/s"{print $3}' ;;
	esac
	$B/cairn umount $root/m
}
for r in $(seq 1 $rounds); do
	for w in varmail sqlite; do
		line="round=$r $w"
		for h in fuse shim shim-nolog; do line="$line $h=$(one $h $w)"; done
		echo "$line"
	done
done
