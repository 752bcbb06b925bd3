#!/usr/bin/env bash
# redis.sh MNT - redis-server with its append-only file on the file system at
# MNT, appendfsync always (a SET is answered only once its AOF record is
# written and fdatasync'd):
#   three times, a client sets keys k0, k1, ... one at a time over a socket
#   and counts the answers, and the server is killed with SIGKILL in the
#   middle of the load; a new server loads the AOF, and every acknowledged
#   key holds its value, with at most the one unacknowledged SET in flight
#   also there.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
command -v redis-server >/dev/null || die "redis-server is not installed (scripts/deps.sh installs it)"
setup_workdir "${1:-}"
T0=$(now)
PORT=$((20000 + RANDOM % 20000))
SERVER=""
trap '[ -n "$SERVER" ] && kill -9 "$SERVER" 2>/dev/null; true' EXIT

cli() { redis-cli -p "$PORT" "$@"; }

start_server() {
	redis-server --port "$PORT" --bind 127.0.0.1 --dir "$WORK" --appendonly yes \
		--appendfsync always --save "" --daemonize no --logfile "$WORK/redis.log" &
	SERVER=$!
	for ((i = 0; i < 200; i++)); do
		[ "$(cli ping 2>/dev/null)" = PONG ] && return 0
		kill -0 "$SERVER" 2>/dev/null || break
		sleep 0.05
	done
	die "redis-server did not answer within 10 s: $(tail -5 "$WORK/redis.log")"
}

# load FROM: SETs kFROM, kFROM+1, ... until the server goes; prints how
# many were acknowledged.
load() {
	local i=$1 line
	exec 3<>"/dev/tcp/127.0.0.1/$PORT"
	while printf 'SET k%d v%d\r\n' "$i" "$i" >&3 2>/dev/null && read -r -t 5 line <&3 2>/dev/null; do
		[ "${line%$'\r'}" = "+OK" ] || break
		i=$((i + 1))
	done
	exec 3<&-
	echo "$i"
}

# check N: keys k0..k(N-1) hold v0..v(N-1); at most one key more.
check() {
	local n=$1 size bad
	size=$(cli dbsize)
	[ "$size" -ge "$n" ] && [ "$size" -le $((n + 1)) ] ||
		die "$size keys after the restart, expected the $n acknowledged (or one more)"
	bad=$(awk -v n="$n" 'BEGIN { for (i = 0; i < n; i++) printf "GET k%d\n", i }' | cli |
		awk '{ if ($0 != "v" (NR - 1)) bad++ } END { print bad + 0 }')
	[ "$bad" = 0 ] || die "$bad of the $n acknowledged keys are missing or wrong after the restart"
}

acked=0
for round in 1 2 3; do
	start_server
	[ "$round" = 1 ] || check "$acked"
	ms=$((300 + RANDOM % 900))
	(sleep "$(awk -v m="$ms" 'BEGIN { printf "%.3f", m / 1000 }')"; kill -9 "$SERVER") &
	killer=$!
	acked=$(load "$acked")
	wait "$killer" || true
	{ wait "$SERVER"; } 2>/dev/null || true
	SERVER=""
	note "round $round: redis-server killed after ${ms} ms; $acked keys acknowledged in all"
	[ "$acked" -gt 0 ] || die "no SET was acknowledged in round $round"
done
start_server
check "$acked"
note "all $acked acknowledged keys are there after the last restart"
cli shutdown nosave >/dev/null 2>&1 || true
wait "$SERVER" 2>/dev/null || true
SERVER=""
finish_workdir
note "passed in $(since "$T0")s"
