#!/usr/bin/env bash
# sqlite.sh MNT - sqlite3 on the file system at MNT:
#   1. a database of 2000 rows committed in 20 transactions (20 sqlite3
#      processes), with a second table of per-batch totals;
#   2. three times, a sqlite3 process killed with SIGKILL in the middle of
#      a long transaction (a loop of single-row inserts; one huge INSERT
#      ... SELECT that spills to the database file; a loop of updates and
#      deletes of committed rows), then PRAGMA integrity_check is "ok" and
#      the table holds exactly what was committed (row count, per-batch
#      totals, and a checksum of every row);
#   3. the same once in WAL mode, with a reader that sees only the
#      committed rows while the writer is in its transaction.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
command -v sqlite3 >/dev/null || die "sqlite3 is not installed (scripts/deps.sh installs it)"
setup_workdir "${1:-}"
T0=$(now)

DB=$WORK/test.db
SQL=$WORK/sql

# q DB SQL...: runs SQL on DB; any error is fatal.
q() {
	local db=$1
	shift
	local out rc=0
	out=$(sqlite3 -batch -bail "$db" "$@" 2>&1) || rc=$?
	[ "$rc" -eq 0 ] || die "sqlite3 $db '$*' exited $rc: $out"
	printf '%s\n' "$out"
}

# rows_sum DB: a checksum of every row of t.
rows_sum() {
	sqlite3 -batch -bail "$1" "SELECT id, batch, v, hex(b) FROM t ORDER BY id" | sha256sum | cut -d' ' -f1
}

# check DB ROWS SUM WHAT: integrity_check is ok, t has ROWS rows with the
# checksum SUM, and the totals table agrees with t.
check() {
	local db=$1 rows=$2 sum=$3 what=$4
	local ic n s bad
	ic=$(q "$db" "PRAGMA integrity_check")
	[ "$ic" = ok ] || die "$what: PRAGMA integrity_check on $db printed: $ic"
	n=$(q "$db" "SELECT count(*) FROM t")
	[ "$n" = "$rows" ] || die "$what: $n rows in t, expected the $rows committed"
	s=$(rows_sum "$db")
	[ "$s" = "$sum" ] || die "$what: the rows of t differ from the committed ones (checksum $s, expected $sum)"
	bad=$(q "$db" "SELECT count(*) FROM totals o WHERE n != (SELECT count(*) FROM t WHERE t.batch = o.batch) OR s != (SELECT total(id) FROM t WHERE t.batch = o.batch)")
	[ "$bad" = 0 ] || die "$what: $bad batches whose totals disagree with table t"
	note "$what: integrity_check ok, $rows rows, checksums match"
}

# commit_batch DB B N: one transaction of N rows of batch B and its totals.
commit_batch() {
	local db=$1 b=$2 n=$3
	awk -v b="$b" -v n="$n" 'BEGIN {
		print "BEGIN;"
		for (i = 0; i < n; i++)
			printf "INSERT INTO t(batch, v, b) VALUES (%d, \"row %d of batch %d\", randomblob(%d));\n", b, i, b, 16 + (i * 37) % 300
		printf "INSERT INTO totals(batch, n, s) SELECT %d, count(*), total(id) FROM t WHERE batch = %d;\n", b, b
		print "COMMIT;"
	}' >"$SQL"
	sqlite3 -batch -bail "$db" <"$SQL" || die "sqlite3: the transaction of batch $b on $db failed"
}

SCHEMA="CREATE TABLE t(id INTEGER PRIMARY KEY, batch INT NOT NULL, v TEXT NOT NULL, b BLOB);
CREATE INDEX t_batch ON t(batch);
CREATE TABLE totals(batch INT PRIMARY KEY, n INT NOT NULL, s REAL NOT NULL);"

# kill_mid WHAT DB GEN [READER_ROWS]: pipes the SQL that the function GEN
# prints (BEGIN, a marker, then a long transaction that is never
# committed) into sqlite3 on DB, waits until the transaction has begun,
# lets it run for a random 0.3 to 1.5 s, checks that it is still running,
# and kills it with SIGKILL.  With READER_ROWS, another sqlite3 reads the
# row count just before the kill and must see READER_ROWS.
kill_mid() {
	local what=$1 db=$2 gen=$3 reader=${4:-}
	local marker=$WORK/begun pid st=0 ms n
	rm -f "$marker"
	# The generator dies of SIGPIPE at the kill: no ERR report for it.
	(trap - ERR; "$gen" "$marker") | sqlite3 -batch "$db" >"$WORK/killed.out" 2>&1 &
	pid=$!
	for ((i = 0; i < 500; i++)); do
		[ -e "$marker" ] && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.02
	done
	[ -e "$marker" ] || die "$what: the transaction to be killed never began: $(cat "$WORK/killed.out")"
	ms=$((300 + RANDOM % 1200))
	sleep "$(awk -v m="$ms" 'BEGIN { printf "%.3f", m / 1000 }')"
	if [ -n "$reader" ]; then
		n=$(q "$db" "SELECT count(*) FROM t")
		[ "$n" = "$reader" ] || die "$what: a reader saw $n rows during the transaction, expected the $reader committed"
		note "$what: a reader during the transaction saw the $n committed rows"
	fi
	kill -0 "$pid" 2>/dev/null || die "$what: sqlite3 ended before the kill (it should still be in its transaction): $(cat "$WORK/killed.out")"
	local j=""
	[ -e "$db-journal" ] && j=" journal $(stat -c %s "$db-journal") B,"
	[ -e "$db-wal" ] && j=" wal $(stat -c %s "$db-wal") B,"
	kill -9 "$pid"
	{ wait "$pid"; } 2>/dev/null || st=$?
	[ "$st" -eq 137 ] || die "$what: the killed sqlite3 exited $st, not 137 (SIGKILL): $(cat "$WORK/killed.out")"
	note "$what: sqlite3 killed after ${ms} ms in its transaction (database $(stat -c %s "$db") B,$j)"
}

