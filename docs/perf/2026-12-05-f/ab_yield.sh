#!/usr/bin/env bash
# A/B of the catch-up thread's yield (X_YIELD) in one throwaway build, alternating.
set -u
for r in $(seq 1 ${1:-4}); do
 for L in 256M 2G; do
  for P in 1 2; do
   for k in none X_YIELD; do
     out=$(env $([ $k = none ] || echo X_YIELD=1) LOG=$L B=/tmp/exp/build bash /work/main/docs/perf/2026-12-05-e/cpu.sh ${2:-150000} $P 2>&1 | tail -1)
     echo "round=$r log=$L P=$P $k $(echo $out | grep -o 'ops_s=[0-9]*') $(echo $out | grep -o 'busy_frac=[0-9.]*') $(echo $out | grep -o 'daemon_us_per_append=[0-9.]*')"
   done
  done
 done
done
