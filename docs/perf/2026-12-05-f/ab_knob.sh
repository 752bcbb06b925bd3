#!/usr/bin/env bash
# A/B of one environment knob in one throwaway build, alternating: P
# client processes (cpu.sh of docs/perf/2026-12-05-e), each appending N
# times 4 KiB, with and without KNOB=VALUE (inherited by the daemon and
# the clients).  Prints "none" or the knob's name per run.
# Usage: B=THROWAWAY/build ab_knob.sh KNOB=VALUE ROUNDS N
set -u
knob=$1 rounds=${2:-4} n=${3:-150000}
cpu=$(dirname "$0")/../2026-12-05-e/cpu.sh
for r in $(seq 1 "$rounds"); do
	for L in 256M 2G; do
		for P in 1 2; do
			for k in none "${knob%%=*}"; do
				out=$(env $([ "$k" = none ] || echo "$knob") LOG=$L B=${B:?} bash "$cpu" "$n" "$P" 2>&1 | tail -1)
				echo "round=$r log=$L P=$P $k $(echo "$out" | grep -o 'ops_s=[0-9]*') $(echo "$out" | grep -o 'busy_frac=[0-9.]*') $(echo "$out" | grep -o 'daemon_us_per_append=[0-9.]*')"
			done
		done
	done
done
