#!/usr/bin/env bash
# full.sh CAIRN - full volumes through the FUSE mount, on the file and the
# emul medium: a large file fills the fast tier, then names are created
# until the volume refuses one.  Every refusal must be ENOSPC (never EIO);
# then rm, mv, rmdir and truncate work on the full volume, df reports no
# space left, and after the space is freed new files can be made; the
# volume unmounts, fsck finds it clean, and it mounts again with the same
# contents.  Then small files on a tiered volume, whose extent maps live on
# the fast tier while their data may go down.  Skipped (77) unless root
# with /dev/fuse.
set -euo pipefail
CAIRN=${1:?usage: full.sh CAIRN}
PROG=full
source "$(dirname "$0")/lib.sh"
[ "$(id -u)" -eq 0 ] && [ -c /dev/fuse ] || { echo "[full] skipped: needs root and /dev/fuse"; exit 77; }

SCRATCH=$(mktemp -d /dev/shm/cairn-full.XXXXXX)
MNT=$SCRATCH/mnt
cleanup() {
	"$CAIRN" umount "$MNT" >/dev/null 2>&1 || true
	rm -rf "$SCRATCH"
}
trap cleanup EXIT
mkdir "$MNT"

# expect_enospc CMD...: CMD must fail, and say "No space left on device".
expect_enospc() {
	local out
	if out=$("$@" 2>&1); then
		die "'$*' succeeded on a full volume"
	fi
	case "$out" in
	*"No space left on device"*) ;;
	*) die "'$*' failed with '$out', expected ENOSPC" ;;
	esac
}

# remount_same VOL: umount, fsck clean, mount, the same tree and contents.
remount_same() {
	local vol=$1
	(cd "$MNT" && find . -printf '%p %y %s %m\n' | sort) >"$SCRATCH/before"
	"$CAIRN" umount "$MNT"
	"$CAIRN" fsck "$vol" >"$SCRATCH/fsck.out" 2>&1 || {
		cat "$SCRATCH/fsck.out"
		die "fsck of $vol is not clean"
	}
	"$CAIRN" mount "$vol" "$MNT"
	(cd "$MNT" && find . -printf '%p %y %s %m\n' | sort) >"$SCRATCH/after"
	cmp -s "$SCRATCH/before" "$SCRATCH/after" || die "the tree changed across a remount"
}

names_after_data() {
	local media=$1 vol=$SCRATCH/vol-$1
	"$CAIRN" mkfs "$vol" --media "$media" --fast-size 32M --log-size 8M >/dev/null
	"$CAIRN" mount "$vol" "$MNT"
	mkdir "$MNT/d"
	touch "$MNT/d/first-1" "$MNT/d/first-2"
	expect_enospc dd if=/dev/zero of="$MNT/big" bs=1M
	expect_enospc dd if=/dev/zero of="$MNT/big2" bs=4k
	local i=0 out
	while :; do
		i=$((i + 1))
		[ $i -le 20000 ] || die "20000 names fit in a full volume"
		if ! out=$(touch "$MNT/d/file-with-a-longish-name-$i" 2>&1); then
			case "$out" in
			*"No space left on device"*) break ;;
			*) die "touch of name $i: '$out', expected ENOSPC" ;;
			esac
		fi
	done
	note "$media: $((i - 1)) names fit after the data"
	expect_enospc mkdir "$MNT/d2"
	expect_enospc setfattr -n user.a -v "$(head -c 900 /dev/zero | tr '\0' x)" "$MNT/big"
	local avail
	avail=$(df --output=avail -k "$MNT" | tail -1 | tr -d ' ')
	[ "$avail" -le 64 ] || die "df shows $avail KiB available on a full volume"
	remount_same "$vol"
	mv "$MNT/d/first-1" "$MNT/d/renamed"
	truncate -s 1M "$MNT/big"
	rm "$MNT/big" "$MNT/big2"
	rm -r "$MNT/d"
	mkdir "$MNT/after"
	echo "written after space was freed" >"$MNT/after/file"
	remount_same "$vol"
	"$CAIRN" umount "$MNT"
}

small_files_tiered() {
	local vol=$SCRATCH/vol-tiered
	"$CAIRN" mkfs "$vol" --media emul --fast-size 8M --log-size 8M \
		--tier "ssd=$SCRATCH/ssd.tier:32M" >/dev/null
	"$CAIRN" mount "$vol" "$MNT"
	mkdir "$MNT/x"
	local k=0 out
	while :; do
		k=$((k + 1))
		[ $k -le 20000 ] || break
		if ! out=$( (echo $k >"$MNT/x/f$k") 2>&1); then
			case "$out" in
			*"No space left on device"*) break ;;
			*) die "small file $k: '$out', expected ENOSPC" ;;
			esac
		fi
	done
	note "tiered: $((k - 1)) small files"
	remount_same "$vol"
	rm -r "$MNT/x"
	echo "space is back" >"$MNT/after"
	remount_same "$vol"
	"$CAIRN" umount "$MNT"
}

command -v setfattr >/dev/null || die "setfattr (package attr) is missing"
names_after_data file
names_after_data emul
small_files_tiered
note "passed"
