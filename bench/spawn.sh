#!/usr/bin/env bash
# What the preload shim costs a program that starts, in milliseconds per
# process, side by side:
#   true      a shell runs /bin/true N times (loading the shim, nothing on
#             the mount)
#   dd        a shell runs dd N times, each writing 4 KiB into a new file
#             on the mount (each dd attaches to the volume: its write is
#             native)
#   fork      a program forks N children; each opens a new file on the
#             mount, writes 4 KiB and exits; the time of the child's
#             first open, which attaches it (the parent never does)
# Contenders: plain (no shim: the mount's kernel path), shim (this build's
# libcairn-preload.so under `cairn run`), and shim-old when OLD_SHIM names
# another build's libcairn-preload.so.  The volume is emul, mounted on a
# tmpfs of 2 MiB pages (bench/ram.sh).  Medians of ROUNDS rounds, the
# contenders alternating in each.
# CAIRN_BIN names another build's cairn command to make and serve the
# volume (its daemon); the shim stays this build's.
# Usage: bench/spawn.sh [N] [ROUNDS] [OLD_SHIM]   (defaults 200, 5); as root.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-200}
rounds=${2:-5}
old=${3:-}
[ "$(id -u)" -eq 0 ] || { echo "bench/spawn.sh: needs root (FUSE)" >&2; exit 1; }
[ -x build/cairn ] && [ -e build/libcairn-preload.so ] || scripts/build.sh >/dev/null
cairn=${CAIRN_BIN:-$PWD/build/cairn}
source bench/ram.sh
ram=$(ram_dir 2G)
mnt=$ram/mnt
helper=$ram/fork_first_open
trap 'mountpoint -q "$mnt" && "$cairn" umount "$mnt"; ram_release "$ram"' EXIT
mkdir "$mnt"
"$cairn" mkfs "$ram/vol" --media emul --log-size 64M --fast-size 1G >/dev/null
"$cairn" mount "$ram/vol" "$mnt"

cat >"$helper.c" <<'C'
/* fork_first_open DIR N: N children, each opening DIR/fN for writing,
 * writing 4 KiB and exiting; prints the mean time of the children's
 * opens in ms. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>
static double ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}
int main(int argc, char **argv)
{
	int n = atoi(argv[2]);
	double sum = 0;
	for (int i = 0; i < n; i++) {
		int p[2];
		if (pipe(p))
			return 1;
		pid_t c = fork();
		if (c == 0) {
			char f[4096], b[4096] = {0};
			snprintf(f, sizeof(f), "%s/f%d", argv[1], i);
			double t = ms();
			int fd = open(f, O_WRONLY | O_CREAT | O_TRUNC, 0644);
			t = ms() - t;
			_exit(fd < 0 || write(fd, b, sizeof(b)) != (ssize_t)sizeof(b) ||
			      write(p[1], &t, sizeof(t)) != (ssize_t)sizeof(t));
		}
		double t;
		int st;
		if (c < 0 || read(p[0], &t, sizeof(t)) != (ssize_t)sizeof(t) ||
		    waitpid(c, &st, 0) != c || st)
			return 1;
		close(p[0]);
		close(p[1]);
		sum += t;
	}
	printf("%.3f\n", sum / n);
	return 0;
}
C
cc -O2 -o "$helper" "$helper.c"

# run CONTENDER WORKLOAD: ms per process.
run() {
	local pre=() d=$mnt/w
	case $1 in
	shim) pre=(env CAIRN_PRELOAD="$PWD/build/libcairn-preload.so" "$cairn" run --mount "$mnt" --) ;;
	shim-old) pre=(env CAIRN_PRELOAD="$old" "$cairn" run --mount "$mnt" --) ;;
	esac
	mkdir "$d"
	case $2 in
	true | dd)
		local cmd='for i in $(seq '"$n"'); do /bin/true; done'
		[ "$2" = dd ] && cmd='for i in $(seq '"$n"'); do dd if=/dev/zero of='"$d"'/f$i bs=4096 count=1 status=none; done'
		local t0 t1
		t0=$(date +%s%N)
		"${pre[@]}" bash -c "$cmd"
		t1=$(date +%s%N)
		awk -v a="$t0" -v b="$t1" -v n="$n" 'BEGIN { printf "%.3f\n", (b - a) / 1e6 / n }'
		;;
	fork) "${pre[@]}" "$helper" "$d" "$n" ;;
	esac
	rm -rf "$d"
}

contenders=(plain shim)
[ -n "$old" ] && contenders+=(shim-old)
echo "# $(date -u +%F) $(nproc) cores; $n processes per run, $rounds rounds; commit $(git rev-parse --short HEAD); daemon $cairn"
for w in true dd fork; do
	res=$(for r in $(seq "$rounds"); do
		for c in "${contenders[@]}"; do
			echo "$c $(run "$c" "$w")"
		done
	done)
	for c in "${contenders[@]}"; do
		vals=$(echo "$res" | awk -v c="$c" '$1 == c { print $2 }')
		med=$(echo "$vals" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
		printf "%-5s %-9s ms per process: median %s (rounds: %s)\n" "$w" "$c" "$med" "$(echo $vals)"
	done
done
