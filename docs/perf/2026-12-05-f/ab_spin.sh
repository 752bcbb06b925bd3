#!/usr/bin/env bash
set -u
for r in $(seq 1 ${1:-5}); do
 for L in 256M 2G; do
  for P in 1 2; do
   for k in none X_SPIN_NS; do
     out=$(env $([ $k = none ] || echo X_SPIN_NS=50000) LOG=$L B=/tmp/exp/build bash /work/main/docs/perf/2026-12-05-e/cpu.sh ${2:-150000} $P 2>&1 | tail -1)
     echo "round=$r log=$L P=$P $k $(echo $out | grep -o 'ops_s=[0-9]*') $(echo $out | grep -o 'busy_frac=[0-9.]*')"
   done
  done
 done
done
