# lib.sh - what the ops tests share (sourced, not run): set -euo pipefail,
# fail() naming the test, need_root_fuse (exit 77, which CTest counts as
# skipped, without root and /dev/fuse), and the volume's numbers read out
# of `cairn stat --json`.
set -euo pipefail
OPS_TEST=$(basename "$0" .sh)

fail() {
	echo "FAIL [$OPS_TEST]: $*" >&2
	exit 1
}

need_root_fuse() {
	if [ "$(id -u)" != 0 ] || [ ! -c /dev/fuse ]; then
		echo "SKIP: needs root and /dev/fuse"
		exit 77
	fi
}

# json_field NAME JSON: the value of a number or boolean key.
json_field() { grep -o "\"$1\": [a-z0-9]*" <<<"$2" | sed 's/.*: //'; }
