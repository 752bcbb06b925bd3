#!/bin/bash
# pin.sh: SQLite (rollback journal, FULL) and varmail under the shim, and
# SQLite through the mount, with the daemon and the program free (free),
# all on processor 0 (pin0), or the daemon on 1 and the program on 0
# (split); a fresh emul volume per run, 3 rounds.
# As root, from the repository; the volume on a tmpfs of huge pages at /tmp/r.
b=${B:-$PWD/build}; M=/tmp/r/mnt; mkdir -p $M
for round in 1 2 3; do
for mode in free pin0 split; do
  mountpoint -q $M && $b/cairn umount $M
  rm -rf /tmp/r/vol; $b/cairn mkfs /tmp/r/vol --media emul --log-size 256M --fast-size 2G >/dev/null
  $b/cairn mount /tmp/r/vol $M; mkdir $M/s $M/v
  d=$(pgrep -n -x cairn)
  pre=()
  case $mode in
  pin0) for t in /proc/$d/task/*; do taskset -pc 0 ${t##*/} >/dev/null; done; pre=(taskset -c 0) ;;
  split) for t in /proc/$d/task/*; do taskset -pc 1 ${t##*/} >/dev/null; done; pre=(taskset -c 0) ;;
  esac
  s=$("${pre[@]}" $b/cairn run --mount $M -- $b/bench/bench_fs --dir $M/s sqlite --journal delete --n 2000 2>/dev/null | awk -F, '{print $3}')
  v=$("${pre[@]}" $b/cairn run --mount $M -- $b/bench/bench_fs --dir $M/v varmail --seconds 2 2>/dev/null | awk -F, '$1=="varmail"{print $3}')
  sf=$("${pre[@]}" $b/bench/bench_fs --dir $M/s sqlite --journal delete --n 1000 2>/dev/null | awk -F, '{print $3}')
  echo "round=$round mode=$mode shim_sqlite=$s shim_varmail=$v fuse_sqlite=$sf"
done; done
$b/cairn umount $M
