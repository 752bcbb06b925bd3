#!/usr/bin/env bash
# tiers.sh CAIRN - a volume four times larger than its fast tier, through
# the FUSE mount: a 64 MiB fast tier over a 128 MiB "ssd" and a 256 MiB
# "hdd" tier (files in the scratch directory).  256 MiB of cold files are
# written while a few hot files are read again and again; the digest
# thread migrates meanwhile.  Then: the fast tier is back under its high
# watermark, cairn stat shows data on every tier, and after a remount every
# file's SHA-256 is what was written; cairn fsck finds the volume clean;
# that one read of every file promoted nothing.
# The mount sets the watermarks to 70%/50%.  Skipped (77) unless root
# with /dev/fuse.
set -euo pipefail
CAIRN=${1:?usage: tiers.sh CAIRN}
PROG=tiers
source "$(dirname "$0")/lib.sh"
[ "$(id -u)" -eq 0 ] && [ -c /dev/fuse ] || { echo "SKIP: program_tiers: needs root and /dev/fuse"; exit 77; }

SCRATCH=$(mktemp -d /dev/shm/cairn-tiers.XXXXXX)
VOL=$SCRATCH/vol
MNT=$SCRATCH/mnt
cleanup() {
	"$CAIRN" umount "$MNT" >/dev/null 2>&1 || true
	rm -rf "$SCRATCH"
}
trap cleanup EXIT
mkdir "$MNT"
"$CAIRN" mkfs "$VOL" --media emul --log-size 32M --fast-size 64M \
	--tier "ssd=$SCRATCH/ssd.tier:128M" --tier "hdd=$SCRATCH/hdd.tier:256M" >/dev/null
"$CAIRN" mount "$VOL" "$MNT" --high-watermark 70 --low-watermark 50

# json_tiers: "name used_blocks extents" for each tier, from cairn stat.
json_tiers() {
	"$CAIRN" stat "$1" --json | python3 -c '
import json, sys
for t in json.load(sys.stdin)["tiers"]:
    print(t["name"], t["blocks"] - t["free_blocks"], t["extents"], t["blocks"])'
}

T0=$(now)
mkdir "$MNT/hot" "$MNT/cold"
for h in $(seq 1 4); do
	head -c 4M /dev/urandom >"$MNT/hot/h$h"
done
for c in $(seq 1 64); do # 64 x 4 MiB = 256 MiB: four times the fast tier
	head -c 4M /dev/urandom >"$MNT/cold/c$c"
	for h in $(seq 1 4); do
		cat "$MNT/hot/h$h" >/dev/null
	done
done
note "wrote 272 MiB with hot reads: $(since "$T0")s"
(cd "$MNT" && find . -type f -print0 | sort -z | xargs -0 sha256sum) >"$SCRATCH/sums"

# The digest thread migrates after each checkpoint.  Wait for the fast
# tier to get under its high watermark for as long as migration makes
# progress (a batch committed, or the fast tier's use falling): how fast
# it goes depends on the machine, sanitizers and parallel tests, so only a
# migration that stalls fails here (and CTest's timeout ends a hang).
progress() { # prints "used migrations" for the fast tier
	"$CAIRN" stat "$MNT" --json | python3 -c '
import json, sys
s = json.load(sys.stdin)
t = s["tiers"][0]
print(t["blocks"] - t["free_blocks"], s["migrations"])'
}
last="" stalled=0
while :; do
	read -r _ used _ blocks < <(json_tiers "$MNT" | awk "NR == 1")
	[ $((used * 100)) -le $((blocks * 70)) ] && break
	now_state=$(progress)
	if [ "$now_state" = "$last" ]; then
		stalled=$((stalled + 1))
		[ "$stalled" -lt 30 ] || die "migration made no progress for 30 s (fast tier: $used of $blocks blocks used)"
	else
		stalled=0 last=$now_state
	fi
	sleep 1
done
json_tiers "$MNT" | while read -r name used extents blocks; do
	note "tier $name: $((used * 4 / 1024)) MiB used of $((blocks * 4 / 1024)) MiB, $extents extents"
	[ "$extents" -gt 0 ] || die "tier $name holds no extent"
done
read -r _ used _ blocks < <(json_tiers "$MNT" | awk "NR == 1")
[ $((used * 100)) -le $((blocks * 70)) ] || die "fast tier still above its high watermark"
"$CAIRN" stat "$MNT" | grep -q '^migration     watermarks 70%/50%' ||
	die "cairn stat does not show the mount's watermarks"

"$CAIRN" umount "$MNT"
"$CAIRN" fsck "$VOL" >"$SCRATCH/fsck.out" || { cat "$SCRATCH/fsck.out"; die "fsck found problems"; }
"$CAIRN" mount "$VOL" "$MNT"
(cd "$MNT" && sha256sum --quiet -c "$SCRATCH/sums") || die "contents differ after remount"
note "every byte verified after remount: $(since "$T0")s"
# That was one read of every file (the page cache is new after the
# remount), in 128 KiB FUSE READs: one scan, which must promote nothing.
# (Each READ once counted as a read of its 1 MiB window, so one scan of
# the cold files brought most of what it read back to the fast tier.)
up=$("$CAIRN" stat "$MNT" --json | python3 -c '
import json, sys
print(json.load(sys.stdin)["tiers"][0]["in_up_blocks"])')
[ "$up" -eq 0 ] || die "one read of every file promoted $((up * 4)) KiB to the fast tier"
"$CAIRN" umount "$MNT"
