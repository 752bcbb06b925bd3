#!/usr/bin/env bash
# The README's second command and what CI runs: every test, in an optimized
# build and again under AddressSanitizer + UndefinedBehaviorSanitizer (less
# the tests labelled slow), the threaded ones under ThreadSanitizer, then
# the Debian packages (scripts/package.sh), then the fuzz target for a
# bounded time.
#
# A test that cannot run here (no root, no /dev/fuse, no loop device for
# the ext4 oracle, ...) exits 77 and CTest shows it as skipped; this script
# then FAILS, naming every test that did not run and why, so that a green
# run always means the FUSE mount, the POSIX comparison and the programs
# were tested.
#   CAIRN_ALLOW_SKIP=1  accept skipped tests (and the POSIX test's tmpfs
#                       oracle): the run goes on, and ends with a list of
#                       what was NOT TESTED
#   CAIRN_FUZZ_SECONDS  fuzzing time (default 60; 0 skips, and says so)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
jobs=$(nproc)
export CAIRN_ALLOW_SKIP=${CAIRN_ALLOW_SKIP:-0}
not_tested=()

# The tests CTest did not run in the last run of build dir $1 ("The
# following tests did not run:" lists them), with the line each printed
# to say why (a line holding "SKIP").
not_run() {
	awk '/^The following tests did not run:/ { f = 1; next }
		f && /^[ \t]+[0-9]+ - / { sub(/^[ \t]+[0-9]+ - /, ""); print; next }
		{ f = 0 }' "$1/ctest-output.txt"
}
skip_reasons() {
	grep -h 'SKIP' "$1/Testing/Temporary/LastTest.log" 2>/dev/null | grep -v '^Command:' | sort -u |
		sed 's/^/    /' || true
}

# run_ctest DIR [CTEST ARGS...]: fails when a test failed, and when one
# did not run unless CAIRN_ALLOW_SKIP=1.
run_ctest() {
	local dir=$1 rc skipped
	shift
	set +e
	ctest --test-dir "$dir" --output-on-failure -j"$jobs" "$@" 2>&1 | tee "$dir/ctest-output.txt"
	rc=${PIPESTATUS[0]}
	set -e
	[ "$rc" = 0 ] || return "$rc"
	skipped=$(not_run "$dir")
	[ -z "$skipped" ] && return 0
	echo
	echo "!! NOT TESTED ($dir): these tests did not run:"
	echo "$skipped" | sed 's/^/    /'
	echo "   because:"
	skip_reasons "$dir"
	if [ "$CAIRN_ALLOW_SKIP" != 1 ]; then
		echo "test.sh: FAILED: tests were skipped; run as root with /dev/fuse and loop" \
			"devices, or set CAIRN_ALLOW_SKIP=1 to accept an incomplete run" >&2
		return 1
	fi
	while read -r t; do not_tested+=("$t ($dir)"); done <<<"$skipped"
}

echo "== tests (RelWithDebInfo)"
scripts/build.sh
run_ctest build

echo "== tests (AddressSanitizer + UndefinedBehaviorSanitizer)"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DCAIRN_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	run_ctest build-asan -LE slow

echo "== the threaded tests (ThreadSanitizer)"
# Only the tests labelled threads (tests/CMakeLists.txt) and what they
# link: a race or a lock-order cycle is reported, and fails the test, even
# in a run whose interleaving corrupted nothing.
cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCAIRN_TSAN=ON -DCAIRN_BENCH=OFF >/dev/null
mapfile -t threaded < <(ctest --test-dir build-tsan -N -L threads | awk '/Test +#/ { print $3 }')
[ ${#threaded[@]} -gt 0 ] || { echo "test.sh: FAILED: no test is labelled threads" >&2; exit 1; }
cmake --build build-tsan -j"$jobs" --target "${threaded[@]}"
TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 run_ctest build-tsan -L threads

echo "== the Debian packages: built, lintian, installed in a throw-away root"
if [ "$(id -u)" = 0 ]; then
	scripts/package.sh build-deb
elif [ "$CAIRN_ALLOW_SKIP" = 1 ]; then
	not_tested+=("the Debian packages (the throw-away root needs root)")
else
	echo "test.sh: FAILED: the package check needs root (or CAIRN_ALLOW_SKIP=1)" >&2
	exit 1
fi

secs=${CAIRN_FUZZ_SECONDS:-60}
if [ "$secs" -gt 0 ] && [ -x fuzz/run-fuzz.sh ]; then
	echo "== fuzzing the media parsers for ${secs}s"
	fuzz/run-fuzz.sh "$secs"
else
	not_tested+=("fuzzing (CAIRN_FUZZ_SECONDS=$secs)")
fi

if [ ${#not_tested[@]} -gt 0 ]; then
	echo
	echo "!! The run passed, but these were NOT TESTED:"
	printf '    %s\n' "${not_tested[@]}"
fi
