#!/usr/bin/env bash
# The shim's stdio streams, before and after: two builds' `cairn run`,
# alternating within each round, each run on a fresh emul volume mounted by
# that build, with ext4-ram (ext4 on a loop device in RAM) beside them:
#   postmark  bench/run's full-size configuration (5,000 files, 50,000
#             transactions, 500-16,384 bytes): files created, read,
#             appended and deleted a second (no fsync)
#   sed-w     GNU sed's w command copying 200,000 lines of 75 bytes into a
#             file it fopen()s: microseconds per line
# Usage: ab_stdio.sh OLD_BUILD NEW_BUILD [ROUNDS]   (as root)
set -euo pipefail
old=$1 new=$2 rounds=${3:-5}
root=/tmp/r/ab-stdio
mountpoint -q /tmp/r || { mkdir -p /tmp/r && mount -t tmpfs -o size=6G,huge=within_size tmpfs /tmp/r; }
rm -rf "$root" && mkdir -p "$root/m" "$root/ext4"
truncate -s 2G "$root/ext4.img"
loop=$(losetup -f --show "$root/ext4.img")
mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$loop"
mount "$loop" "$root/ext4"
trap 'umount "$root/ext4"; losetup -d "$loop"; rm -rf "$root"' EXIT
seq -f "line %g of a log written through stdio, as a program's report or log is" 200000 >"$root/lines"

postmark_ops() { # dir, then the command prefix
	local d=$1 cfg=$root/pm.cfg t0 t1 ops
	shift
	mkdir -p "$d"
	printf 'set location %s\nset number 5000\nset transactions 50000\nset size 500 16384\nset seed 42\nrun\nquit\n' "$d" >"$cfg"
	t0=$EPOCHREALTIME
	ops=$("$@" postmark "$cfg" | awk '/^\t[0-9]+ (created|read|appended|deleted) /{s += $1} END {print s + 0}')
	t1=$EPOCHREALTIME
	awk -v n="$ops" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", n / (b - a) }'
}
sed_us() { # file, then the command prefix
	local f=$1 t0 t1
	shift
	t0=$EPOCHREALTIME
	"$@" sed -n "w $f" "$root/lines"
	t1=$EPOCHREALTIME
	awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) * 1e6 / 200000 }'
}
cairn_run() { # build workload
	local b=$1 w=$2 out
	rm -rf "$root/vol"
	"$b/cairn" mkfs "$root/vol" --media emul --log-size 512M --fast-size 3G >/dev/null
	"$b/cairn" mount "$root/vol" "$root/m"
	case $w in
	postmark) out=$(postmark_ops "$root/m/pm" "$b/cairn" run --mount "$root/m" --) ;;
	sed-w) out=$(sed_us "$root/m/out" "$b/cairn" run --mount "$root/m" --) ;;
	esac
	"$b/cairn" umount "$root/m"
	echo "$out"
}
echo "# $(date -u +%F) $(nproc) cores; old $old, new $new; $rounds rounds"
for r in $(seq 1 "$rounds"); do
	echo "round=$r postmark old=$(cairn_run "$old" postmark) new=$(cairn_run "$new" postmark) ext4-ram=$(rm -rf "$root/ext4/pm"; postmark_ops "$root/ext4/pm")"
	echo "round=$r sed-w-us old=$(cairn_run "$old" sed-w) new=$(cairn_run "$new" sed-w) ext4-ram=$(rm -f "$root/ext4/out"; sed_us "$root/ext4/out")"
done
