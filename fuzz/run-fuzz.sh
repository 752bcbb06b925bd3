#!/usr/bin/env bash
# run-fuzz.sh SECONDS [libFuzzer options...] - builds fuzz_volume if needed
# (clang, CAIRN_FUZZ=ON, ASan+UBSan, Debug) and fuzzes for SECONDS.
#
# Environment: CAIRN_FUZZ_BUILD (build dir, default <repo>/build-fuzz),
# CAIRN_FUZZ_WORK (corpus and crash artifacts, default /tmp/cairn-fuzz).
# The corpus starts from seeds generated here.  Exit status is libFuzzer's:
# non-zero when it found a crash, leak, timeout or sanitizer report, whose
# input is left in $CAIRN_FUZZ_WORK/artifacts/ (reproduce: fuzz_volume FILE).
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

mkdir -p "$work/corpus" "$work/artifacts"

# Seeds: byte 0 flags, byte 1 reseal mask, then mutations
# [region | op << 4] [offset, 3 bytes LE] [arg] [data] (see fuzz_volume.c).
seed() { printf "$2" >"$work/corpus/seed-$1"; }
if [ -z "$(ls -A "$work/corpus")" ]; then
	seed plain '\x00\x00'
	seed read-only '\x01\x00'
	seed file-media '\x02\x00'
	seed walk-twice-resealed '\x10\x0f'
	# journal header: ckpt.seq (offset 40) = UINT64_MAX, resealed: replay
	seed journal-replay '\x00\x08\x66\x28\x00\x00\x3b'
	# the same, read-only: replay in the cache only
	seed journal-replay-ro '\x01\x08\x66\x28\x00\x00\x3b'
	# first undigested record: type (offset 4, u16) = 17 (OP_LINK), resealed
	seed record-type '\x00\x02\x02\x04\x00\x00\x01\x11\x00'
	# first record: args[0] (offset 32) = a tree block number, resealed
	seed record-arg '\x00\x02\xc2\x20\x00\x00\x08'
	# epoch slot A: epoch (offset 8) = 0, resealed
	seed epoch-zero '\x00\x01\x61\x08\x00\x00\x03'
	# root inode (ino 1, itable offset 128): tree_root (offset 56) = 0
	seed root-tree '\x00\x00\x68\xb8\x00\x00\x03'
	# a tree node header: level (offset 4) = 1
	seed node-level '\x00\x00\x0a\x04\x00\x80\x01\x01\x00'
	# manifest: "format 2" inserted at the start
	seed manifest '\x00\x00\x6f\x00\x00\x00\x08format 2\n'
	# checkpoint slot A: log_head_off (offset 16) += 64, resealed
	seed ckpt-head '\x00\x04\x85\x10\x00\x00\x03\x40'
	# one byte of each copy of the log superblock (region 0, bit 23 of the
	# offset: the backup), so the part is refused; then the fast
	# superblock's backup alone, which the mount works around
	seed log-supers '\x00\x00\x00\x28\x00\x00\x00\xff\x00\x28\x00\x80\x00\xff'
	seed fast-backup '\x00\x00\x04\x30\x00\x80\x00\xff'
fi

# Scratch volumes of fuzzers that died without cleaning up.
for d in /dev/shm/cairn-fuzz-*; do
	[ -d "$d" ] || continue
	pid=${d##*-}
	kill -0 "$pid" 2>/dev/null || rm -rf "$d"
done

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
exec "$build/fuzz/fuzz_volume" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=30 \
	-max_len=2048 -print_final_stats=1 -artifact_prefix="$work/artifacts/" "$@" "$work/corpus"
