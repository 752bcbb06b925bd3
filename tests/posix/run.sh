#!/bin/bash
#
# run.sh - the POSIX conformance test: runs posix_suite on an oracle file
# system (Linux ext4 on a loop image in /dev/shm) and on a cairn FUSE
# mount, and compares the two transcripts line by line (one line per case,
# matched by case name).
#
# Usage: run.sh CAIRN_BIN [POSIX_SUITE_BIN]
#
# Prints "N passed, M failed" (a case passes when its cairn line equals
# the oracle's) and lists every difference.  A case listed in
# known-differences.txt passes when its cairn line is exactly the one
# listed there; any other line, the oracle's included, fails it, so that a
# known difference cannot hide a new one.  After the runs the volume is
# unmounted and the daemon must exit with status 0 and no sanitizer
# report in its log.  Exits 0 when all that holds, 1 otherwise, and 77
# (skip) when not root, without /dev/fuse, or when CAIRN_BIN has no
# `mount` command.  The suite also runs on tmpfs, as a check of the suite
# itself (reported, not fatal).
#
# Environment: CAIRN_POSIX_SHIM=1 runs the suite on the cairn mount under
# `CAIRN_BIN run` (the preload shim); CAIRN_POSIX_OUT=DIR keeps the transcripts and the daemon's
# log in DIR; CAIRN_POSIX_FILTER=SUBSTRING runs only the matching cases.
# When ext4 on a loop device cannot be set up the test fails, unless
# CAIRN_ALLOW_SKIP=1: then tmpfs is the oracle, and the run says so.
# Every mount, loop device and volume it makes is removed on exit.
set -u

CAIRN=${1:-}
if [ -z "$CAIRN" ]; then
	echo "usage: run.sh CAIRN_BIN [POSIX_SUITE_BIN]" >&2
	exit 2
fi
SUITE=${2:-$(dirname "$CAIRN")/tests/posix/posix_suite}
FILTER=${CAIRN_POSIX_FILTER:-}

skip() {
	echo "posix_conformance: SKIP: $*"
	exit 77
}
[ "$(id -u)" = 0 ] || skip "needs root (mounts, and the permission cases switch users)"
[ -c /dev/fuse ] || skip "/dev/fuse is missing"
if [ ! -x "$CAIRN" ]; then
	echo "run.sh: $CAIRN is not an executable" >&2
	exit 1
fi
"$CAIRN" mount --help >/dev/null 2>&1 || skip "$CAIRN has no 'mount' command"
if [ ! -x "$SUITE" ]; then
	echo "run.sh: $SUITE is not an executable" >&2
	exit 1
fi

WORK=$(mktemp -d /dev/shm/cairn-posix.XXXXXX) || exit 1
LOOP=
DAEMON=
ORACLE_MNT=
TMPFS_MNT=
CAIRN_MNT=

