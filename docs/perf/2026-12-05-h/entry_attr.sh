#!/usr/bin/env bash
# vm2.sh BUILD ROUNDS: the same build, X_ENT unset (A) and set in the daemon's environment (B), alternating
D=$1 rounds=${2:-3}
for r in $(seq 1 $rounds); do for b in A B; do
  rm -rf /tmp/r/vmv; $D/cairn mkfs /tmp/r/vmv --media emul --log-size 512M --fast-size 2G >/dev/null
  if [ $b = B ]; then X_ENT=1 $D/cairn mount /tmp/r/vmv /tmp/p/m; else $D/cairn mount /tmp/r/vmv /tmp/p/m; fi
  mkdir -p /tmp/p/m/v /tmp/p/m/s
  vm=$($D/cairn run --mount /tmp/p/m -- $D/bench/bench_fs --dir /tmp/p/m/v varmail --seconds 3 2>/dev/null | grep -o 'ops/s,[0-9.]*' | cut -d, -f2)
  sq=$($D/cairn run --mount /tmp/p/m -- $D/bench/bench_fs --dir /tmp/p/m/s sqlite --journal delete --n 2000 2>/dev/null | grep -o 'tx/s,[0-9.]*' | cut -d, -f2)
  $D/cairn umount /tmp/p/m; rm -rf /tmp/r/vmv
  echo "round=$r $b varmail=$vm sqlite=$sq"
done; done
