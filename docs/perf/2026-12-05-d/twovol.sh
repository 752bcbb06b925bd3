#!/usr/bin/env bash
# Two volumes, each served by its own daemon, one client appending to each,
# against one client alone: what writers sharing nothing but the machine
# reach.  Usage: B=build twovol.sh [N] [ROUNDS]; /tmp/r a tmpfs of 2 MiB pages.
set -euo pipefail
B=${B:-build}; n=${1:-40000}; rounds=${2:-3}
bin=$B/bench/bench_append
for r in $(seq 1 $rounds); do
  for v in a b; do rm -rf /tmp/r/v$v; mkdir -p /tmp/p/m$v; $B/cairn mkfs /tmp/r/v$v --media emul --log-size 1G --fast-size 1500M >/dev/null; $B/cairn mount /tmp/r/v$v /tmp/p/m$v; done
  out=$(mktemp)
  $bin attach /tmp/p/ma $n >>$out & $bin attach /tmp/p/mb $n >>$out & wait
  two=$(awk -v n="$n" '{ for (i = 1; i <= NF; i++) { split($i, kv, "=")
	         if (kv[1] == "from_us" && (!a || kv[2] < a)) a = kv[2]
	         if (kv[1] == "to_us" && kv[2] > b) b = kv[2] } }
	     END { printf "%.0f", 2 * n / ((b - a) / 1e6) }' $out)
  one=$($bin attach /tmp/p/ma $n | grep -o 'from_us=[0-9.]* to_us=[0-9.]*' | awk -v n=$n '{split($1,a,"=");split($2,b,"="); printf "%.0f", n/((b[2]-a[2])/1e6)}')
  echo "round=$r $($B/bench/bench_pingpong | grep -o '[0-9]* ns' | head -1) one=$one two_volumes=$two"
  rm -f $out
  for v in a b; do $B/cairn umount /tmp/p/m$v; rm -rf /tmp/r/v$v; done
done
