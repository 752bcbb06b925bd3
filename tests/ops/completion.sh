#!/usr/bin/env bash
# completion.sh SCRIPT CAIRN - the bash completion of cairn, sourced into
# a plain bash (no bash-completion package) and asked as bash asks it:
# commands, each command's options, --media values, directories for
# volumes, cairn mounts for umount, programs after `cairn run --`.
# shellcheck source=tests/ops/lib.sh
source "$(dirname "$0")/lib.sh"
script=$(realpath "$1")
cairn=$(realpath "$2")
# shellcheck source=/dev/null
source "$script"
[ "$(complete -p cairn)" = "complete -F _cairn cairn" ] || fail "not registered: $(complete -p cairn)"
work=$(mktemp -d /tmp/cairn-comp.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/volume-a" "$work/volume-b"
touch "$work/volume-file"

# ask WORD...: what completing the last word offers, sorted, one line.
ask() {
	COMP_WORDS=("$@")
	COMP_CWORD=$(($# - 1))
	COMPREPLY=()
	_cairn
	printf '%s\n' "${COMPREPLY[@]}" | sort -u | tr '\n' ' ' | sed 's/ $//'
}
expect() {
	local want=$1 got
	shift
	got=$(ask "$@")
	[ "$got" = "$want" ] || fail "'$*': offered '$got', expected '$want'"
}
expect "mkfs mount" cairn m
expect "--help demo fsck mkfs mount run scrub serve stat tier tune umount" cairn ""
expect "add grow remove" cairn tier ""
expect "remove" cairn tier r
expect "$work/volume-a $work/volume-b" cairn tier add "$work/volume-"
expect "--media" cairn mkfs --me
expect "emul file pmem" cairn mkfs --media ""
expect "emul" cairn mkfs --media e
expect "--fast --fast-size --force" cairn mkfs --f
expect "--foreground" cairn mount --fo
expect "--json" cairn stat --j
expect "--repair" cairn fsck --r
expect "$work/volume-a $work/volume-b" cairn stat "$work/volume-"
expect "" cairn mount --batch ""
expect "sqlite3" cairn run -- sqlite
expect "$work/volume-file" cairn run -- ls "$work/volume-f"
# Every option the command's --help lists is offered, and no other.
for cmd in mkfs stat mount umount fsck serve run tune tier; do
	listed=$("$cairn" "$cmd" --help | grep -oE '^ +(-[a-z], )?--[a-z-]+' | grep -oE -- '--[a-z-]+' |
		sort -u | tr '\n' ' ' | sed 's/ $//')
	offered=$(ask cairn "$cmd" -- | tr ' ' '\n' | grep -- '^--' | grep -v '^--help$' |
		sort -u | tr '\n' ' ' | sed 's/ $//')
	[ "$listed" = "$offered" ] || fail "cairn $cmd: --help lists '$listed', completion offers '$offered'"
done
echo "[completion] passed"
