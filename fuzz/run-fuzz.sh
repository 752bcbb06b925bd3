#!/usr/bin/env bash
# run-fuzz.sh SECONDS [libFuzzer options...] - builds fuzz_volume if needed
# (clang, CAIRN_FUZZ=ON, ASan+UBSan, Debug), replays the regression corpus
# kept in the tree (fuzz/corpus: the CTest test fuzz_corpus), then fuzzes
# for SECONDS (0: the replay only).
#
# Environment: CAIRN_FUZZ_BUILD (build dir, default <repo>/build-fuzz),
# CAIRN_FUZZ_WORK (corpus and crash artifacts, default /tmp/cairn-fuzz).
# The working corpus starts from fuzz/corpus.  Exit status is the
# replay's, then libFuzzer's: non-zero when it found a crash, leak,
# timeout or sanitizer report, whose input is left in
# $CAIRN_FUZZ_WORK/artifacts/ (reproduce: fuzz_volume FILE; then add the
# minimized input to fuzz/corpus, see fuzz/README.md).
set -euo pipefail

secs=${1:-60}
shift || true
here=$(cd "$(dirname "$0")" && pwd)
src=$(dirname "$here")
build=${CAIRN_FUZZ_BUILD:-$src/build-fuzz}
work=${CAIRN_FUZZ_WORK:-/tmp/cairn-fuzz}

if [ ! -f "$build/CMakeCache.txt" ]; then
	CC=${CC:-clang} cmake -S "$src" -B "$build" -DCAIRN_FUZZ=ON -DCAIRN_SANITIZE=ON \
		-DCMAKE_BUILD_TYPE=Debug
fi
cmake --build "$build" --target fuzz_volume -j"$(nproc)"

# Scratch volumes of fuzzers that died without cleaning up.
for d in /dev/shm/cairn-fuzz-*; do
	[ -d "$d" ] || continue
	pid=${d##*-}
	kill -0 "$pid" 2>/dev/null || rm -rf "$d"
done

echo "== replaying the regression corpus ($(ls "$here/corpus" | wc -l) inputs in fuzz/corpus)"
ctest --test-dir "$build" -R '^fuzz_corpus$' --no-tests=error --output-on-failure
[ "$secs" -gt 0 ] || exit 0

# The regression corpus seeds the working one: the seeds aimed at each
# parser (their layout: byte 0 flags, byte 1 reseal mask, then mutations
# [region | op << 4] [offset, 3 bytes LE] [arg] [data], see fuzz_volume.c)
# and what earlier runs found.
mkdir -p "$work/corpus" "$work/artifacts"
cp -n "$here"/corpus/* "$work/corpus/"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
exec "$build/fuzz/fuzz_volume" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=30 \
	-max_len=2048 -print_final_stats=1 -artifact_prefix="$work/artifacts/" "$@" "$work/corpus"
