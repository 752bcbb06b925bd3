#!/usr/bin/env bash
# The tiered workload of bench/run: a data set four times larger than the
# fast tier, so that most of it must live on a capacity tier, read and
# written with zipfian keys over files in a 90/10 and a 50/50 read/write mix.
#
#   bench/tiered.sh CAIRN_BIN RESULTS_DIR RAW_CSV ROUNDS QUICK
#
# appends "workload,contender,round,metric,unit,value" rows to RAW_CSV and
# the contenders to RESULTS_DIR/contenders.tsv, logs to RESULTS_DIR/log.txt,
# and prints the notes for summary.md (tier use, what was skipped and why)
# on stdout; progress goes to stderr.
#
# Contenders, all on the same media layout (a DRAM part and a disk part):
#   cairn-tiered  FUSE mount of a volume whose log and fast tier (F) are emul
#                 (DRAM emulating persistent memory) and whose capacity tier
#                 "disk" is a file on the disk
#   ext4-disk     ext4 on a loop device whose image is on the disk
#   ext4-dmcache  ext4 on an LVM dm-cache volume in writeback mode: the cache
#                 a loop device in RAM (F of cache blocks), the origin a
#                 loop device on the disk -- the two-layer cache that Strata
#                 compared against.  Writeback, because a durable write then
#                 completes once it is on the RAM cache, as cairn's is once
#                 in its emul log: the fair rival for write latency.
#                 Skipped, with the reason, where the kernel has no
#                 device-mapper cache target (e.g. in a container).
#
# Per contender: the data set (4F in 256 files) is written once (the load,
# timed on its own); on cairn the script then waits for migration to settle
# (the fast tier under its high watermark and no more blocks moving, or a
# timeout) and reports the use of each tier.  Then, per round, a 90/10 and a
# 50/50 mix of 64 KiB reads and durable 64 KiB overwrites (pwrite +
# fdatasync) at 4 KiB-aligned offsets, files picked zipfian (theta 0.99),
# for a fixed time; the page cache is dropped before every mix phase, so
# that ext4 starts from its media.  The cairn mount keeps the kernel page
# cache too (keep_cache, not direct_io), dropped the same way; its emul
# fast tier lives in RAM (bench/ram.sh), which is not a cache and is not dropped.
set -euo pipefail
cairn=${1:?usage: tiered.sh CAIRN_BIN RESULTS_DIR RAW_CSV ROUNDS QUICK}
results=${2:?}
raw=${3:?}
rounds=${4:-3}
quick=${5:-0}
drv=$(dirname "$cairn")/bench/bench_fs
log=$results/log.txt
python=/usr/bin/python3
[ -x "$python" ] || python=python3

# ---- sizes -------------------------------------------------------------------
# The same 256 files in both modes, so that the zipfian popularity is the same;
# only the file size (and so the data set) scales with the fast tier.
files=256 chunk=65536 theta=0.99
if [ "$quick" = 1 ]; then
	fast_mib=64 log_size=64M mix_seconds=1.5 settle_timeout=20
else
	fast_mib=256 log_size=256M mix_seconds=20 settle_timeout=120
fi
file_kib=$((fast_mib * 4 * 1024 / files))
data_mib=$((fast_mib * 4))
tier_mib=$((data_mib * 2))          # cairn's capacity tier: room to spare
img_mib=$((data_mib * 3 / 2 + 128))  # ext4 images and the dm-cache origin

note() { echo "tiered: $*"; }
progress() { echo "[tiered] $*" >&2; }

if ! "$cairn" mkfs --help 2>&1 | grep -q -- '--tier'; then
	note "skipped: 'cairn mkfs --help' offers no --tier option (no capacity tiers yet)"
	exit 0
fi
[ -x "$drv" ] || { note "skipped: no $drv (run scripts/build.sh)"; exit 0; }
is_root=0
[ "$(id -u)" -eq 0 ] && is_root=1

