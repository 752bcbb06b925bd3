#!/usr/bin/env bash
# The README's second command and what CI runs: every test, in an optimized
# build and again under AddressSanitizer + UndefinedBehaviorSanitizer (less
# the tests labelled slow), then
# the fuzz target for a bounded time.
#   CAIRN_FUZZ_SECONDS  fuzzing time (default 60; 0 skips)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
jobs=$(nproc)

echo "== tests (RelWithDebInfo)"
scripts/build.sh
ctest --test-dir build --output-on-failure -j"$jobs"

echo "== tests (AddressSanitizer + UndefinedBehaviorSanitizer)"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DCAIRN_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	ctest --test-dir build-asan --output-on-failure -j"$jobs" -LE slow

secs=${CAIRN_FUZZ_SECONDS:-60}
if [ "$secs" -gt 0 ] && [ -x fuzz/run-fuzz.sh ]; then
	echo "== fuzzing the media parsers for ${secs}s"
	fuzz/run-fuzz.sh "$secs"
fi
