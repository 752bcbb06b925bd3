#!/bin/bash
# pg_requests.sh fuse|shim: the FUSE requests of a pgbench run (scale 2, 2
# clients, 4000 transactions) on a fresh emul volume mounted at /tmp/r/mnt
# (on a tmpfs of huge pages at /tmp/r), counted by opcode and by process
# (fuse:fuse_request_send).  As root, from the repository.
set -e
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
M=/tmp/r/mnt; b=$PWD/build; S=$(mktemp -d /tmp/pgreq.XXXXXX)
mkdir -p $M; rm -rf /tmp/r/vol
$b/cairn mkfs /tmp/r/vol --media emul --log-size 512M --fast-size 4G >/dev/null
$b/cairn mount /tmp/r/vol $M
chown postgres: $M $S
run() { if [ "$1" = shim ]; then shift; $b/cairn run --mount $M -- "$@"; else shift; "$@"; fi; }
run $1 runuser -u postgres -- $PGBIN/initdb -D $M/pg -A trust -U postgres --no-instructions >/dev/null
run $1 runuser -u postgres -- $PGBIN/pg_ctl -D $M/pg -w -l $S/log -o "-k $S -p 5499 -c listen_addresses= -c fsync=on -c synchronous_commit=on" start >/dev/null
runuser -u postgres -- $PGBIN/pgbench -h $S -p 5499 -i -s 2 -q postgres >/dev/null 2>&1
(sleep 1; ps -o pid=,args= -u postgres >$S/ps) &
perf record -q -e fuse:fuse_request_send -a -o $S/data -- runuser -u postgres -- $PGBIN/pgbench -h $S -p 5499 -n -c 2 -j 2 -t 2000 postgres 2>&1 | grep -E "^tps|latency average"
runuser -u postgres -- $PGBIN/pg_ctl -D $M/pg -m fast -w stop >/dev/null
echo "requests by opcode:"
perf script -i $S/data 2>/dev/null | grep -o "opcode [0-9]* ([A-Z_]*)" | sort | uniq -c | sort -rn
echo "FUSE_WRITE requests by process:"
perf script -i $S/data 2>/dev/null | awk '/FUSE_WRITE/ { print $2 }' | sort | uniq -c | while read -r c p; do
	echo "  $c $(awk -v p="$p" '$1 == p { $1 = ""; print }' $S/ps)"; done
$b/cairn umount $M
rm -rf $S
