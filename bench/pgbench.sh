#!/usr/bin/env bash
# PostgreSQL's pgbench, side by side: a fresh cluster per contender and
# round (initdb, then `pgbench -i -s SCALE`), then a timed run of the
# default TPC-B-like transaction, CLIENTS clients for SECONDS seconds, with
# fsync=on and synchronous_commit=on (each commit made durable before its
# answer).
# Contenders: ext4-ram (ext4 on a loop device in RAM), tmpfs (fsync does
# nothing there: the upper bound), cairn-fuse (the FUSE mount of an emul
# volume, made afresh for each run) and cairn-shim (the same server under
# `cairn run` on such a mount, a client of the daemon writing natively).
# All of them sit on one tmpfs of 2 MiB pages (bench/ram.sh says why); the
# contenders alternate in each round, in the reverse order every other
# round.  Prints, per contender, the medians over the rounds of the
# run's transactions per second (pgbench's own, without the connection
# time), its average latency, and the seconds `pgbench -i` took.
# Usage: bench/pgbench.sh [SCALE] [CLIENTS] [SECONDS] [ROUNDS]
#        (defaults 10, 2, 10, 3); as root.
set -euo pipefail
cd "$(dirname "$0")/.."
scale=${1:-10}
clients=${2:-2}
secs=${3:-10}
rounds=${4:-3}
[ "$(id -u)" -eq 0 ] || { echo "bench/pgbench.sh: needs root (loop device, FUSE, the user postgres)" >&2; exit 1; }
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if [ -z "$PGBIN" ] || [ ! -x "$PGBIN/pgbench" ]; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql postgresql-contrib >/dev/null 2>&1 ||
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql postgresql-contrib >/dev/null; }
	PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
fi
[ -x build/libcairn-preload.so ] || scripts/build.sh >/dev/null
cairn=$PWD/build/cairn

source bench/ram.sh
root=$(ram_dir 16G)
sock=$(mktemp -d /tmp/cairn-pgbench.XXXXXX) # a socket cannot live on every file system
chown postgres: "$sock"
loop=""
port=$((20000 + RANDOM % 20000))
as_pg() { runuser -u postgres -- "$@"; }
stop_server() { # DATA
	[ -f "$1/postmaster.pid" ] && as_pg "$PGBIN/pg_ctl" -D "$1" -m immediate -w stop >/dev/null 2>&1
	return 0
}
cleanup() {
	set +e
	for d in "$root"/m/*/pg.*; do stop_server "$d"; done
	"$cairn" umount "$root/m/cairn" >/dev/null 2>&1 || umount -l "$root/m/cairn" 2>/dev/null
	umount "$root/m/ext4-ram" 2>/dev/null
	[ -n "$loop" ] && losetup -d "$loop"
	rm -rf "$sock"
	ram_release "$root"
}
trap cleanup EXIT
mkdir -p "$root/m/cairn" "$root/m/ext4-ram" "$root/m/tmpfs"
# fresh_cairn: a new volume at $root/m/cairn for each cairn run, so that
# neither contender finds the other's data there (or its digest running).
fresh_cairn() {
	mountpoint -q "$root/m/cairn" && "$cairn" umount "$root/m/cairn"
	rm -rf "$root/vol"
	"$cairn" mkfs "$root/vol" --media emul --log-size 512M --fast-size 8G >/dev/null
	"$cairn" mount "$root/vol" "$root/m/cairn"
	chown postgres: "$root/m/cairn"
}
truncate -s 8G "$root/ext4.img"
loop=$(losetup -f --show "$root/ext4.img")
mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$loop"
mount "$loop" "$root/m/ext4-ram"
chown postgres: "$root/m/ext4-ram" "$root/m/tmpfs"

dir_of() { case $1 in cairn-*) echo "$root/m/cairn/$1" ;; *) echo "$root/m/$1" ;; esac; }
run_as() { # contender cmd...: the shim's contender runs the server under `cairn run`
	local c=$1
	shift
	if [ "$c" = cairn-shim ]; then "$cairn" run --mount "$root/m/cairn" -- "$@"; else "$@"; fi
}

# one CONTENDER ROUND: prints "TPS LATENCY_MS INIT_S".
one() {
	local c=$1 r=$2 data out t0 t1
	case $c in cairn-*) fresh_cairn ;; esac
	data=$(dir_of "$c")/pg.$r
	mkdir -p "$(dirname "$data")"
	chown postgres: "$(dirname "$data")"
	run_as "$c" runuser -u postgres -- "$PGBIN/initdb" -D "$data" -A trust -U postgres \
		--no-instructions >/dev/null
	run_as "$c" runuser -u postgres -- "$PGBIN/pg_ctl" -D "$data" -w -t 300 -l "$data.log" \
		-o "-k $sock -p $port -c listen_addresses= -c fsync=on -c synchronous_commit=on" start >/dev/null
	t0=$EPOCHREALTIME
	as_pg "$PGBIN/pgbench" -h "$sock" -p "$port" -i -s "$scale" -q postgres >/dev/null 2>&1
	t1=$EPOCHREALTIME
	out=$(as_pg "$PGBIN/pgbench" -h "$sock" -p "$port" -n -c "$clients" -j "$clients" -T "$secs" postgres 2>&1)
	as_pg "$PGBIN/pg_ctl" -D "$data" -m fast -w stop >/dev/null
	rm -rf "$data" "$data.log"
	echo "$out" | awk -v a="$t0" -v b="$t1" '
		/^latency average/ { lat = $4 }
		/^tps/ { tps = $3 }
		END { printf "%s %s %.2f\n", tps, lat, b - a }'
}

contenders=(ext4-ram tmpfs cairn-fuse cairn-shim)
declare -A got
echo "# $(date -u +%F) $(nproc) cores, $(uname -r), $("$PGBIN/postgres" --version); scale $scale, $clients clients, ${secs}s, $rounds rounds; commit $(git rev-parse --short HEAD)"
for r in $(seq 1 "$rounds"); do
	order=("${contenders[@]}")
	[ $((r % 2)) = 0 ] && order=($(printf '%s\n' "${contenders[@]}" | tac))
	for c in "${order[@]}"; do
		got[$c]+="$(one "$c" "$r"),"
		echo "# round $r $c: tps latency_ms init_s = $(echo "${got[$c]}" | tr ',' '\n' | grep . | tail -1)"
	done
done
median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
printf '%-11s %10s %12s %10s %14s\n' contender tps latency_ms init_s tps/ext4-ram
for c in "${contenders[@]}"; do
	rows=$(echo "${got[$c]}" | tr ',' '\n' | grep .)
	tps=$(echo "$rows" | awk '{ print $1 }' | median)
	lat=$(echo "$rows" | awk '{ print $2 }' | median)
	init=$(echo "$rows" | awk '{ print $3 }' | median)
	[ "$c" = ext4-ram ] && base=$tps
	awk -v c="$c" -v t="$tps" -v l="$lat" -v i="$init" -v b="$base" \
		'BEGIN { printf "%-11s %10.0f %12.3f %10.2f %13.2fx\n", c, t, l, i, t / b }'
done
