#!/usr/bin/env bash
# varmail and sqlite under the shim with daemon env knobs, alternating
set -euo pipefail
B=${B:-build}; rounds=${1:-3}
root=/tmp/r/vk; mkdir -p /tmp/p/vk
one() { # KNOBS WORKLOAD
	rm -rf $root; $B/cairn mkfs $root --media emul --log-size 512M --fast-size 2G >/dev/null
	env $1 $B/cairn mount $root /tmp/p/vk; mkdir /tmp/p/vk/d
	local run=($B/cairn run --mount /tmp/p/vk --)
	case $2 in
	varmail) "${run[@]}" $B/bench/bench_fs --dir /tmp/p/vk/d varmail --seconds 3 2>/dev/null | awk -F, '$2=="ops/s"{print $3}' ;;
	sqlite) "${run[@]}" $B/bench/bench_fs --dir /tmp/p/vk/d sqlite --journal delete --n 3000 2>/dev/null | awk -F, '$2=="tx/s"{print $3}' ;;
	esac
	$B/cairn umount /tmp/p/vk
}
for r in $(seq 1 $rounds); do
	for w in varmail sqlite; do
		line="round=$r $w"
		for k in X_NONE=1 X_R1=1 X_R2=1 "X_R1=1 X_R2=1"; do line="$line [$k]=$(one "$k" $w)"; done
		echo "$line"
	done
done
rm -rf $root
