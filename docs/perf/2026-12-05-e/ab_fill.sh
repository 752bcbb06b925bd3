#!/usr/bin/env bash
# A/B of the fills outside the clients' mutex: OLD and NEW builds alternating,
# ROUNDS rounds of cpu.sh N P for P = 1, 2, with a 256 MiB log (the digest
# runs) and a 2 GiB one (it does not).  Usage: ab_fill.sh OLD NEW [ROUNDS] [N]
set -euo pipefail
old=$1 new=$2 rounds=${3:-7} n=${4:-150000}
for r in $(seq 1 $rounds); do
  for log in 256M 2G; do
    for b in old new; do
      dir=$old; [ $b = new ] && dir=$new
      for P in 1 2; do
        echo "round=$r log=$log build=$b $(B=$dir LOG=$log ./cpu.sh $n $P | grep -o 'P=[0-9]*\|ops_s=[0-9]*\|busy_frac=[0-9.]*' | tr '\n' ' ')"
      done
    done
  done
done
