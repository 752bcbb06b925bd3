#!/usr/bin/env bash
# The rate of `cairn tier remove`: a capacity tier holding MIB MiB of
# file data is emptied into the tier below it and removed, timed from the
# command's start to its end, through the daemon of a mounted volume.
# Side by side with `cp` of the same files between two directories of
# the disk the tiers live on, then `sync` (the same bytes read and written
# durably, by the kernel).
# The volume is on the file medium, its parts files in DIR (a disk);
# the median of ROUNDS rounds, MiB/s.
# Usage: bench/tier_remove.sh [MIB] [ROUNDS] [DIR]   (defaults 1024, 3,
# /var/tmp); as root (FUSE).
set -euo pipefail
cd "$(dirname "$0")/.."
mib=${1:-1024}
rounds=${2:-3}
base=${3:-/var/tmp}
[ "$(id -u)" -eq 0 ] || { echo "bench/tier_remove.sh: needs root (FUSE)" >&2; exit 1; }
[ -x build/cairn ] || scripts/build.sh >/dev/null
cairn=$PWD/build/cairn
work=$(mktemp -d "$base/cairn-tier-bench.XXXXXX")
mp=$(mktemp -d /tmp/cairn-tier-bench-mp.XXXXXX)
cleanup() {
	"$cairn" umount "$mp" >/dev/null 2>&1 || true
	rm -rf "$work" "$mp"
}
trap cleanup EXIT

now() { date +%s.%N; }
rate() { awk -v m="$mib" -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", m / (b - a) }'; }
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

round() {
	rm -rf "${work:?}"/*
	local size=$((mib * 3 + 512))
	"$cairn" mkfs "$work/vol" --media file --fast-size 64M \
		--tier "ssd=$work/ssd.part:${size}M" --tier "hdd=$work/hdd.part:${size}M" >/dev/null
	"$cairn" mount "$work/vol" "$mp" >/dev/null
	mkdir "$work/src" "$work/dst"
	for ((i = 0; i < mib / 16; i++)); do
		head -c $((16 << 20)) /dev/urandom >"$work/src/f$i"
	done
	# Written through the mount, the files move down to ssd (the default
	# watermarks, 80%/60% of a 64 MiB fast tier); the removal starts once that has stopped,
	# and its rate counts what is on ssd then.
	cp "$work"/src/f* "$mp/"
	local t0 t1 on_ssd=-1 last=-2 same=0
	while [ "$same" -lt 10 ]; do
		sleep 0.1
		last=$on_ssd
		on_ssd=$("$cairn" stat "$mp" --json | python3 -c 'import json,sys
t = json.load(sys.stdin)["tiers"][1]
print((t["blocks"] - t["free_blocks"]) * 4096 >> 20)')
		if [ "$on_ssd" = "$last" ] && [ "$on_ssd" -gt 0 ]; then same=$((same + 1)); else same=0; fi
	done
	sync
	t0=$(now)
	"$cairn" tier remove "$mp" ssd >/dev/null
	t1=$(now)
	echo "remove $(mib=$on_ssd rate "$t0" "$t1") $on_ssd" >>"$work/../rates.$$"
	sync
	t0=$(now)
	cp "$work"/src/f* "$work/dst/"
	sync
	t1=$(now)
	echo "cp+sync $(rate "$t0" "$t1")" >>"$work/../rates.$$"
	"$cairn" umount "$mp" >/dev/null
	"$cairn" fsck "$work/vol" >/dev/null
}

rm -f "$work/../rates.$$"
for ((r = 0; r < rounds; r++)); do round; done
echo "tier remove ($(awk '$1 == "remove" { print $3 }' "$work/../rates.$$" | median) MiB on the tier) and cp of $mib MiB, $rounds rounds, parts in $base (MiB/s, median):"
for what in remove cp+sync; do
	printf '  %-14s %s\n' "$what" "$(awk -v w="$what" '$1 == w { print $2 }' "$work/../rates.$$" | median)"
done
rm -f "$work/../rates.$$"