# ---- set-up and tear-down ----------------------------------------------------------
source "$(dirname "${BASH_SOURCE[0]}")/ram.sh"
shm=$(ram_dir 16G)
disk=$(mktemp -d /var/tmp/cairn-tiered.XXXXXX)
mnt=$disk/mnt
mkdir -p "$mnt"
loops=()
mounts=()
fuse_mounts=()
vg=
pvs=()
# LVM on loop devices without udev (containers, minimal systems): only loop
# devices are scanned, no devices file, no waiting for udev events.
lvm_conf='devices { use_devicesfile=0 filter=["a|^/dev/loop|","r|.*|"] } activation { udev_sync=0 udev_rules=0 }'
lvm_() { DM_DISABLE_UDEV=1 lvm "$1" --config "$lvm_conf" "${@:2}"; }

cleanup() {
	set +e
	for m in "${fuse_mounts[@]}"; do
		"$cairn" umount "$m" >/dev/null 2>&1 || umount -l "$m" 2>/dev/null
	done
	for m in "${mounts[@]}"; do
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
	done
	if [ -n "$vg" ]; then
		# -ff: a writeback cache is flushed, or dropped if it cannot be.
		lvm_ lvremove -y -ff "$vg" >>"$log" 2>&1
		lvm_ vgremove -y -ff "$vg" >>"$log" 2>&1
		for p in "${pvs[@]}"; do
			lvm_ pvremove -y -ff "$p" >>"$log" 2>&1
		done
	fi
	for l in "${loops[@]}"; do
		losetup -d "$l" 2>/dev/null
	done
	ram_release "$shm"
	rm -rf "$disk"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

new_loop() { # image size-MiB; sets $loopdev (not a subshell: loops must keep it)
	truncate -s "${2}M" "$1"
	loopdev=$(losetup -f --show "$1") || return 1
	loops+=("$loopdev")
}

mkfs_mount_ext4() { # device mountpoint
	# Inode tables and journal initialised now: the lazy-init thread would
	# otherwise write in the background during the measurements.
	mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$1" >>"$log" 2>&1 || return 1
	mkdir -p "$2"
	mount "$1" "$2" || return 1
	mounts+=("$2")
}

# Why dm-cache cannot be used here, or nothing if it can.
dmcache_why() {
	if ! command -v lvm >/dev/null; then
		if [ "$is_root" = 1 ]; then
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq lvm2 >>"$log" 2>&1 ||
				{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq lvm2; } >>"$log" 2>&1
		fi
		command -v lvm >/dev/null || { echo "lvm2 is not installed and could not be"; return; }
	fi
	[ -e /dev/mapper/control ] || modprobe dm_mod >/dev/null 2>&1 || true
	if [ ! -e /dev/mapper/control ] || ! dmsetup version >/dev/null 2>&1; then
		echo "the kernel offers no device-mapper here (no /dev/mapper/control, no dm_mod module to load)"
		return
	fi
	dmsetup targets 2>/dev/null | grep -q '^cache ' || modprobe dm_cache >/dev/null 2>&1 || true
	dmsetup targets 2>/dev/null | grep -q '^cache ' ||
		echo "device-mapper has no cache target (dm_cache module missing)"
}

setup_dmcache() { # mountpoint; returns 1 with $why set on failure
	local origin cache
	new_loop "$disk/dmcache-origin.img" "$((img_mib + 64))" || { why="losetup failed"; return 1; }
	origin=$loopdev
	# The cache device: F of cache blocks plus room for the pool's metadata.
	new_loop "$shm/dmcache-cache.img" "$((fast_mib + 64))" || { why="losetup failed"; return 1; }
	cache=$loopdev
	vg=cairnbench_$$_$RANDOM
	pvs=("$origin" "$cache")
	lvm_ pvcreate -y -ff "$origin" "$cache" >>"$log" 2>&1 || { why="pvcreate failed (see log.txt)"; return 1; }
	lvm_ vgcreate "$vg" "$origin" "$cache" >>"$log" 2>&1 || { why="vgcreate failed (see log.txt)"; return 1; }
	lvm_ lvcreate -y -n origin -L "${img_mib}M" "$vg" "$origin" >>"$log" 2>&1 ||
		{ why="lvcreate of the origin failed (see log.txt)"; return 1; }
	lvm_ lvcreate -y --type cache-pool -n cpool -L "${fast_mib}M" --poolmetadataspare n \
		"$vg" "$cache" >>"$log" 2>&1 || { why="lvcreate of the cache pool failed (see log.txt)"; return 1; }
	lvm_ lvconvert -y --type cache --cachepool "$vg/cpool" --cachemode writeback \
		"$vg/origin" >>"$log" 2>&1 || { why="lvconvert to a cache failed (see log.txt)"; return 1; }
	mkfs_mount_ext4 "/dev/mapper/$vg-origin" "$1" || { why="mkfs.ext4 or mount failed (see log.txt)"; return 1; }
}

# ---- contenders ----------------------------------------------------------------
declare -A where semantics
contenders=()
add() { contenders+=("$1"); where[$1]=$2 semantics[$1]=$3; }

progress "set-up in $shm and $disk (fast tier ${fast_mib} MiB, data set ${data_mib} MiB)"
if "$cairn" mkfs "$shm/vol" --media emul --log-size "$log_size" --fast-size "${fast_mib}M" \
	--tier "disk=$disk/tier.disk:${tier_mib}M" >>"$log" 2>&1 &&
	mkdir -p "$mnt/cairn" && "$cairn" mount "$shm/vol" "$mnt/cairn" >>"$log" 2>&1; then
	fuse_mounts+=("$mnt/cairn")
	add cairn-tiered "$mnt/cairn" \
		"FUSE mount; log and fast tier (${fast_mib} MiB) on emul (DRAM emulating persistent memory: survives a process crash, not a power loss), capacity tier a file on the disk; sync mode: durable when each call returns; the same pwrite+fdatasync calls as ext4"
else
	note "cairn-tiered skipped: mkfs or mount failed (see log.txt)"
fi
if [ "$is_root" = 1 ]; then
	if new_loop "$disk/ext4.img" "$img_mib" && mkfs_mount_ext4 "$loopdev" "$mnt/ext4-disk"; then
		add ext4-disk "$mnt/ext4-disk" \
			"ext4 on a loop device backed by a file on the same disk as cairn's capacity tier; durable at pwrite+fdatasync"
	else
		note "ext4-disk skipped: loop device or mkfs.ext4 failed (see log.txt)"
	fi
	why=$(dmcache_why)
	if [ -z "$why" ] && setup_dmcache "$mnt/ext4-dmcache"; then
		add ext4-dmcache "$mnt/ext4-dmcache" \
			"ext4 on LVM dm-cache, writeback: cache a loop device in RAM (${fast_mib} MiB of cache blocks; DRAM: survives a process crash, not a power loss) over a loop device on the disk; durable at pwrite+fdatasync (on the cache device)"
	else
		note "ext4-dmcache skipped: $why"
	fi
else
	note "ext4-disk and ext4-dmcache skipped: not root (no loop devices)"
fi
[ ${#contenders[@]} -gt 0 ] || { note "skipped: no contender could be set up"; exit 0; }
# ext4-disk may be there already from the other workloads: one line each.
for c in "${contenders[@]}"; do
	cut -f1 "$results/contenders.tsv" 2>/dev/null | grep -qx -- "$c" ||
		printf '%s\tmount\t%s\n' "$c" "${semantics[$c]}" >>"$results/contenders.tsv"
done

dropped=1
drop_caches() {
	sync
	if ! echo 3 >/proc/sys/vm/drop_caches 2>/dev/null; then
		[ "$dropped" = 1 ] && note "cannot drop the page cache (not root?): mixes start warm"
		dropped=0
	fi
}

# Prints "fast_used fast_size disk_used disk_size down up" in MiB from
# 'cairn stat --json', then whether migration is done ("settled" if the fast
# tier is at most at its high watermark).
tier_use() {
	"$cairn" stat "$1" --json 2>>"$log" | "$python" -c '
import json, sys
s = json.load(sys.stdin)
bs = s["block_size"] / 1048576
t = {x["name"]: x for x in s["tiers"]}
f, d = t["fast"], t["disk"]
fu, fs = (f["blocks"] - f["free_blocks"]) * bs, f["blocks"] * bs
du, ds = (d["blocks"] - d["free_blocks"]) * bs, d["blocks"] * bs
print("%.1f %.1f %.1f %.1f %.1f %.1f %s" % (fu, fs, du, ds, d["in_down_blocks"] * bs,
      f["in_up_blocks"] * bs, "settled" if fu <= fs * s["high_watermark"] / 100 else "busy"))'
}

record() { sed "s/^/tiered,$1,$2,/" >>"$raw"; }

mix_args=(--files "$files" --file-kib "$file_kib")
run_drv() { # contender round args...
	local c=$1 r=$2
	shift 2
	echo "== tiered $c round $r: $*" >>"$log"
	if ! "$drv" --dir "${where[$c]}" --sync data "$@" 2>>"$log" | record "$c" "$r"; then
		echo "bench/run: tiered $* on $c (round $r) failed; see $log" >&2
		return 1
	fi
}

note "data set ${data_mib} MiB in $files files of $((file_kib / 1024)) MiB, fast tier ${fast_mib} MiB; mixes of $((chunk / 1024)) KiB reads and durable writes (pwrite+fdatasync) at 4 KiB-aligned offsets, files zipfian (theta $theta, popularity shuffled over the files), ${mix_seconds} s per mix and round; page cache dropped before each load and mix"
note "the machine's RAM holds the whole data set, so after a range's first read the kernel page cache serves it again on every contender (cairn's FUSE mount uses keep_cache, not direct_io): read medians are mostly cached reads, the misses to the media show in the read p99"

# ---- load ------------------------------------------------------------------------
failed=()
for c in "${contenders[@]}"; do
	progress "load ${data_mib} MiB into $c"
	drop_caches
	run_drv "$c" 1 tiered-load "${mix_args[@]}" || { failed+=("$c"); continue; }
	[ "$c" = cairn-tiered ] || continue
	# Let migration settle: the fast tier at most at its high watermark and
	# nothing moving between two polls, or the timeout.
	t0=$EPOCHREALTIME
	prev='' state=''
	while :; do
		use=$(tier_use "${where[$c]}") || { note "cairn stat --json failed (see log.txt)"; break; }
		read -r fu fs du ds down up state <<<"$use"
		[ "$state" = settled ] && [ "$use" = "$prev" ] && break
		awk -v a="$t0" -v b="$EPOCHREALTIME" -v t="$settle_timeout" 'BEGIN { exit !(b - a > t) }' && break
		prev=$use
		sleep 0.5
	done
	settle=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }')
	echo "settle_time,s,$settle" | record "$c" 1
	if [ -n "${fu:-}" ]; then
		printf 'tier_fast_used,MiB,%s\ntier_disk_used,MiB,%s\n' "$fu" "$du" | record "$c" 1
		note "cairn-tiered after the load and ${settle} s of settling ($state): fast tier ${fu} of ${fs} MiB used, disk tier ${du} of ${ds} MiB used (${down} MiB migrated down)"
	fi
done
for c in "${failed[@]}"; do
	note "$c dropped: its load failed (see log.txt)"
	for i in "${!contenders[@]}"; do
		[ "${contenders[$i]}" = "$c" ] && unset 'contenders[i]'
	done
done
contenders=("${contenders[@]}")

# ---- the rounds --------------------------------------------------------------------
for r in $(seq 1 "$rounds"); do
	for pct in 90 50; do
		for c in "${contenders[@]}"; do
			progress "mix $pct/$((100 - pct)) round $r/$rounds $c"
			drop_caches
			run_drv "$c" "$r" tiered-mix "${mix_args[@]}" --read-pct "$pct" --chunk "$chunk" \
				--theta "$theta" --seconds "$mix_seconds" --seed "$r" || true
		done
	done
done
if [ -n "${where[cairn-tiered]:-}" ] && use=$(tier_use "${where[cairn-tiered]}"); then
	read -r fu fs du ds down up state <<<"$use"
	note "cairn-tiered after the mixes: fast tier ${fu} MiB, disk tier ${du} MiB used; ${down} MiB migrated down and ${up} MiB promoted back up in all"
fi
