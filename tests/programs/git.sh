#!/usr/bin/env bash
# git.sh MNT - git on the file system at MNT: a tree of 3000 small files
# in 60 directories; git init, add, commit; changes of every kind (edits,
# new files, deletions, renames, a mode change, a symlink); a second
# commit; log, status, diff; gc; fsck --full --strict is clean; a clone on
# the same file system checks out the same tree.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
command -v git >/dev/null || die "git is not installed (scripts/deps.sh installs it)"
setup_workdir "${1:-}"
T0=$(now)

# No configuration of the user or the machine applies.
export HOME=$WORK GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
export GIT_AUTHOR_DATE="2024-01-01T00:00:00Z" GIT_COMMITTER_DATE="2024-01-01T00:00:00Z"
REPO=$WORK/repo
NFILES=3000

g() {
	local out rc=0
	out=$(git -C "$REPO" "$@" 2>&1) || rc=$?
	[ "$rc" -eq 0 ] || die "git $* exited $rc: $out"
	printf '%s\n' "$out"
}

# ---- the tree -----------------------------------------------------------------
t=$(now)
mkdir "$REPO"
# 3000 files: dir00..dir59/sub{0,1}/file-NNNN.txt, 10 to 2000 bytes each.
awk -v repo="$REPO" -v n="$NFILES" 'BEGIN {
	for (i = 0; i < n; i++) {
		d = sprintf("%s/dir%02d/sub%d", repo, i % 60, i % 2)
		if (!(d in made)) { made[d] = 1; system("mkdir -p " d) }
		f = sprintf("%s/file-%04d.txt", d, i)
		len = 10 + (i * 7919) % 2000
		s = sprintf("file %d\n", i)
		while (length(s) < len) s = s sprintf("line %d of file %d: %d\n", length(s), i, (i * length(s)) % 9973)
		printf "%s", s > f
		close(f)
	}
}' || die "making the tree of $NFILES files failed"
n=$(find "$REPO" -type f | wc -l)
[ "$n" -eq "$NFILES" ] || die "the tree has $n files, not $NFILES"
note "a tree of $NFILES files: $(since "$t")s"

# ---- first commit ---------------------------------------------------------------
t=$(now)
g init -q -b main >/dev/null
g config user.name "Cairn Test" >/dev/null
g config user.email "cairn@example.invalid" >/dev/null
g config gc.auto 0 >/dev/null
g add -A >/dev/null
g commit -q -m "first: $NFILES files" >/dev/null
n=$(g ls-files | wc -l)
[ "$n" -eq "$NFILES" ] || die "git ls-files lists $n files after the first commit, not $NFILES"
st=$(g status --porcelain)
[ -z "$st" ] || die "git status is not clean after the first commit: $(head -5 <<<"$st")"
note "git init, add, commit: $(since "$t")s"

# ---- changes of every kind, second commit ------------------------------------
t=$(now)
for i in $(seq 0 29 2999); do   # 104 edits
	f=$(printf '%s/dir%02d/sub%d/file-%04d.txt' "$REPO" $((i % 60)) $((i % 2)) "$i")
	printf 'edited line of file %d\n' "$i" >>"$f"
done
mkdir -p "$REPO/new/deep/er"
for i in $(seq 1 50); do
	printf 'new file %d\n' "$i" >"$REPO/new/deep/er/n$i.txt"
done
for i in $(seq 1 97 2999); do   # 31 deletions
	rm "$(printf '%s/dir%02d/sub%d/file-%04d.txt' "$REPO" $((i % 60)) $((i % 2)) "$i")"
done
g mv dir59 renamed59 >/dev/null
chmod +x "$REPO/dir00/sub0/file-0000.txt"
ln -s ../dir00/sub0/file-0000.txt "$REPO/new/link"
st=$(g status --porcelain | wc -l)
[ "$st" -gt 100 ] || die "git status shows only $st changes, expected well over 100"
g add -A >/dev/null
g commit -q -m "second: edits, new files, deletions, a rename" >/dev/null
expect=$((NFILES + 50 + 1 - 31))
n=$(g ls-files | wc -l)
[ "$n" -eq "$expect" ] || die "git ls-files lists $n files after the second commit, not $expect"
st=$(g status --porcelain)
[ -z "$st" ] || die "git status is not clean after the second commit: $(head -5 <<<"$st")"
stat=$(g diff --shortstat HEAD~1 HEAD)
note "second commit ($stat): $(since "$t")s"
[ "$(g log --oneline | wc -l)" -eq 2 ] || die "git log does not show 2 commits: $(g log --oneline)"
[ "$(g ls-tree HEAD new/link | cut -c1-6)" = 120000 ] || die "new/link is not a symlink in the commit"
[ "$(g ls-tree HEAD dir00/sub0/file-0000.txt | cut -c1-6)" = 100755 ] || die "the mode change was not committed"
g log --stat >/dev/null

# ---- gc, fsck -------------------------------------------------------------------
t=$(now)
loose=$(g count-objects | cut -d' ' -f1)
g gc -q --prune=now >/dev/null
after=$(g count-objects -v)
grep -q '^count: 0$' <<<"$after" || die "loose objects are left after git gc: $after"
grep -q '^packs: 1$' <<<"$after" || die "git gc did not make one pack: $after"
fsck=$(git -C "$REPO" fsck --full --strict --no-dangling 2>&1) || die "git fsck --full --strict failed: $fsck"
[ -z "$fsck" ] || die "git fsck --full --strict printed: $fsck"
st=$(g status --porcelain)
[ -z "$st" ] || die "git status is not clean after git gc: $(head -5 <<<"$st")"
note "git gc ($loose loose objects into one pack), fsck clean: $(since "$t")s"

# ---- a clone on the same file system ------------------------------------------
t=$(now)
git clone -q --no-hardlinks "$REPO" "$WORK/clone" 2>"$WORK/clone.err" ||
	die "git clone failed: $(cat "$WORK/clone.err")"
diff -r --no-dereference -x .git "$REPO" "$WORK/clone" >"$WORK/clone.diff" 2>&1 ||
	die "the clone's tree differs from the repository's: $(head -10 "$WORK/clone.diff")"
[ "$(git -C "$WORK/clone" rev-parse HEAD)" = "$(g rev-parse HEAD)" ] || die "the clone's HEAD differs"
git -C "$WORK/clone" checkout -q HEAD~1 2>"$WORK/clone.err" || die "git checkout HEAD~1 in the clone: $(cat "$WORK/clone.err")"
n=$(find "$WORK/clone" -path "$WORK/clone/.git" -prune -o -type f -print | wc -l)
[ "$n" -eq "$NFILES" ] || die "checkout of the first commit in the clone has $n files, not $NFILES"
fsck=$(git -C "$WORK/clone" fsck --full --strict --no-dangling 2>&1) || die "git fsck in the clone failed: $fsck"
note "git clone, diff, checkout, fsck: $(since "$t")s"

finish_workdir
note "passed in $(since "$T0")s"
