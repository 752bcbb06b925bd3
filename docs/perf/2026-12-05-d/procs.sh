#!/usr/bin/env bash
# Attach processes 1 and 2, and 2 threads of one client: aggregate appends/s
# of N x 4 KiB each, ROUNDS rounds, a fresh emul volume with a LOG log each
# round.  Usage: procs.sh BUILD [N] [ROUNDS] [LOG]; /tmp/r a tmpfs of 2 MiB
# pages (bench/ram.sh says why).
set -euo pipefail
B=${1:-/work/main/build}; n=${2:-40000}; rounds=${3:-3}; log=${4:-2G}
bin=$B/bench/bench_append
vol=/tmp/r/pvol; mnt=/tmp/p/mnt; mkdir -p $mnt
parallel() {
	local p=$1 out; out=$(mktemp)
	for i in $(seq 1 "$p"); do "$bin" attach "$mnt" "$n" >>"$out" & done
	wait
	awk -v p="$p" -v n="$n" '{ for (i = 1; i <= NF; i++) { split($i, kv, "=")
	         if (kv[1] == "from_us" && (!a || kv[2] < a)) a = kv[2]
	         if (kv[1] == "to_us" && kv[2] > b) b = kv[2] } ; k++ }
	     END { printf "%.0f", p * n / ((b - a) / 1e6) }' "$out"; rm -f $out
}
for r in $(seq 1 $rounds); do
  rm -rf $vol; $B/cairn mkfs $vol --media emul --log-size $log --fast-size 3G >/dev/null
  $B/cairn mount $vol $mnt
  echo "round=$r $($B/bench/bench_pingpong) p1=$(parallel 1) p2=$(parallel 2) $($bin threads-attach $mnt $n 2 | grep -o 'ops_s=[0-9]*' | sed s/^/t2_/)"
  $B/cairn umount $mnt
done
rm -rf $vol
