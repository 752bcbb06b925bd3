#!/usr/bin/env bash
# scrub.sh CAIRN - data checksums through the cairn command and the mount:
# files written through the mount, one byte of one digested block changed
# in the fast part behind cairn's back.  Then: reading that file through
# the mount fails with EIO while the others read back whole; `cairn scrub
# MOUNTPOINT` (online, by the daemon) exits 1 and names the file and the
# offset; `cairn fsck` reports a data-checksum problem; `cairn scrub
# VOLUME` (offline) says the same; after the damaged block is written whole
# every check is clean.  A healthy volume scrubs with exit 0.  Skipped (77)
# unless root with /dev/fuse.
set -euo pipefail
CAIRN=${1:?usage: scrub.sh CAIRN}
PROG=scrub
source "$(dirname "$0")/lib.sh"
[ "$(id -u)" -eq 0 ] && [ -c /dev/fuse ] || { echo "[scrub] skipped: needs root and /dev/fuse"; exit 77; }

SCRATCH=$(mktemp -d /dev/shm/cairn-scrub.XXXXXX)
MNT=$SCRATCH/mnt
VOL=$SCRATCH/vol
cleanup() {
	"$CAIRN" umount "$MNT" >/dev/null 2>&1 || true
	rm -rf "$SCRATCH"
}
trap cleanup EXIT
mkdir "$MNT"

# A 16 KiB file whose third block starts with a marker found nowhere else.
marked_file() {
	head -c 8192 /dev/urandom
	printf 'SCRUB-MARKER-%s-' "$1"
	head -c $((8192 - 14 - ${#1})) /dev/urandom
}

"$CAIRN" mkfs "$VOL" --media file --fast-size 64M --log-size 16M >/dev/null
"$CAIRN" mount "$VOL" "$MNT"
mkdir "$MNT/d"
marked_file victim >"$MNT/d/victim"
for i in $(seq 20); do head -c 50000 /dev/urandom >"$MNT/d/other$i"; done
(cd "$MNT" && md5sum d/other*) >"$SCRATCH/sums"
"$CAIRN" scrub "$MNT" >"$SCRATCH/out" || { cat "$SCRATCH/out"; die "scrub of a healthy mount failed"; }
grep -q "no damage" "$SCRATCH/out" || die "scrub of a healthy mount: $(cat "$SCRATCH/out")"
"$CAIRN" umount "$MNT" # digests everything into the fast part

# One byte of the victim's third block, in the part file.
off=$(grep -obUa "SCRUB-MARKER-victim-" "$VOL/fast.part" | head -1 | cut -d: -f1)
[ -n "$off" ] || die "the marker is not in the fast part"
[ $((off % 4096)) -eq 0 ] || die "the marker is not at a block start ($off)"
printf 'X' | dd of="$VOL/fast.part" bs=1 seek=$((off + 100)) conv=notrunc status=none

"$CAIRN" mount "$VOL" "$MNT"
if out=$(cat "$MNT/d/victim" 2>&1 >/dev/null); then
	die "reading the damaged file succeeded"
fi
case "$out" in *"Input/output error"*) ;; *) die "reading the damaged file: '$out', expected EIO" ;; esac
head -c 8192 "$MNT/d/victim" >/dev/null || die "the undamaged blocks before it must read"
(cd "$MNT" && md5sum -c --quiet "$SCRATCH/sums") || die "other files changed"

set +e
"$CAIRN" scrub "$MNT" >"$SCRATCH/out" 2>"$SCRATCH/err"
rc=$?
set -e
[ "$rc" -eq 1 ] || { cat "$SCRATCH/out" "$SCRATCH/err"; die "online scrub exited $rc, expected 1"; }
grep -q "1 damaged blocks" "$SCRATCH/out" || die "online scrub: $(cat "$SCRATCH/out")"
grep -q "$MNT/d/victim: offset 8192" "$SCRATCH/out" || die "online scrub does not name the file: $(cat "$SCRATCH/out")"
"$CAIRN" umount "$MNT"

set +e
"$CAIRN" fsck "$VOL" >"$SCRATCH/out" 2>&1
rc=$?
set -e
[ "$rc" -eq 1 ] || { cat "$SCRATCH/out"; die "fsck exited $rc, expected 1"; }
grep -q "file offset 8192" "$SCRATCH/out" || die "fsck: $(cat "$SCRATCH/out")"

set +e
"$CAIRN" scrub "$VOL" >"$SCRATCH/out" 2>&1
rc=$?
set -e
[ "$rc" -eq 1 ] || { cat "$SCRATCH/out"; die "offline scrub exited $rc, expected 1"; }
grep -q "/d/victim: offset 8192" "$SCRATCH/out" || die "offline scrub: $(cat "$SCRATCH/out")"

# Writing the damaged block whole heals it.
"$CAIRN" mount "$VOL" "$MNT"
head -c 4096 /dev/urandom | dd of="$MNT/d/victim" bs=4096 seek=2 conv=notrunc status=none
cat "$MNT/d/victim" >/dev/null || die "the rewritten file still fails"
"$CAIRN" umount "$MNT"
"$CAIRN" scrub "$VOL" >"$SCRATCH/out" || { cat "$SCRATCH/out"; die "scrub after the rewrite"; }
"$CAIRN" fsck "$VOL" >"$SCRATCH/out" || { cat "$SCRATCH/out"; die "fsck after the rewrite"; }

# A volume served without a mount (`cairn serve`) is scrubbed online by
# that daemon too, and not by a user other than root.
"$CAIRN" serve "$VOL" 2>"$SCRATCH/serve.err" &
serve=$!
for _ in $(seq 100); do [ -S "$VOL/cairn.sock" ] && break; sleep 0.05; done
"$CAIRN" scrub "$VOL" >"$SCRATCH/out" 2>&1 || { cat "$SCRATCH/out"; kill $serve; die "scrub of a served volume"; }
grep -q "no damage" "$SCRATCH/out" || { kill $serve; die "scrub of a served volume: $(cat "$SCRATCH/out")"; }
chmod 0755 "$SCRATCH" "$VOL" # the socket within reach: the daemon itself refuses
set +e
su nobody -s /bin/sh -c "\"$CAIRN\" scrub \"$VOL\"" >"$SCRATCH/out" 2>&1
rc=$?
set -e
kill -TERM $serve
wait $serve || die "cairn serve exited $?: $(cat "$SCRATCH/serve.err")"
[ "$rc" -eq 3 ] && grep -q "only root" "$SCRATCH/out" || die "scrub by another user: exit $rc: $(cat "$SCRATCH/out")"
note "ok: EIO, online (mount and serve) and offline scrub, fsck, healed by a whole write"
