#!/bin/bash
# A/B of two builds: T threads (1, 2, 4) of one process appending 4 KiB
# through the native API, each to its own file, builds alternating within
# each round, a fresh emul volume per run:
#   nodigest-T  1 GiB log, N appends per thread (bench/threads.sh's runs:
#               no digest runs)
#   digest-T    256 MiB log, 8N appends in all (8N/T per thread): the
#               same bytes, so the same digest work, for every T
# Prints the machine's cache-line round trip between cores first.
# Usage: ab_threads.sh A_BUILD_DIR B_BUILD_DIR [ROUNDS] [N]
#        (as root, from the repo; defaults 5 rounds, N = 20000)
set -euo pipefail
A=$1; B=$2; R=${3:-5}; N=${4:-20000}
source bench/ram.sh
ram=$(ram_dir 6G)
trap 'ram_release "$ram"' EXIT
echo "# $("$B/bench/bench_pingpong")"
run() { # build log-size appends-per-thread threads label
	rm -rf "$ram/vol"
	"$1/cairn" mkfs "$ram/vol" --media emul --log-size "$2" --fast-size 2G >/dev/null
	"$1/bench/bench_append" threads-cairn "$ram/vol" "$3" "$4" |
		sed "s/^threads-cairn threads=[0-9]*/$5-$4/; s|^|round=$r build=$1 |"
}
for r in $(seq 1 "$R"); do
	for b in "$A" "$B"; do
		for t in 1 2 4; do
			run "$b" 1G "$N" "$t" nodigest
			run "$b" 256M $((8 * N / t)) "$t" digest
		done
	done
done
