#!/usr/bin/env bash
# Do two writers append faster than one?  Aggregate durable 4 KiB appends a
# second of W = 1, 2, 4 writers, each appending to its own file, in the two
# regimes a cairn volume runs in, side by side with ext4-ram and tmpfs:
#
#   apart   a 1 GiB log that holds every run's data below the digest's
#           threshold (half the log): the writers alone
#   steady  a 256 MiB log and SN appends per writer, so that every run,
#           one writer's too, spends most of its time with the digest
#           running beside it, as a volume in steady use does
#
# bench/attach.sh uses one 256 MiB log and N appends per writer for every
# writer count, so there one writer (80 MiB at its defaults) never reaches
# the threshold while two and four (160 and 320 MiB) do: its ratios compare
# one regime with the other.  Here each cairn run gets a fresh volume, and
# each row stays in one regime.
#
# Writers: native threads of one process that mounts the volume
# (bench_append threads-cairn); client processes of a daemon, each its own
# `cairn_attach` (the volume served by `cairn mount`, the FUSE mount up);
# threads of one such client.  ext4-ram (write + fdatasync on ext4 on a RAM
# loop) and tmpfs (write) run N appends per writer, processes and threads:
# no digest there, so one run serves both regimes.
#
# Prints every run, then the medians over ROUNDS and the ratios W / 1.
# Usage: bench/scaling.sh [N] [SN] [ROUNDS]
#        (defaults 20000, 150000 appends per writer, 5 rounds); as root.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-20000}
sn=${2:-150000}
rounds=${3:-5}
bin=build/bench/bench_append
[ -x "$bin" ] && [ -x build/bench/bench_pingpong ] && [ -x build/cairn ] || scripts/build.sh >/dev/null
# Above this, four writers' data passes the apart regime's threshold.
[ "$n" -le 30000 ] || { echo "bench/scaling.sh: N must be at most 30000" >&2; exit 2; }
source bench/ram.sh
source bench/writers.sh
ram_scratch 8G
mkdir -p "$ram/tmpfs"

ops() { sed -n 's/.*ops_s=\([0-9]*\).*/\1/p'; }

fresh() {
	rm -rf "$vol"
	build/cairn mkfs "$vol" --media emul --log-size "$1" --fast-size 4G >/dev/null
}

# One cairn run: REGIME KIND W, on a fresh volume; prints ops/s.
cairn_run() {
	local regime=$1 kind=$2 w=$3 log count
	if [ "$regime" = apart ]; then log=1G count=$n; else log=256M count=$sn; fi
	fresh "$log"
	case $kind in
	native-threads) "$bin" threads-cairn "$vol" "$count" "$w" | ops ;;
	client-procs)
		build/cairn mount "$vol" "$work/mnt"
		parallel "$w" attach "$work/mnt" "$count"
		build/cairn umount "$work/mnt" ;;
	client-threads)
		build/cairn mount "$vol" "$work/mnt"
		"$bin" threads-attach "$work/mnt" "$count" "$w" | ops
		build/cairn umount "$work/mnt" ;;
	esac
}

echo "# $(date -u +%F) $(nproc) cores; commit $(git rev-parse --short HEAD 2>/dev/null || echo ?)"
echo "# apart: N=$n appends per writer, 1 GiB log; steady: SN=$sn, 256 MiB log; $rounds rounds"
for r in $(seq 1 "$rounds"); do
	echo "# round $r: $(build/bench/bench_pingpong)" >&2
	for w in 1 2 4; do
		for regime in apart steady; do
			for kind in native-threads client-procs client-threads; do
				echo "round=$r $regime $kind w=$w ops_s=$(cairn_run "$regime" "$kind" "$w")"
			done
		done
		echo "round=$r both ext4-ram-procs w=$w ops_s=$(parallel "$w" fdatasync "$work/ext4" "$n")"
		echo "round=$r both tmpfs-procs w=$w ops_s=$(parallel "$w" write "$ram/tmpfs" "$n")"
		echo "round=$r both ext4-ram-threads w=$w ops_s=$("$bin" threads-fdatasync "$work/ext4" "$n" "$w" | ops)"
		echo "round=$r both tmpfs-threads w=$w ops_s=$("$bin" threads-write "$ram/tmpfs" "$n" "$w" | ops)"
	done
done | tee "$work/results.txt"

echo "# medians over the rounds (appends/s), and W / 1"
printf "%-30s %10s %10s %10s %7s %7s\n" "regime writers" 1 2 4 2/1 4/1
awk '{ key = $2 " " $3; split($4, wv, "="); split($5, ov, "=")
       v[key, wv[2]] = v[key, wv[2]] " " ov[2]; keys[key] = 1 }
     function median(s,   x, n, i, j, t) {
       n = split(s, x, " ")
       for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (x[j] + 0 < x[i] + 0) { t = x[i]; x[i] = x[j]; x[j] = t }
       return x[int((n + 1) / 2)] }
     END { for (k in keys) { a = median(v[k, 1]); b = median(v[k, 2]); c = median(v[k, 4])
             printf "%-30s %10d %10d %10d %7.2f %7.2f\n", k, a, b, c, b / a, c / a } }' \
	"$work/results.txt" | sort
