#!/usr/bin/env bash
# The shim's write path before and after the position became one word
# changed by compare-and-swap: two builds' `cairn run`, alternating within
# each round, each run on a fresh emul volume mounted by that build:
#   dd-128   dd bs=128 of 200,000 blocks of /dev/zero into a new file
#   dd-4k    dd bs=4096 of 50,000 blocks
#   seekw    bench_seekw: 200,000 pairs of lseek(SEEK_SET) and write() of
#            128 bytes (the program's own lseek before each write)
# Microseconds per write (per pair for seekw), from the wall time of the
# whole program.
# Usage: ab_shimpos.sh OLD_BUILD NEW_BUILD [ROUNDS]   (as root)
set -euo pipefail
old=$1 new=$2 rounds=${3:-5}
here=$(cd "$(dirname "$0")" && pwd)
root=/tmp/r/ab-shimpos
mountpoint -q /tmp/r || { mkdir -p /tmp/r && mount -t tmpfs -o size=6G,huge=within_size tmpfs /tmp/r; }
rm -rf "$root" && mkdir -p "$root/m"
trap 'rm -rf "$root"' EXIT
gcc -O2 -o "$root/seekw" -x c - <<'C'
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>
int main(int argc, char **argv)
{
	int fd = open(argv[1], O_CREAT | O_WRONLY | O_TRUNC, 0644);
	char b[128] = {0};
	int n = atoi(argv[2]);
	for (int i = 0; i < n; i++)
		if (lseek(fd, (off_t)(i % 1000) * 128, SEEK_SET) < 0 || write(fd, b, 128) != 128)
			return 1;
	return close(fd);
}
C
us() { # count, then the command
	local n=$1 t0 t1
	shift
	t0=$EPOCHREALTIME
	"$@" >/dev/null 2>&1
	t1=$EPOCHREALTIME
	awk -v n="$n" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) * 1e6 / n }'
}
cairn_run() { # build workload
	local b=$1 w=$2 out
	rm -rf "$root/vol"
	"$b/cairn" mkfs "$root/vol" --media emul --log-size 512M --fast-size 3G >/dev/null
	"$b/cairn" mount "$root/vol" "$root/m"
	local run=("$b/cairn" run --mount "$root/m" --)
	case $w in
	dd-128) out=$(us 200000 "${run[@]}" dd if=/dev/zero of="$root/m/f" bs=128 count=200000) ;;
	dd-4k) out=$(us 50000 "${run[@]}" dd if=/dev/zero of="$root/m/f" bs=4096 count=50000) ;;
	seekw) out=$(us 200000 "${run[@]}" "$root/seekw" "$root/m/f" 200000) ;;
	esac
	"$b/cairn" umount "$root/m"
	echo "$out"
}
echo "# $(date -u +%F) $(nproc) cores; old $old, new $new; $rounds rounds"
for r in $(seq 1 "$rounds"); do
	for w in dd-128 dd-4k seekw; do
		echo "round=$r $w-us old=$(cairn_run "$old" $w) new=$(cairn_run "$new" $w)"
	done
done
