#!/bin/bash
# A/B: binary dir A (label la) vs B (label lb): sqlite rollback + varmail under the shim
run() { local b=$1 l=$2 w=$3 v=/dev/shm/ab-$l m=/tmp/ab-$l
	fusermount3 -u $m 2>/dev/null; rm -rf $v; mkdir -p $m
	$b/cairn mkfs $v --media emul --log-size 256M --fast-size 2G --inodes 100000 >/dev/null
	$b/cairn mount $v $m || return
	if [ $w = sqlite ]; then r=$($b/cairn run --mount $m -- $b/bench/bench_fs --dir $m --sync data sqlite --n 4000 --journal delete 2>/dev/null | grep tx/s | cut -d, -f3)
	else r=$($b/cairn run --mount $m -- $b/bench/bench_fs --dir $m --sync data varmail --seconds 5 2>/dev/null | grep ops/s | cut -d, -f3); fi
	echo "$w $l $r"; fusermount3 -u $m; sleep 0.5; rm -rf $v; }
for i in $(seq $3); do for w in sqlite varmail; do run $1 A $w; run $2 B $w; done; done
