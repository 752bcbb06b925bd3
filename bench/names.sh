#!/usr/bin/env bash
# Durable creates and unlinks, side by side in one run (root required):
#   attach    the client API (cairn_attach) on the daemon of `cairn mount`:
#             creates, writes and unlinks of files it made go into the
#             client's own log where it holds the directory
#   attach-daemon  the same with CAIRN_CLIENT_LOG=0: every call a round
#             trip to the daemon (what attach was before names went into
#             the log)
#   fuse      open/write/close and unlink through the same FUSE mount
#   ext4-ram  the same with fdatasync of the file and fsync of the directory
#             (what makes them durable) on ext4 on a loop device in RAM
# Each prints the median of create (open O_EXCL, write 4 KiB, close),
# unlink, and cycle (both, as a journal file's life) over N files.
# The cairn volume is emul (DRAM emulating pmem), sync mode.
# Usage: bench/names.sh [N] [ROUNDS]   (defaults 5000 files, 3 rounds)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-5000}
rounds=${2:-3}
bin=build/bench/bench_names
[ -x "$bin" ] || scripts/build.sh >/dev/null
source bench/ram.sh
ram_scratch 4G
build/cairn mkfs "$vol" --media emul --log-size 256M --fast-size 1G >/dev/null
echo "# $(date -u +%F) $(nproc) cores; n=$n files x $rounds rounds"
for r in $(seq 1 "$rounds"); do
	build/cairn mount "$vol" "$work/mnt"
	"$bin" attach "$work/mnt" "$n" | sed "s/^/round=$r /"
	CAIRN_CLIENT_LOG=0 "$bin" attach "$work/mnt" "$n" | sed "s/^attach/attach-daemon/; s/^/round=$r /"
	"$bin" posix "$work/mnt" "$n" | sed "s/^posix/fuse/; s/^/round=$r /"
	build/cairn umount "$work/mnt"
	"$bin" fsync "$work/ext4" "$n" | sed "s/^fsync/ext4-ram/; s/^/round=$r /"
done | tee "$work/results.txt"
echo "# medians over the rounds (us)"
awk '{ for (i = 3; i <= NF; i++) { split($i, kv, "="); v[$2 " " kv[1]] = v[$2 " " kv[1]] " " kv[2] } }
     END { for (k in v) { m = split(v[k], x, " ")
             for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (x[j] < x[i]) { t = x[i]; x[i] = x[j]; x[j] = t }
             printf "%-22s %s\n", k, x[int((m + 1) / 2)] } }' "$work/results.txt" | sort
