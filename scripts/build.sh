#!/usr/bin/env bash
# Builds cairn into build/ (optimized, with debug info).  Quiet unless the
# build fails.
set -euo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! { cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo && cmake --build build -j"$(nproc)"; } >"$log" 2>&1; then
	cat "$log"
	echo "cairn: build failed" >&2
	exit 1
fi
echo "cairn: built build/cairn and build/libcairn.a"
