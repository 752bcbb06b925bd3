#!/usr/bin/env bash
# A/B of the digest's pause between passes, in one throwaway build (the
# commit before the change with knobs.diff applied): X_PAUSE_NS=20000 is
# the code before (a 20 us nanosleep), 0 the code after (sched_yield).
# Each round: P client processes (cpu.sh: bench_append attach, a fresh
# volume with a 256 MiB log, so the digest runs) and T native threads
# (bench_append threads-cairn, likewise), N appends of 4 KiB per writer.
# Usage: ab_pause.sh [ROUNDS] [N], as root, /tmp/r a tmpfs of 2 MiB pages.
set -euo pipefail
export B=/tmp/ab/exp/build; rounds=${1:-7}; n=${2:-150000}
for r in $(seq 1 $rounds); do
  for cfg in 20000 0; do
    for P in 1 2; do
      echo "round=$r pause=$cfg $(X_PAUSE_NS=$cfg ./cpu.sh $n $P | grep -o 'P=[0-9]*\|ops_s=[0-9]*\|busy_frac=[0-9.]*' | tr '\n' ' ')"
    done
    for T in 1 2; do
      rm -rf /tmp/r/nvol; $B/cairn mkfs /tmp/r/nvol --media emul --log-size 256M --fast-size 3G >/dev/null
      echo "round=$r pause=$cfg native T=$T $(X_PAUSE_NS=$cfg $B/bench/bench_append threads-cairn /tmp/r/nvol $n $T)"
      rm -rf /tmp/r/nvol
    done
  done
done