mounted() {
	awk -v m="$1" '$2 == m { f = 1 } END { exit !f }' /proc/self/mounts
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [ -n "$CAIRN_MNT" ] && mounted "$CAIRN_MNT"; then
		timeout 30 "$CAIRN" umount "$CAIRN_MNT" >/dev/null 2>&1 ||
			umount -l "$CAIRN_MNT" 2>/dev/null
	fi
	if [ -n "$DAEMON" ]; then
		for _ in $(seq 50); do
			kill -0 "$DAEMON" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$DAEMON" 2>/dev/null; then
			kill -TERM "$DAEMON" 2>/dev/null
			sleep 1
			kill -KILL "$DAEMON" 2>/dev/null
		fi
		wait "$DAEMON" 2>/dev/null
	fi
	if [ -n "$CAIRN_MNT" ] && mounted "$CAIRN_MNT"; then
		umount -l "$CAIRN_MNT" 2>/dev/null
	fi
	for m in "$ORACLE_MNT" "$TMPFS_MNT"; do
		if [ -n "$m" ] && mounted "$m"; then
			umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
		fi
	done
	[ -n "$LOOP" ] && losetup -d "$LOOP" 2>/dev/null
	if grep -q " $WORK/" /proc/self/mounts; then
		echo "run.sh: something is still mounted under $WORK; not removing it" >&2
	else
		rm -rf "$WORK"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- the oracle -------------------------------------------------------------

TMPFS_MNT=$WORK/tmpfs
mkdir -p "$TMPFS_MNT"
if ! mount -t tmpfs -o size=512m,mode=0755 cairn-posix-tmpfs "$TMPFS_MNT"; then
	echo "run.sh: cannot mount tmpfs" >&2
	exit 1
fi
ORACLE=tmpfs
if command -v mkfs.ext4 >/dev/null && command -v losetup >/dev/null; then
	truncate -s 512M "$WORK/ext4.img" &&
		mkfs.ext4 -q -F -I 256 -b 4096 "$WORK/ext4.img" >/dev/null 2>&1 &&
		LOOP=$(losetup -f --show "$WORK/ext4.img" 2>/dev/null) &&
		mkdir -p "$WORK/ext4" &&
		mount -t ext4 "$LOOP" "$WORK/ext4" 2>/dev/null &&
		ORACLE_MNT=$WORK/ext4 && ORACLE=ext4
fi
if [ "$ORACLE" = tmpfs ]; then
	if [ "${CAIRN_ALLOW_SKIP:-0}" != 1 ]; then
		echo "run.sh: ext4 on a loop device could not be set up (mkfs.ext4, losetup," \
			"a free loop device); set CAIRN_ALLOW_SKIP=1 to compare with tmpfs instead" >&2
		exit 1
	fi
	echo "oracle: tmpfs (ext4 on a loop device could not be set up; CAIRN_ALLOW_SKIP=1)"
	echo "WARNING: NOT TESTED: the comparison with ext4"
	ORACLE_MNT=$TMPFS_MNT
	TMPFS_MNT=
else
	echo "oracle: ext4 on $LOOP (image in $WORK); tmpfs as a check of the suite"
fi

# ---- the cairn mount ------------------------------------------------------------

VOL=$WORK/vol
CAIRN_MNT=$WORK/mnt
mkdir -p "$CAIRN_MNT"
if ! "$CAIRN" mkfs "$VOL" --media emul --log-size 32M --fast-size 256M >"$WORK/mkfs.log" 2>&1; then
	echo "run.sh: cairn mkfs failed:" >&2
	cat "$WORK/mkfs.log" >&2
	exit 1
fi
"$CAIRN" mount "$VOL" "$CAIRN_MNT" --foreground >"$WORK/daemon.log" 2>&1 &
DAEMON=$!
for _ in $(seq 150); do
	mounted "$CAIRN_MNT" && break
	kill -0 "$DAEMON" 2>/dev/null || break
	sleep 0.1
done
if ! mounted "$CAIRN_MNT"; then
	echo "run.sh: cairn mount did not appear in /proc/self/mounts; daemon log:" >&2
	cat "$WORK/daemon.log" >&2
	exit 1
fi
echo "cairn: $VOL mounted at $CAIRN_MNT (emul media, daemon pid $DAEMON)"

# ---- the runs ---------------------------------------------------------------------

run_suite() { # NAME DIR [RUNNER...]
	local t0=$SECONDS rc name=$1 dir=$2
	shift 2
	timeout -k 10 400 "$@" "$SUITE" "$dir" ${FILTER:+"$FILTER"} >"$WORK/$name.txt" 2>"$WORK/$name.err"
	rc=$?
	echo "$name: $(wc -l <"$WORK/$name.txt") cases in $((SECONDS - t0)) s (exit $rc)"
	if [ "$rc" != 0 ]; then
		sed 's/^/  /' "$WORK/$name.err" | tail -5
	fi
	return "$rc"
}

FAIL=0
run_suite "$ORACLE" "$ORACLE_MNT" || FAIL=1
[ -n "$TMPFS_MNT" ] && { run_suite tmpfs "$TMPFS_MNT" || FAIL=1; }
RUNNER=()
[ "${CAIRN_POSIX_SHIM:-0}" = 1 ] && RUNNER=("$CAIRN" run --mount "$CAIRN_MNT" --)
run_suite cairn "$CAIRN_MNT" "${RUNNER[@]}" || FAIL=1
# Under the shim the transcript proves something only if the shim wrote
# files natively, which the daemon counts: a client that lost its
# connection early would pass with every write made by the kernel.
if [ "${CAIRN_POSIX_SHIM:-0}" = 1 ]; then
	LOCAL=$("$CAIRN" stat "$CAIRN_MNT" 2>/dev/null |
		sed -n 's/.* \([0-9][0-9]*\) local writes applied since mount.*/\1/p')
	echo "cairn: ${LOCAL:-no} writes made natively through the shim"
	if [ -z "$FILTER" ] && [ "${LOCAL:-0}" -lt 50 ]; then
		echo "cairn: fewer than 50: the shim did not write the suite's files itself"
		FAIL=1
	fi
fi

# The daemon must still be there, unmount cleanly and exit with status 0:
# a crash, a leak or a sanitizer report at shutdown fails the test.
stop_daemon() {
	local rc
	if ! kill -0 "$DAEMON" 2>/dev/null; then
		echo "cairn: the mount daemon is gone before the unmount"
	elif ! timeout 60 "$CAIRN" umount "$CAIRN_MNT" >"$WORK/umount.log" 2>&1; then
		echo "cairn: umount failed: $(tail -3 "$WORK/umount.log")"
		return 1
	fi
	for _ in $(seq 300); do
		kill -0 "$DAEMON" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$DAEMON" 2>/dev/null; then
		echo "cairn: the mount daemon did not exit within 30 s of the unmount"
		return 1
	fi
	wait "$DAEMON"
	rc=$?
	DAEMON=
	if [ "$rc" != 0 ]; then
		echo "cairn: the mount daemon exited with status $rc; its log:"
		sed 's/^/  /' "$WORK/daemon.log" | tail -30
		return 1
	fi
	if grep -Eq 'ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error:' "$WORK/daemon.log"; then
		echo "cairn: a sanitizer report in the mount daemon's log:"
		grep -E -A10 'Sanitizer|runtime error:' "$WORK/daemon.log" | sed 's/^/  /' | head -40
		return 1
	fi
	echo "cairn: unmounted; the daemon exited with status 0"
}
stop_daemon || FAIL=1

# Compares transcript $2 (name $3) with the oracle $1: prints the
# differences and the counts; exits 0 when every case matches.
# A case listed in known-differences.txt ($4) matches when its line is the
# one listed there: the file holds cairn's transcript line of each known
# case, with comments (#) saying why.  A listed case whose line is anything
# else fails, the oracle's line included (then the listing must go), and
# so does a listing that names no case of the run.
KNOWN=$(dirname "$0")/known-differences.txt
compare() {
	awk -v oname="$ORACLE" -v cname="$3" -v known="${4:-/dev/null}" -v filter="$FILTER" '
	function key(line) { i = index(line, ": "); return i ? substr(line, 1, i - 1) : line }
	BEGIN {
		while ((getline l < known) > 0)
			if (l !~ /^#/ && l !~ /^[ \t]*$/)
				kn[key(l)] = l
	}
	FNR == NR { k = key($0); o[k] = $0; order[++n] = k; next }
	{ k = key($0); c[k] = $0; if (!(k in o)) extra[++ne] = k }
	END {
		pass = 0; fail = 0; nknown = 0
		for (i = 1; i <= n; i++) {
			k = order[i]
			if ((k in kn) && (k in c) && c[k] == kn[k] && c[k] != o[k]) {
				nknown++
				printf "  %s (known)\n    %-6s %s\n    %-6s %s\n", k, oname ":",
					substr(o[k], length(k) + 3), cname ":", substr(c[k], length(k) + 3)
				continue
			}
			if ((k in c) && c[k] == o[k] && !(k in kn)) {
				pass++
				continue
			}
			if (k in kn) {
				fail++
				printf "  %s: a known difference changed\n    %-6s %s\n    %-6s %s\n    %-6s %s\n",
					k, oname ":", substr(o[k], length(k) + 3), "known:", substr(kn[k], length(k) + 3), cname ":",
					(k in c) ? substr(c[k], length(k) + 3) : "(no line: the suite stopped)"
				if ((k in c) && c[k] == o[k])
					printf "    it now matches %s: take it off %s\n", oname, known
				continue
			}
			fail++
			printf "  %s\n    %-6s %s\n    %-6s %s\n", k, oname ":", substr(o[k], length(k) + 3),
				cname ":", (k in c) ? substr(c[k], length(k) + 3) : "(no line: the suite stopped)"
		}
		if (filter == "")
			for (k in kn)
				if (!(k in o)) {
					fail++
					printf "  %s: listed as a known difference, but there is no such case\n", k
				}
		for (i = 1; i <= ne; i++) {
			fail++
			printf "  %s\n    %-6s (no such case)\n    %-6s %s\n", extra[i], oname ":", cname ":",
				substr(c[extra[i]], length(extra[i]) + 3)
		}
		if (nknown)
			printf "%d known differences (tests/posix/known-differences.txt)\n", nknown
		printf "%d passed, %d failed\n", pass, fail
		exit fail != 0
	}' "$1" "$2"
}

if [ -n "$TMPFS_MNT" ]; then
	if compare "$WORK/$ORACLE.txt" "$WORK/tmpfs.txt" tmpfs >"$WORK/tmpfs.cmp"; then
		echo "tmpfs vs ext4: all cases agree"
	else
		echo "tmpfs vs ext4 (a check of the suite, not fatal): $(tail -1 "$WORK/tmpfs.cmp")"
		head -n -1 "$WORK/tmpfs.cmp"
	fi
fi

echo "cairn vs $ORACLE:"
compare "$WORK/$ORACLE.txt" "$WORK/cairn.txt" cairn "$KNOWN" >"$WORK/cairn.cmp"
CMP=$?
head -n -1 "$WORK/cairn.cmp"
echo "posix_conformance: $(tail -1 "$WORK/cairn.cmp") (oracle: $ORACLE)"
[ "$CMP" = 0 ] || FAIL=1

if [ -n "${CAIRN_POSIX_OUT:-}" ]; then
	mkdir -p "$CAIRN_POSIX_OUT" &&
		cp "$WORK"/*.txt "$WORK"/*.cmp "$WORK/daemon.log" "$CAIRN_POSIX_OUT"/ 2>/dev/null
fi
exit "$FAIL"
