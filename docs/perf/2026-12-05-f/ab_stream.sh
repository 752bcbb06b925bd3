#!/usr/bin/env bash
# A/B of two builds, alternating: P client processes (cpu.sh of
# docs/perf/2026-12-05-e), each appending N times 4 KiB, on a fresh emul
# volume per run whose log is LOG (256M: the digest runs throughout; 2G:
# it does not); the daemon's processor time per append was added after
# this directory's runs.  Usage: ab_stream.sh OLD/build NEW/build ROUNDS N
set -u
old=$1 new=$2 rounds=${3:-7} n=${4:-150000}
cpu=$(dirname "$0")/../2026-12-05-e/cpu.sh
for r in $(seq 1 "$rounds"); do
	for L in 256M 2G; do
		for P in 1 2; do
			for b in old new; do
				B=$([ $b = old ] && echo "$old" || echo "$new")
				out=$(LOG=$L B=$B bash "$cpu" "$n" "$P" 2>&1 | tail -1)
				echo "round=$r log=$L P=$P $b $(echo "$out" | grep -o 'ops_s=[0-9]*') $(echo "$out" | grep -o 'busy_frac=[0-9.]*') $(echo "$out" | grep -o 'daemon_us_per_append=[0-9.]*')"
			done
		done
	done
done
