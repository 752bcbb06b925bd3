#!/usr/bin/env bash
# The tiered workload of bench/run: a data set four times larger than the
# fast tier, so that most of it must live on a capacity tier, read and
# written with zipfian keys over files in a 90/10 and a 50/50 read/write mix,
# against ext4 on the same disk.
#
# For now this only checks whether `cairn mkfs` offers --tier and says that
# the workload is skipped; run_tiered below is the place to write it.  It is
# called as
#   bench/tiered.sh CAIRN_BIN RESULTS_DIR RAW_CSV ROUNDS QUICK
# and appends "workload,contender,round,metric,unit,value" rows to RAW_CSV,
# like every other workload of bench/run.
# The arguments past the first are for run_tiered, once it is written.
# shellcheck disable=SC2034
set -euo pipefail
cairn=${1:?usage: tiered.sh CAIRN_BIN RESULTS_DIR RAW_CSV ROUNDS QUICK}
results=${2:?}
raw=${3:?}
rounds=${4:-3}
quick=${5:-0}

run_tiered() {
	# To come: mkfs with a small fast tier and a disk capacity tier; a file
	# set of 4x the fast tier; per round, for cairn (native and FUSE) and
	# ext4-disk, a 90/10 and a 50/50 mix of 4 KiB reads and durable writes
	# with zipfian file and offset choice; ops/s and p50/p99 latency.
	echo "tiered: skipped: 'cairn mkfs' offers --tier, but this workload is not written yet (bench/tiered.sh)"
	return 0
}

if ! "$cairn" mkfs --help 2>&1 | grep -q -- '--tier'; then
	echo "tiered: skipped: 'cairn mkfs --help' offers no --tier option (no capacity tiers yet)"
	exit 0
fi
run_tiered
