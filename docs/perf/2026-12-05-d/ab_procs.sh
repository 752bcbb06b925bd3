#!/usr/bin/env bash
# A/B alternating: attach processes 1/2 + threads 2, per build per round
set -euo pipefail
OLD=$1; NEW=$2; n=${3:-40000}; rounds=${4:-4}; log=${5:-2G}
for r in $(seq 1 $rounds); do
  for b in $OLD $NEW; do
    echo "build=$b $($(dirname "$0")/procs.sh $b $n 1 $log | sed 's/cache line round trip between two cores: //; s/(median of 5; [0-9-]*)//')"
  done
done
