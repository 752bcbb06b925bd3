# lib.sh - helpers shared by the program tests (sourced, not run).
#
# Every test script takes a directory (a cairn mount point, or any
# directory for a dry run) as $1, works in a fresh subdirectory of it and
# removes that subdirectory when it passes.  A failure prints what was run
# and what went wrong, and exits non-zero; the subdirectory is then left
# for a look.

PROG=$(basename "$0" .sh)
umask 022 # the modes the tests expect of new files

# A command that fails outside a test (if, ||, &&) names itself and its line.
set -E
trap 'echo "FAIL [$PROG]: line $LINENO: exited $?: $BASH_COMMAND" >&2' ERR

die() {
	echo "FAIL [$PROG]: $*" >&2
	exit 1
}

note() {
	echo "[$PROG] $*"
}

now() {
	date +%s.%N
}

# since T0: seconds since the time T0 (from now), with 2 decimals.
since() {
	awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'
}

# timed LABEL CMD...: runs CMD, prints how long it took; a failure of CMD
# is fatal and names it.
timed() {
	local label=$1
	shift
	local t0 rc=0
	t0=$(now)
	"$@" || rc=$?
	[ "$rc" -eq 0 ] || die "$label: '$*' exited $rc"
	note "$label: $(since "$t0")s"
}

# setup_workdir DIR: checks DIR and makes WORK, a new directory in it.
setup_workdir() {
	local base=${1:-}
	[ -n "$base" ] || { echo "usage: $0 DIRECTORY (a cairn mount point)" >&2; exit 2; }
	[ -d "$base" ] || die "$base is not a directory"
	WORK=$(mktemp -d "$base/$PROG.XXXXXX") || die "cannot make a directory in $base"
	note "working in $WORK"
}

# finish_workdir: removes WORK (the test passed) and checks it is gone.
finish_workdir() {
	rm -rf -- "$WORK" || die "rm -rf $WORK failed"
	[ ! -e "$WORK" ] || die "$WORK still exists after rm -rf"
}
