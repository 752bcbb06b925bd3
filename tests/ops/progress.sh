#!/usr/bin/env bash
# progress.sh CAIRN - long commands show progress on a terminal and stay
# quiet elsewhere: mkfs of a volume whose parts take seconds to write,
# under script(1) (a terminal) and with stderr in a file; fsck of it too.
# shellcheck source=tests/ops/lib.sh
source "$(dirname "$0")/lib.sh"
cairn=$(realpath "$1")
work=$(mktemp -d /var/tmp/cairn-progress.XXXXXX) # a disk: the file medium
trap 'rm -rf "$work"' EXIT
mkfs_args="--media file --log-size 64M --fast-size 1G"

# shellcheck disable=SC2086
script -qec "'$cairn' mkfs '$work/tty' $mkfs_args" /dev/null >"$work/tty.out" </dev/null ||
	fail "mkfs on a terminal failed: $(cat "$work/tty.out")"
tr '\r' '\n' <"$work/tty.out" >"$work/tty.lines"
grep -q "cairn: mkfs: writing zeros over a new part of 1024 MiB 100%" "$work/tty.lines" ||
	fail "no progress of the fast part on a terminal: $(head -c 600 "$work/tty.lines")"
n=$(grep -c "writing zeros over a new part of 1024 MiB" "$work/tty.lines")
[ "$n" -ge 3 ] || fail "the progress was drawn $n times, not redrawn as it went"
last=$(grep -v "^$" "$work/tty.lines" | tail -1)
grep -q "cairn: created volume" <<<"$last" || fail "the last line is not mkfs's: $last"

# shellcheck disable=SC2086
"$cairn" mkfs "$work/file" $mkfs_args >"$work/out" 2>"$work/err" || fail "mkfs failed: $(cat "$work/err")"
[ ! -s "$work/err" ] || fail "progress on stderr that is not a terminal: $(od -c "$work/err" | head -3)"
grep -q "cairn: created volume" "$work/out" || fail "mkfs said nothing on stdout"

script -qec "'$cairn' fsck '$work/tty'" /dev/null >"$work/fsck.out" </dev/null ||
	fail "fsck on a terminal failed: $(cat "$work/fsck.out")"
grep -q $'\rfsck: inodes .*%' "$work/fsck.out" || fail "fsck drew no progress on a terminal"
"$cairn" fsck "$work/file" >/dev/null 2>"$work/err" || fail "fsck failed"
[ ! -s "$work/err" ] || fail "fsck's progress on stderr that is not a terminal"
echo "[progress] passed"
