#!/usr/bin/env bash
# Programs that write without fsync, side by side: each write is durable on
# return on cairn, and only in the page cache on ext4 and tmpfs.
#   dd-4k      dd bs=4096, N/5 blocks of /dev/zero into a new file
#   dd-128     dd bs=128, N blocks
#   leveldb    LevelDB's fillseq (bench/leveldb_fill.c), N puts of 116 bytes,
#              each one write() of its log record (sync=false, the default)
#   leveldb-s  the same with sync=true (an fdatasync per put), N/20 puts
#   redis      redis-server with appendfsync always (each SET written and
#              fdatasync'd before its answer), redis-benchmark -t set, 4
#              clients, N/5 requests: microseconds per SET (1e6 / rate)
#   sed-w      GNU sed's w command copying N lines of 75 bytes into a file
#              it fopen()s: stdio writes its 4 KiB buffer as it fills;
#              microseconds per line
# Contenders: ext4-ram (ext4 on a loop device in RAM), tmpfs,
# cairn-fuse (the FUSE mount of an emul volume) and cairn-shim (the same
# programs under `cairn run` on that mount).  Microseconds per operation,
# the median of ROUNDS rounds with the contenders alternating in each.
# All of them sit on one tmpfs of 2 MiB pages (bench/ram.sh says why).
# Usage: bench/buffered.sh [N] [ROUNDS]   (defaults 100000, 5); as root.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-100000}
rounds=${2:-5}
[ "$(id -u)" -eq 0 ] || { echo "bench/buffered.sh: needs root (loop device, FUSE)" >&2; exit 1; }
if [ ! -e /usr/include/leveldb/c.h ] || ! command -v redis-benchmark >/dev/null; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libleveldb-dev redis-server >/dev/null 2>&1 ||
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libleveldb-dev redis-server >/dev/null; }
fi
if [ ! -x build/bench/bench_leveldb_fill ] || [ ! -x build/libcairn-preload.so ]; then
	scripts/build.sh >/dev/null
fi
cairn=$PWD/build/cairn
fill=$PWD/build/bench/bench_leveldb_fill

source bench/ram.sh
root=$(ram_dir 16G)
loop=""
cleanup() {
	set +e
	"$cairn" umount "$root/m/cairn" >/dev/null 2>&1 || umount -l "$root/m/cairn" 2>/dev/null
	umount "$root/m/ext4-ram" 2>/dev/null
	[ -n "$loop" ] && losetup -d "$loop"
	ram_release "$root"
}
trap cleanup EXIT
mkdir -p "$root/m/cairn" "$root/m/ext4-ram" "$root/m/tmpfs"
"$cairn" mkfs "$root/vol" --media emul --log-size 512M --fast-size 4G >/dev/null
"$cairn" mount "$root/vol" "$root/m/cairn"
truncate -s 4G "$root/ext4.img"
loop=$(losetup -f --show "$root/ext4.img")
mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$loop"
mount "$loop" "$root/m/ext4-ram"

dir_of() { case $1 in cairn-*) echo "$root/m/cairn/$1" ;; *) echo "$root/m/$1" ;; esac; }
run_as() { # contender cmd...
	local c=$1
	shift
	if [ "$c" = cairn-shim ]; then "$cairn" run -- "$@"; else "$@"; fi
}
# redis_set CONTENDER DIR: microseconds per SET of redis-benchmark.
redis_set() {
	local c=$1 d=$2 port=$((20000 + RANDOM % 20000)) pid rps
	mkdir -p "$d"
	run_as "$c" redis-server --port "$port" --bind 127.0.0.1 --dir "$d" --appendonly yes \
		--appendfsync always --save "" --logfile "$d/log" &
	pid=$!
	for ((i = 0; i < 200; i++)); do
		[ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ] && break
		sleep 0.05
	done
	rps=$(redis-benchmark -p "$port" -t set -n $((n / 5)) -c 4 -q 2>/dev/null |
		tr '\r' '\n' | awk '/^SET:/ { v = $2 } END { print v + 0 }')
	redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	awk -v r="$rps" 'BEGIN { printf "%.3f\n", (r > 0 ? 1e6 / r : 0) }'
}

# one CONTENDER WORKLOAD ROUND: microseconds per operation.
one() {
	local c=$1 w=$2 r=$3 d t0 t1 count
	d=$(dir_of "$c")/$w.$r
	mkdir -p "$(dirname "$d")"
	case $w in
	dd-4k) count=$((n / 5))
		t0=$EPOCHREALTIME
		run_as "$c" dd if=/dev/zero of="$d" bs=4096 count=$count status=none
		t1=$EPOCHREALTIME ;;
	dd-128) count=$n
		t0=$EPOCHREALTIME
		run_as "$c" dd if=/dev/zero of="$d" bs=128 count=$count status=none
		t1=$EPOCHREALTIME ;;
	leveldb) run_as "$c" "$fill" "$d" "$n" 0 | sed 's/.*us_per_op=//'; rm -rf "$d"; return ;;
	leveldb-s) run_as "$c" "$fill" "$d" $((n / 20)) 1 | sed 's/.*us_per_op=//'; rm -rf "$d"; return ;;
	redis) redis_set "$c" "$d"; rm -rf "$d"; return ;;
	sed-w) count=$n
		t0=$EPOCHREALTIME
		run_as "$c" sed -n "w $d" "$root/lines"
		t1=$EPOCHREALTIME ;;
	esac
	rm -f "$d"
	awk -v a="$t0" -v b="$t1" -v k="$count" 'BEGIN { printf "%.3f\n", (b - a) * 1e6 / k }'
}

contenders=(ext4-ram tmpfs cairn-fuse cairn-shim)
workloads=(${BUFFERED_WORKLOADS:-dd-4k dd-128 leveldb leveldb-s redis sed-w})
seq -f "line %g of a log written through stdio, as a program's report or log is" "$n" >"$root/lines"
declare -A got m
echo "# $(date -u +%F) $(nproc) cores, $(uname -r); n=$n, $rounds rounds; commit $(git rev-parse --short HEAD)"
for r in $(seq 1 "$rounds"); do
	for w in "${workloads[@]}"; do
		for c in "${contenders[@]}"; do
			got[$w,$c]+="$(one "$c" "$w" "$r") "
		done
	done
done
median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
printf '%-10s' workload
for c in "${contenders[@]}"; do printf ' %12s' "$c"; done
printf ' %14s\n' "shim/ext4-ram"
for w in "${workloads[@]}"; do
	printf '%-10s' "$w"
	for c in "${contenders[@]}"; do
		m[$c]=$(echo "${got[$w,$c]}" | median)
		printf ' %12s' "${m[$c]}"
	done
	awk -v s="${m[cairn-shim]}" -v e="${m[ext4-ram]}" 'BEGIN { printf " %13.2fx\n", s / e }'
done
echo "# us per operation (medians); every round:"
for w in "${workloads[@]}"; do
	for c in "${contenders[@]}"; do echo "#   $w $c: ${got[$w,$c]}"; done
done
