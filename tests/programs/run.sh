#!/usr/bin/env bash
# run.sh CAIRN_BIN [NAME...] - runs real programs on a cairn FUSE mount.
#
# Makes a scratch emul volume in /dev/shm, mounts it with
# `CAIRN_BIN mount VOL MNT --foreground`, writes a canary file, runs the
# test scripts NAME.sh of this directory (default: all of them: sqlite git
# tar make redis postgres million) each with the mount point as its argument, unmounts
# with `CAIRN_BIN umount MNT`, mounts the volume again and checks the
# canary file survived.  Prints "N passed, M failed" and exits non-zero
# when any failed.  Exits 77 (skipped) unless root with /dev/fuse and a
# CAIRN_BIN that has the mount command.  Removes everything it made, even
# when interrupted: a stuck mount is detached with umount -l first.
#   PROGRAMS_TIMEOUT  seconds each script may take (default 540; million
#                     1140), so that the cleanup runs before CTest's timeout
#   PROGRAMS_SHIM=1   runs each script under `CAIRN_BIN run --mount MNT`:
#                     every program it starts has the preload shim, and a
#                     script whose programs write with write() (all but
#                     make's, whose compilers write through stdio) fails
#                     unless `cairn stat` counts local writes it made
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ALL=(sqlite git tar make redis postgres million)

