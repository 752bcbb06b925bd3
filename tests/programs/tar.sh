#!/usr/bin/env bash
# tar.sh MNT [SRC] - tar on the file system at MNT: SRC (default
# /usr/include) copied in with tar -c | tar -x; then every regular file's
# SHA-256, every symlink's target, every node's type, mode, owner and size
# (and the link count of files, the mtime to the second) compared with
# SRC; a second tar of the copy read back and compared; rm -rf of the copy
# leaves its directory empty, and the space and inodes it took are free
# again.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
SRC=${2:-/usr/include}
[ -d "$SRC" ] || die "$SRC is not a directory"
setup_workdir "${1:-}"
T0=$(now)
DST=$WORK/inc
mkdir "$DST"

df_used() { df --output=used,iused "$WORK" | tail -1; }
used0=$(df_used)

# listing DIR: one line for every node below DIR, sorted: type, mode,
# owner, size of files and links, link count of files, mtime (s), name,
# symlink target.
listing() {
	(cd "$1" && find . -mindepth 1 -printf '%y %m %U:%G %p %l\n' | sort) ||
		die "listing $1 failed"
	(cd "$1" && find . -mindepth 1 \( -type f -o -type l \) -printf '%y %s %p\n' | sort) ||
		die "listing $1 failed"
	(cd "$1" && find . -mindepth 1 -type f -printf '%n %p\n' | sort) ||
		die "listing $1 failed"
	(cd "$1" && find . -mindepth 1 -printf '%T@ %p\n' | awk '{ $1 = int($1); print }' | sort) ||
		die "listing $1 failed"
}
# sums DIR: the SHA-256 of every regular file below DIR, sorted by name.
sums() {
	(cd "$1" && find . -type f -print0 | sort -z | xargs -0 -r sha256sum) || die "sha256sum of the files in $1 failed"
}

t=$(now)
set +e
tar -C "$SRC" -cf - . | tar -C "$DST" -xpf -
rcs=("${PIPESTATUS[@]}")
set -e
[ "${rcs[0]}" -eq 0 ] && [ "${rcs[1]}" -eq 0 ] || die "tar -C $SRC -cf - . | tar -C $DST -xpf - exited ${rcs[*]}"
nfiles=$(find "$DST" -type f | wc -l)
nlinks=$(find "$DST" -type l | wc -l)
ndirs=$(find "$DST" -type d | wc -l)
note "tar -x of $SRC ($(du -sh --apparent-size "$SRC" | cut -f1), $nfiles files, $nlinks symlinks, $ndirs directories): $(since "$t")s"

t=$(now)
sums "$SRC" >"$WORK/src.sums"
sums "$DST" >"$WORK/dst.sums"
n=$(wc -l <"$WORK/src.sums")
[ "$n" -gt 0 ] || die "no files in $SRC?"
if ! cmp -s "$WORK/src.sums" "$WORK/dst.sums"; then
	diff "$WORK/src.sums" "$WORK/dst.sums" | head -20 >&2
	die "the SHA-256 sums of the copy differ from those of $SRC ($(diff "$WORK/src.sums" "$WORK/dst.sums" | grep -c '^>') lines differ; see above)"
fi
note "sha256sum of $n files equal: $(since "$t")s"

t=$(now)
listing "$SRC" >"$WORK/src.list"
listing "$DST" >"$WORK/dst.list"
if ! cmp -s "$WORK/src.list" "$WORK/dst.list"; then
	diff "$WORK/src.list" "$WORK/dst.list" | head -20 >&2
	die "types, modes, owners, sizes, link counts, mtimes or symlink targets of the copy differ from $SRC (see above)"
fi
note "types, modes, owners, sizes, link counts, mtimes, symlink targets equal: $(since "$t")s"

# Read back through tar as well: the archive of the copy lists the same.
t=$(now)
tar -C "$SRC" -cf - . | tar -tvf - | sort >"$WORK/src.tar" || die "tar -tv of $SRC failed"
tar -C "$DST" -cf - . | tar -tvf - | sort >"$WORK/dst.tar" || die "tar -c of the copy failed"
if ! cmp -s "$WORK/src.tar" "$WORK/dst.tar"; then
	diff "$WORK/src.tar" "$WORK/dst.tar" | head -20 >&2
	die "tar -tv of the copy differs from that of $SRC (see above)"
fi
note "tar -c of the copy lists the same: $(since "$t")s"
rm -f "$WORK"/*.sums "$WORK"/*.list "$WORK"/*.tar

t=$(now)
rm -rf -- "$DST" || die "rm -rf $DST failed"
[ ! -e "$DST" ] || die "$DST is still there after rm -rf"
left=$(ls -A "$WORK")
[ -z "$left" ] || die "$WORK is not empty after rm -rf $DST: $left"
left=$(find "$WORK" -mindepth 1 | head -5)
[ -z "$left" ] || die "find lists nodes in $WORK after rm -rf: $left"
note "rm -rf: $(since "$t")s"

# The inodes of the copy are free again (within 5, for the lists written
# meanwhile), at once or within 10 s; so are its blocks (within 1 MiB),
# which a file system may give back later (as cairn does when it digests
# its log): only a warning, unless CAIRN_STRICT_DF=1.
read -r u0 i0 <<<"$used0"
for ((k = 0; k < 100; k++)); do
	read -r u1 i1 <<<"$(df_used)"
	[ $((u1 - u0)) -le 1024 ] && [ $((i1 - i0)) -le 5 ] && break
	sleep 0.1
done
[ $((i1 - i0)) -le 5 ] || die "df -i: $((i1 - i0)) more inodes used after rm -rf than before tar -x ($i0 then, $i1 now)"
if [ $((u1 - u0)) -gt 1024 ]; then
	msg="df: $((u1 - u0)) KiB more used 10 s after rm -rf than before tar -x ($u0 KiB then, $u1 KiB now)"
	[ "${CAIRN_STRICT_DF:-0}" = 1 ] && die "$msg"
	note "WARNING: $msg: the space of the removed files is not shown free"
fi
note "df after rm -rf: $((u1 - u0)) KiB, $((i1 - i0)) inodes more used than before tar -x"

finish_workdir
note "passed in $(since "$T0")s"
