#!/usr/bin/env bash
# postgres.sh MNT - PostgreSQL with its data directory on the file system at
# MNT (fsync on, synchronous_commit on), as the user postgres:
#   1. initdb, pgbench -i (scale 2), a timed pgbench run of 2 clients (-n:
#      pgbench would empty the history before each run);
#   2. every backend killed with SIGKILL in the middle of a second run,
#      the server started again (crash recovery);
#   3. after each run: the balances agree with the history (what pgbench's
#      transactions keep true: each one adds one delta to an account, its
#      teller, its branch and the history) and amcheck finds every B-tree
#      index of the pgbench tables sound.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$PGBIN" ] && [ -x "$PGBIN/postgres" ] || die "PostgreSQL is not installed (scripts/deps.sh installs it)"
id postgres >/dev/null 2>&1 || die "there is no user postgres"
setup_workdir "${1:-}"
T0=$(now)
chown postgres: "$WORK"
runuser -u postgres -- test -w "$WORK" || die "the user postgres cannot write $WORK (a folder above it is closed to it)"
DATA=$WORK/data
SOCK=$(mktemp -d /tmp/cairn-pg.XXXXXX) # a socket cannot live on every file system
chown postgres: "$SOCK"
PORT=$((20000 + RANDOM % 20000))
trap 'as_pg "$PGBIN/pg_ctl" -D "$DATA" -m immediate stop >/dev/null 2>&1; rm -rf "$SOCK"' EXIT

as_pg() { runuser -u postgres -- "$@"; }
psql_q() { as_pg "$PGBIN/psql" -h "$SOCK" -p "$PORT" -X -A -t -q -v ON_ERROR_STOP=1 -d postgres -c "$1"; }

start() {
	as_pg "$PGBIN/pg_ctl" -D "$DATA" -w -t 120 -l "$WORK/server.log" \
		-o "-k $SOCK -p $PORT -c listen_addresses= -c fsync=on -c synchronous_commit=on" start >/dev/null ||
		die "pg_ctl start failed: $(tail -5 "$WORK/server.log")"
}

# check WHAT: pgbench's invariants hold, and amcheck passes.
check() {
	local what=$1 bad
	bad=$(psql_q "SELECT (SELECT sum(abalance) FROM pgbench_accounts) - (SELECT coalesce(sum(delta), 0) FROM pgbench_history)
		+ (SELECT sum(tbalance) FROM pgbench_tellers) - (SELECT coalesce(sum(delta), 0) FROM pgbench_history)
		+ (SELECT sum(bbalance) FROM pgbench_branches) - (SELECT coalesce(sum(delta), 0) FROM pgbench_history)")
	[ "$bad" = 0 ] || die "$what: the balances and the history disagree by $bad: $(psql_q "SELECT (SELECT sum(abalance) FROM pgbench_accounts), (SELECT sum(tbalance) FROM pgbench_tellers), (SELECT sum(bbalance) FROM pgbench_branches), (SELECT sum(delta) FROM pgbench_history), (SELECT count(*) FROM pgbench_history)")"
	psql_q "SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS amcheck" >/dev/null
	bad=$(psql_q "SELECT count(*) FROM (SELECT bt_index_check(c.oid, true) FROM pg_index i
		JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam
		WHERE a.amname = 'btree' AND c.relname LIKE 'pgbench%') s" 2>&1) ||
		die "$what: amcheck failed: $bad"
	note "$what: balances agree with $(psql_q "SELECT count(*) FROM pgbench_history") history rows; amcheck checked $bad indexes"
}

timed initdb as_pg "$PGBIN/initdb" -D "$DATA" -A trust -U postgres --no-instructions
start
timed "pgbench -i -s 2" as_pg "$PGBIN/pgbench" -h "$SOCK" -p "$PORT" -i -s 2 -q postgres
check "after pgbench -i"
out=$(as_pg "$PGBIN/pgbench" -h "$SOCK" -p "$PORT" -n -c 2 -j 2 -T 5 postgres 2>&1) ||
	die "pgbench failed: $out"
note "pgbench -c 2 -T 5: $(echo "$out" | grep -E '^tps' | head -1)"
check "after a pgbench run"

# Killed in the middle of a run: the postmaster and every backend at once.
as_pg "$PGBIN/pgbench" -h "$SOCK" -p "$PORT" -n -c 2 -j 2 -T 30 postgres >/dev/null 2>&1 &
bench=$!
sleep 3
pm=$(head -1 "$DATA/postmaster.pid")
pids="$pm $(pgrep -P "$pm" | tr '\n' ' ')"
[ -n "$pm" ] || die "no postmaster to kill"
kill -9 $pids
wait "$bench" 2>/dev/null || true
# Until every one of them is gone: a new server beside a dying one would
# share the data directory with it.
for p in $pids; do
	for ((i = 0; i < 600; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
	kill -0 "$p" 2>/dev/null && die "postgres process $p outlived SIGKILL by 30 s"
done
note "killed $(echo $pids | wc -w) postgres processes with SIGKILL during pgbench"
rm -f "$DATA/postmaster.pid" "$SOCK"/.s.PGSQL.*
start
check "after the kill and crash recovery"
as_pg "$PGBIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null
trap - EXIT
rm -rf "$SOCK"
finish_workdir
note "passed in $(since "$T0")s"