CAIRN_BIN=${1:-}
[ -n "$CAIRN_BIN" ] || { echo "usage: $0 CAIRN_BIN [${ALL[*]}]" >&2; exit 2; }
shift
NAMES=("$@")
[ ${#NAMES[@]} -gt 0 ] || NAMES=("${ALL[@]}")
for n in "${NAMES[@]}"; do
	[ -f "$HERE/$n.sh" ] || { echo "run.sh: no test named '$n' (there is no $HERE/$n.sh)" >&2; exit 2; }
done

skip() {
	echo "SKIP: program_${NAMES[*]}: $*"
	exit 77
}
[ "$(id -u)" -eq 0 ] || skip "not root (FUSE mounts need root here)"
[ -c /dev/fuse ] || skip "/dev/fuse is missing"
[ -x "$CAIRN_BIN" ] || skip "$CAIRN_BIN is not an executable"
"$CAIRN_BIN" mount --help 2>&1 | grep -qi 'usage:.* mount ' || skip "$CAIRN_BIN has no mount command"

ROOT=$(mktemp -d /dev/shm/cairn-programs.XXXXXX)
chmod 755 "$ROOT" # postgres.sh runs the server as the user postgres, below it
VOL=$ROOT/vol
MNT=$ROOT/mnt
LOG=$ROOT/daemon.log
DAEMON=""  # the pid of `cairn mount --foreground`
CHILD=""   # the pid of the running test script's `timeout`
mkdir "$MNT"

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
mounted() { awk -v m="$MNT" '$2 == m { f = 1 } END { exit !f }' /proc/self/mounts; }

cleanup() {
	local rc=$?
	set +e
	# The test script first (timeout passes the signal on to it), so that
	# nothing holds the mount busy.
	if [ -n "$CHILD" ] && kill -0 "$CHILD" 2>/dev/null; then
		kill -TERM "$CHILD" 2>/dev/null
		for ((i = 0; i < 100; i++)); do kill -0 "$CHILD" 2>/dev/null || break; sleep 0.1; done
		kill -KILL -- "-$CHILD" 2>/dev/null # timeout leads its own process group
	fi
	if mounted; then
		timeout 20 "$CAIRN_BIN" umount "$MNT" >/dev/null 2>&1 || umount -l "$MNT" 2>/dev/null
	fi
	if [ -n "$DAEMON" ] && kill -0 "$DAEMON" 2>/dev/null; then
		kill -TERM "$DAEMON" 2>/dev/null
		for ((i = 0; i < 50; i++)); do kill -0 "$DAEMON" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$DAEMON" 2>/dev/null
	fi
	mounted && umount -l "$MNT" 2>/dev/null
	# --one-file-system: never descend into a mount that is still there.
	rm -rf --one-file-system -- "$ROOT"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start_mount: `cairn mount --foreground` in the background, then waits
# until the mount is in /proc/self/mounts.
start_mount() {
	"$CAIRN_BIN" mount "$VOL" "$MNT" --foreground >>"$LOG" 2>&1 &
	DAEMON=$!
	for ((i = 0; i < 200; i++)); do
		if mounted; then
			# FUSE_SUPER_MAGIC: the mount point is the FUSE mount, not the directory.
			[ "$(stat -f -c %t "$MNT")" = 65735546 ] && return 0
			echo "FAIL: $MNT is in /proc/self/mounts but is not a FUSE file system" >&2
			return 1
		fi
		kill -0 "$DAEMON" 2>/dev/null || break
		sleep 0.05
	done
	echo "FAIL: $CAIRN_BIN mount $VOL $MNT --foreground did not mount within 10 s; its output:" >&2
	cat "$LOG" >&2
	return 1
}

# stop_mount: `cairn umount`, then the daemon must exit 0.
stop_mount() {
	local st=0 out
	out=$(timeout 90 "$CAIRN_BIN" umount "$MNT" 2>&1) || {
		echo "FAIL: $CAIRN_BIN umount $MNT exited $?: $out" >&2
		return 1
	}
	mounted && { echo "FAIL: $MNT is still mounted after cairn umount" >&2; return 1; }
	wait "$DAEMON" || st=$?
	DAEMON=""
	[ "$st" -eq 0 ] || { echo "FAIL: the mount daemon exited $st after cairn umount; its output:" >&2; cat "$LOG" >&2; return 1; }
}

# The local writes of client processes the daemon applied since the mount.
local_writes() {
	"$CAIRN_BIN" stat "$MNT" --json 2>/dev/null | sed -n 's/.*"client_records": \([0-9]*\).*/\1/p'
}

passed=0
failed=0
failures=()
result() { # result NAME OK?
	if [ "$2" -eq 0 ]; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
		failures+=("$1")
	fi
}

echo "== volume $VOL (emul, log 64M, fast tier 1G, 1200000 inodes), mount point $MNT"
"$CAIRN_BIN" mkfs "$VOL" --media emul --log-size 64M --fast-size 1G --inodes 1200000 >/dev/null ||
	{ echo "FAIL: $CAIRN_BIN mkfs $VOL failed" >&2; exit 1; }
start_mount || exit 1

# The canary: data and a name written before everything else, checked
# after the unmount and a new mount.
head -c 3000000 /dev/urandom >"$ROOT/canary.src"
mkdir -p "$MNT/canary/dir"
cp "$ROOT/canary.src" "$MNT/canary/dir/data"
ln -s dir/data "$MNT/canary/link"
CANARY=$(sha256sum <"$ROOT/canary.src")

for n in "${NAMES[@]}"; do
	limit=${PROGRAMS_TIMEOUT:-540}
	[ "$n" = million ] && limit=${PROGRAMS_TIMEOUT:-1140}
	echo "== $n.sh (timeout ${limit}s)"
	t=$(now)
	rc=0
	# In the background, so that a signal to run.sh runs its cleanup at once.
	RUNNER=()
	[ "${PROGRAMS_SHIM:-0}" = 1 ] && RUNNER=("$CAIRN_BIN" run --mount "$MNT" --)
	local_before=$(local_writes)
	timeout -k 10 "$limit" "${RUNNER[@]}" bash "$HERE/$n.sh" "$MNT" &
	CHILD=$!
	wait "$CHILD" || rc=$?
	CHILD=""
	if [ "$rc" -eq 0 ] && [ ${#RUNNER[@]} -gt 0 ]; then
		made=$(($(local_writes) - local_before))
		echo "== $n: $made writes made in the programs' own logs"
		[ "$made" -gt 0 ] || [ "$n" = make ] || {
			echo "== $n: FAIL: the shim made none of the writes natively"
			rc=1
		}
	fi
	if [ "$rc" -eq 0 ]; then
		echo "== $n: PASS ($(since "$t")s)"
	elif [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
		echo "== $n: FAIL: timed out after ${limit}s"
	else
		echo "== $n: FAIL (exit $rc, $(since "$t")s)"
	fi
	result "$n" "$rc"
	if ! mounted || ! kill -0 "$DAEMON" 2>/dev/null; then
		echo "FAIL: the mount is gone or its daemon died during $n.sh; its output:" >&2
		cat "$LOG" >&2
		result daemon 1
		break
	fi
done

# Unmount, mount again: the canary is there.
echo "== unmount, mount again"
t=$(now)
rc=0
if stop_mount && start_mount; then
	if ! got=$(sha256sum <"$MNT/canary/dir/data" 2>&1); then
		echo "FAIL: after the new mount, reading canary/dir/data failed: $got" >&2
		rc=1
	elif [ "$got" != "$CANARY" ]; then
		echo "FAIL: after the new mount, canary/dir/data differs from what was written ($(stat -c %s "$MNT/canary/dir/data") bytes)" >&2
		rc=1
	elif ! cmp -s "$MNT/canary/link" "$ROOT/canary.src" || [ "$(readlink "$MNT/canary/link")" != dir/data ]; then
		echo "FAIL: after the new mount, the symlink canary/link is wrong" >&2
		rc=1
	else
		left=$(ls -A "$MNT" | grep -vx canary || true)
		[ -z "$left" ] || echo "note: left on the mount by the tests: $left"
		stop_mount || rc=1
	fi
else
	rc=1
fi
[ "$rc" -eq 0 ] && echo "== remount: PASS ($(since "$t")s)" || echo "== remount: FAIL"
result remount "$rc"

[ "$failed" -eq 0 ] || echo "failed: ${failures[*]}"
echo "${passed} passed, ${failed} failed"
[ "$failed" -eq 0 ]