# The killed transactions: each prints BEGIN, touches the marker file,
# and goes on for far longer than the kill delay.
gen_inserts() {
	printf 'PRAGMA cache_size=-256;\nBEGIN;\nINSERT INTO t(batch, v, b) VALUES (-1, "doomed", randomblob(100));\n.system touch %s\n' "$1"
	awk 'BEGIN { for (i = 0; i < 3000000; i++)
		printf "INSERT INTO t(batch, v, b) VALUES (-1, \"doomed %d\", randomblob(%d));\n", i, 50 + i % 400 }'
}
gen_bulk() {
	printf 'PRAGMA cache_size=-128;\nBEGIN;\nDELETE FROM t WHERE batch = 7;\n.system touch %s\n' "$1"
	printf 'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 50000000)\n'
	printf 'INSERT INTO t(batch, v, b) SELECT -2, printf("bulk %%d", x), randomblob(300) FROM c;\n'
}
gen_updates() {
	printf 'PRAGMA cache_size=-128;\nBEGIN;\nUPDATE t SET v = "changed" WHERE batch = 1;\n.system touch %s\n' "$1"
	awk 'BEGIN { for (i = 0; i < 3000000; i++) {
		printf "UPDATE t SET v = \"upd %d\", b = randomblob(%d) WHERE id = %d;\n", i, 100 + i % 500, 1 + (i * 7919) % 2000
		if (i % 50 == 0) printf "DELETE FROM totals WHERE batch = %d;\n", i % 20
		if (i % 10 == 0) printf "INSERT INTO t(batch, v) VALUES (-3, \"new %d\");\n", i
	} }'
}

# ---- 1. 2000 rows in 20 transactions ----------------------------------------
t=$(now)
q "$DB" "$SCHEMA" >/dev/null
for b in $(seq 0 19); do
	commit_batch "$DB" "$b" 100
done
rows=2000
sum=$(rows_sum "$DB")
note "2000 rows in 20 transactions: $(since "$t")s"
check "$DB" "$rows" "$sum" "after the commits"

# ---- 2. killed in the middle of transactions --------------------------------
for round in inserts bulk updates; do
	t=$(now)
	kill_mid "rollback journal, killed $round" "$DB" "gen_$round"
	check "$DB" "$rows" "$sum" "rollback journal, after the killed $round"
	[ ! -s "$DB-journal" ] || die "the hot journal $DB-journal is still there after recovery"
	# The database takes new transactions after its recovery.
	commit_batch "$DB" "$((100 + ${#round}))$RANDOM" 100
	rows=$((rows + 100))
	sum=$(rows_sum "$DB")
	check "$DB" "$rows" "$sum" "rollback journal, a commit after the recovery from the killed $round"
	note "round $round: $(since "$t")s"
done

# ---- 3. WAL mode --------------------------------------------------------------
t=$(now)
WDB=$WORK/wal.db
mode=$(q "$WDB" "PRAGMA journal_mode=WAL")
[ "$mode" = wal ] || die "PRAGMA journal_mode=WAL printed '$mode'"
q "$WDB" "$SCHEMA" >/dev/null
for b in $(seq 0 9); do
	commit_batch "$WDB" "$b" 100
done
q "$WDB" "PRAGMA wal_checkpoint(PASSIVE)" >/dev/null
for b in $(seq 10 19); do
	commit_batch "$WDB" "$b" 100
done
wsum=$(rows_sum "$WDB")
check "$WDB" 2000 "$wsum" "WAL, after the commits"
kill_mid "WAL, killed inserts" "$WDB" gen_inserts 2000
check "$WDB" 2000 "$wsum" "WAL, after the killed inserts"
mode=$(q "$WDB" "PRAGMA journal_mode")
[ "$mode" = wal ] || die "WAL mode: the database is in mode '$mode' after the recovery"
commit_batch "$WDB" 20 100
wsum=$(rows_sum "$WDB")
ck=$(q "$WDB" "PRAGMA wal_checkpoint(TRUNCATE)")
case "$ck" in 0\|*) ;; *) die "PRAGMA wal_checkpoint(TRUNCATE) printed '$ck' (busy)" ;; esac
check "$WDB" 2100 "$wsum" "WAL, after a commit and a checkpoint"
note "WAL mode: $(since "$t")s"

finish_workdir
note "passed in $(since "$T0")s"
