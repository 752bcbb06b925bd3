#!/usr/bin/env bash
# million.sh MNT - one directory of 1,000,000 entries on the file system at
# MNT: created (empty files, by a small C program compiled here), listed
# with ls -f (the count, and every name exactly once), a random sample of
# 1000 names stat'ed, a rename of 1000 of them, 64 KiB written with dd
# into one of them and read back, all removed with find -delete, the
# directory empty.  Prints the time of each step.
#   MILLION_N  the number of entries (default 1000000)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
command -v cc >/dev/null || die "cc is not installed"
N=${MILLION_N:-1000000}
setup_workdir "${1:-}"
T0=$(now)
D=$WORK/dir
mkdir "$D"

HELPER=$(mktemp -d /tmp/cairn-million.XXXXXX)
trap 'rm -rf -- "$HELPER"' EXIT
cat >"$HELPER/mkmany.c" <<'C'
/* mkmany DIR N: creates the empty files DIR/f0000000 .. DIR/f(N-1) with
 * O_CREAT|O_EXCL, each opened and closed; prints a line every 100,000. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}
int main(int argc, char **argv)
{
	if (argc != 3)
		return 2;
	int dir = open(argv[1], O_RDONLY | O_DIRECTORY);
	if (dir < 0) {
		fprintf(stderr, "mkmany: open %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	long n = atol(argv[2]);
	double t0 = now(), t = t0;
	for (long i = 0; i < n; i++) {
		char name[32];
		snprintf(name, sizeof(name), "f%07ld", i);
		int fd = openat(dir, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd < 0 || close(fd)) {
			fprintf(stderr, "mkmany: create %s/%s (entry %ld): %s\n", argv[1], name, i,
				strerror(errno));
			return 1;
		}
		if ((i + 1) % 100000 == 0) {
			double u = now();
			printf("[million]   %ld created, %.0f/s over the last 100000\n", i + 1, 100000 / (u - t));
			fflush(stdout);
			t = u;
		}
	}
	printf("[million]   %ld created in %.1fs, %.0f/s\n", n, now() - t0, n / (now() - t0));
	return 0;
}
C
cc -O2 -Wall -o "$HELPER/mkmany" "$HELPER/mkmany.c" || die "compiling the helper failed"

# names: the expected names, sorted.
awk -v n="$N" 'BEGIN { for (i = 0; i < n; i++) printf "f%07d\n", i }' >"$HELPER/names"

t=$(now)
"$HELPER/mkmany" "$D" "$N" || die "creating $N files in $D failed (see above)"
note "create $N files: $(since "$t")s"

t=$(now)
n=$(ls -f "$D" | wc -l) || die "ls -f $D failed"
note "ls -f | wc -l: $(since "$t")s"
[ "$n" -eq $((N + 2)) ] || die "ls -f $D lists $n entries, expected $N and . and .."
t=$(now)
ls -f "$D" | grep -v '^\.\.\?$' | LC_ALL=C sort >"$HELPER/listed" || die "ls -f $D failed"
if ! cmp -s "$HELPER/names" "$HELPER/listed"; then
	dups=$(uniq -d "$HELPER/listed" | head -5 | tr '\n' ' ')
	missing=$(LC_ALL=C comm -23 "$HELPER/names" "$HELPER/listed" | head -5 | tr '\n' ' ')
	extra=$(LC_ALL=C comm -13 "$HELPER/names" "$HELPER/listed" | head -5 | tr '\n' ' ')
	die "ls -f does not list every name exactly once: duplicates: ${dups:-none}; missing: ${missing:-none}; unexpected: ${extra:-none}"
fi
note "ls -f lists every name once: $(since "$t")s"

t=$(now)
shuf -n 1000 "$HELPER/names" | sed "s|^|$D/|" >"$HELPER/sample"
bad=$(xargs -d '\n' stat -c '%F %s %a %h' <"$HELPER/sample" | sort | uniq -c) || die "stat of a sample of 1000 names failed"
[ "$(echo "$bad" | awk '{$1=$1};1')" = "1000 regular empty file 0 644 1" ] ||
	die "stat of 1000 random names: expected 1000 empty files of mode 644, got: $bad"
note "stat of 1000 random names: $(since "$t")s"

t=$(now)
while read -r p; do
	mv -- "$p" "$p.renamed" || die "mv $p $p.renamed failed"
done < <(head -1000 "$HELPER/sample")
n=$(find "$D" -maxdepth 1 -name '*.renamed' | wc -l)
[ "$n" -eq 1000 ] || die "find lists $n renamed names after 1000 renames"
note "rename 1000 names, find them: $(since "$t")s"

t=$(now)
# A name the renames left alone (they took the whole sample).
f=$D/$(awk -v d="$D/" 'NR == FNR { s[substr($0, length(d) + 1)]; next } !($0 in s) { print; exit }' \
	"$HELPER/sample" "$HELPER/names")
head -c 65536 /dev/urandom >"$HELPER/data"
dd if="$HELPER/data" of="$f" bs=4096 conv=notrunc status=none || die "dd into $f failed"
cmp "$HELPER/data" "$f" || die "$f does not read back what dd wrote into it"
note "64 KiB written into one of the $N names and read back: $(since "$t")s"

t=$(now)
find "$D" -mindepth 1 -delete || die "find $D -mindepth 1 -delete failed"
note "find -delete of $N files: $(since "$t")s"
left=$(ls -A "$D" | head -5)
[ -z "$left" ] || die "$D is not empty after find -delete: $left ..."
n=$(ls -f "$D" | wc -l)
[ "$n" -eq 2 ] || die "ls -f of the emptied $D lists $n entries, not 2"
rmdir "$D" || die "rmdir of the emptied $D failed"

finish_workdir
note "passed in $(since "$T0")s"
