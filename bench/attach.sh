#!/usr/bin/env bash
# Many processes on one volume, side by side in one run (root required):
#   latency of one durable 4 KiB append, p50 over N appends:
#     native        cairn_write in a process that mounts the volume itself
#     attach        cairn_write through cairn_attach, the volume served by
#                   `cairn mount` (so the FUSE mount is up beside it)
#     fuse          write() on that FUSE mount (sync mode: durable on return)
#     ext4-ram      write() + fdatasync() on ext4 on a loop device in RAM
#     seen          a client's 4 KiB pwrite, then a pread() of it through the
#                   mount's page cache (the daemon makes the kernel forget
#                   the stale page): the price of coherence, per pair (the
#                   mount has the file open, so the client holds no grant
#                   and writes through the daemon)
#     seen-stat     a client's 4 KiB O_APPEND write in its own log, then a
#                   stat() through the mount that must show the new size
#     handoff-*     two processes writing one file in turns: the holder of
#                   its grant (local writes) and the other (through the
#                   daemon, which applies the holder's log first)
#   aggregate throughput of P processes (1, 2, 4), each appending N times to
#   its own file: attach, fuse, ext4-ram (write + fdatasync), tmpfs (write)
#   aggregate throughput of T threads (1, 2, 4) of one process, each
#   appending N times to its own file: native (the process mounts the
#   volume), attach, ext4-ram, tmpfs
# All cairn volumes are emul (DRAM emulating pmem), sync mode.  One 256 MiB
# log serves every writer count, so at the defaults one writer stays below
# the digest's threshold while two and four pass it: bench/scaling.sh
# compares writer counts within one regime.
# Usage: bench/attach.sh [N] [ROUNDS]   (defaults 20000 appends, 3 rounds)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-20000}
rounds=${2:-3}
bin=build/bench/bench_append
[ -x "$bin" ] && [ -x build/bench/bench_pingpong ] || scripts/build.sh >/dev/null
# The volume, the ext4 image and the tmpfs contender share one tmpfs of
# 2 MiB pages (bench/ram.sh says why).
source bench/ram.sh
source bench/writers.sh
ram_scratch 8G
mkdir -p "$ram/tmpfs"
build/cairn mkfs "$vol" --media emul --log-size 256M --fast-size 1G >/dev/null

echo "# $(date -u +%F) $(nproc) cores; n=$n appends x $rounds rounds"
echo "# $(build/bench/bench_pingpong)"
for r in $(seq 1 "$rounds"); do
	"$bin" cairn "$vol" "$n" | sed "s/^cairn/native/; s/^/round=$r /"
	for t in 1 2 4; do
		"$bin" threads-cairn "$vol" "$n" "$t" |
			sed "s/^threads-cairn threads=\([0-9]*\)/threads-\1 native/; s/^/round=$r /"
	done
	build/cairn mount "$vol" "$work/mnt"
	"$bin" attach "$work/mnt" "$n" | sed "s/^/round=$r /"
	"$bin" write "$work/mnt" "$n" | sed "s/^write/fuse/; s/^/round=$r /"
	"$bin" seen "$work/mnt" "$n" | sed "s/^/round=$r /"
	"$bin" seen-stat "$work/mnt" "$n" | sed "s/^/round=$r /"
	"$bin" handoff-holder "$work/mnt" "$n" | sed "s/^/round=$r /"
	"$bin" fdatasync "$work/ext4" "$n" | sed "s/^fdatasync/ext4-ram/; s/^/round=$r /"
	for p in 1 2 4; do
		echo "round=$r procs-$p attach ops_s=$(parallel "$p" attach "$work/mnt" "$n")"
		echo "round=$r procs-$p fuse ops_s=$(parallel "$p" write "$work/mnt" "$n")"
		echo "round=$r procs-$p ext4-ram ops_s=$(parallel "$p" fdatasync "$work/ext4" "$n")"
		echo "round=$r procs-$p tmpfs ops_s=$(parallel "$p" write "$ram/tmpfs" "$n")"
	done
	for t in 1 2 4; do
		for m in attach:"$work/mnt" fdatasync:"$work/ext4" write:"$ram/tmpfs"; do
			"$bin" "threads-${m%%:*}" "${m#*:}" "$n" "$t" |
				sed "s/^threads-\([a-z]*\) threads=\([0-9]*\)/threads-\2 \1/; s/ fdatasync / ext4-ram /; s/ write / tmpfs /; s/^/round=$r /"
		done
	done
	build/cairn umount "$work/mnt"
done | tee "$work/results.txt"
echo "# medians over the rounds"
awk '{ key = $2; if ($2 ~ /^(procs|threads)-/) key = $2 " " $3
       for (i = 3; i <= NF; i++) { split($i, kv, "=")
         if (kv[1] == "p50_us" || kv[1] == "ops_s") v[key] = v[key] " " kv[2] } }
     END { for (k in v) { n = split(v[k], x, " ")
             for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (x[j] < x[i]) { t = x[i]; x[i] = x[j]; x[j] = t }
             printf "%-22s %s\n", k, x[int((n + 1) / 2)] } }' "$work/results.txt" | sort
