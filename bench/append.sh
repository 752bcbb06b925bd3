#!/usr/bin/env bash
# Durable 4 KiB append latency, side by side in one run (root required for
# the loop mount):
#   cairn    native API, emul backend (DRAM emulating pmem: survives a process
#            crash, not a power loss), sync mode: durable when write returns
#   ext4-ram write + fdatasync on ext4 on a loop device backed by RAM
#   tmpfs    write alone: no durability at all, the upper bound
# Usage: bench/append.sh [N] [ROUNDS]   (defaults 20000 appends, 5 rounds)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-20000}
rounds=${2:-5}
bin=build/bench/bench_append
[ -x "$bin" ] || scripts/build.sh >/dev/null
work=$(mktemp -d /tmp/cairn-bench.XXXXXX)
# Volume, image and tmpfs contender on one tmpfs of 2 MiB pages (bench/ram.sh).
source bench/ram.sh
ram=$(ram_dir 8G)
img=$ram/ext4.img
vol=$ram/vol
cleanup() {
	umount "$work/ext4" 2>/dev/null || true
	[ -n "${loop:-}" ] && losetup -d "$loop" 2>/dev/null || true
	ram_release "$ram"
	rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/ext4" "$ram/tmpfs"
truncate -s 2G "$img"
loop=$(losetup -f --show "$img")
mkfs.ext4 -q -F "$loop"
mount "$loop" "$work/ext4"
build/cairn mkfs "$vol" --media emul --log-size 256M --fast-size 1G >/dev/null

echo "# $(date -u +%F) $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; n=$n appends x $rounds rounds"
for r in $(seq 1 "$rounds"); do
	"$bin" cairn "$vol" "$n" | sed "s/^/round=$r /"
	"$bin" fdatasync "$work/ext4" "$n" | sed "s/^cairn/x/; s/^fdatasync/ext4-ram-fdatasync/; s/^/round=$r /"
	"$bin" write "$ram/tmpfs" "$n" | sed "s/^write/tmpfs-write/; s/^/round=$r /"
done | tee "$work/results.txt"
echo "# medians of per-round p50 (us), and ratios"
awk '{split($2,a,"="); mode=$2; for(i=3;i<=NF;i++){split($i,kv,"="); if(kv[1]=="p50_us") v[mode]=v[mode]" "kv[2]}}
END { for (m in v) { n=split(v[m],x," "); for(i=1;i<=n;i++)for(j=i+1;j<=n;j++)if(x[j]<x[i]){t=x[i];x[i]=x[j];x[j]=t}; med[m]=x[int((n+1)/2)]; printf "%-20s p50=%.3f us\n", m, med[m] }
      printf "ext4-ram-fdatasync / cairn = %.1fx\n", med["ext4-ram-fdatasync"]/med["cairn"]
      printf "cairn / tmpfs-write        = %.2fx\n", med["cairn"]/med["tmpfs-write"] }' "$work/results.txt"
