#!/usr/bin/env bash
# stat.sh CAIRN - `cairn stat`'s outputs for programs and for watching:
#   - --prometheus is read by node_exporter's textfile collector (the
#     real one, prometheus-node-exporter) without a scrape error, every
#     metric arrives with the value the volume has, and a volume path
#     holding a quote and a backslash survives as a label;
#   - --json escapes that path;
#   - --watch --count N prints N outputs (in place on a terminal, run
#     under script(1)), and a watch of a mounted volume sees the files
#     made meanwhile; SIGINT ends it with status 0;
#   - bad combinations are usage errors (2).
# shellcheck source=tests/ops/lib.sh
source "$(dirname "$0")/lib.sh"
cairn=$(realpath "$1")
need_root_fuse
work=$(mktemp -d /dev/shm/cairn-stat.XXXXXX) # emul parts inside the volume
exporter=
cleanup() {
	[ -z "$exporter" ] || kill "$exporter" 2>/dev/null || true
	umount "$work/mp" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
vol="$work/vol \"q\" \\b"
mkdir -p "$work/mp" "$work/textfile"
"$cairn" mkfs "$vol" --media emul --log-size 16M --fast-size 64M >/dev/null
"$cairn" demo "$vol" >/dev/null

# JSON: the path escaped.
json=$("$cairn" stat "$vol" --json)
[[ $json == *'"volume": "'"$work"'/vol \"q\" \\b"'* ]] || fail "the path is not escaped in JSON: $json"
log_size=$(echo "$json" | grep -o '"log_capacity": [0-9]*' | grep -o '[0-9]*$')

# Prometheus, through node_exporter.
"$cairn" stat "$vol" --prometheus >"$work/textfile/cairn.prom.tmp"
mv "$work/textfile/cairn.prom.tmp" "$work/textfile/cairn.prom"
for _ in 1 2 3 4 5; do
	port=$((20000 + RANDOM % 20000))
	prometheus-node-exporter --collector.disable-defaults --collector.textfile \
		--collector.textfile.directory="$work/textfile" \
		--web.listen-address="127.0.0.1:$port" >"$work/exporter.log" 2>&1 &
	exporter=$!
	for _ in $(seq 1 50); do
		curl -sf "http://127.0.0.1:$port/metrics" >"$work/scrape" 2>/dev/null && break 2
		kill -0 "$exporter" 2>/dev/null || break
		sleep 0.1
	done
	kill "$exporter" 2>/dev/null || true
	exporter=
done
[ -n "$exporter" ] || fail "node_exporter did not serve: $(cat "$work/exporter.log")"
grep -q '^node_textfile_scrape_error 0$' "$work/scrape" ||
	fail "node_exporter could not read the file: $(grep -i error "$work/scrape" "$work/exporter.log")"
ours=$(grep -o '^cairn_[a-z_]*' "$work/textfile/cairn.prom" | sort -u)
theirs=$(grep -o '^cairn_[a-z_]*' "$work/scrape" | sort -u)
[ "$ours" = "$theirs" ] || fail "metrics lost on the way: $(diff <(echo "$ours") <(echo "$theirs"))"
[ "$(echo "$ours" | wc -l)" -ge 20 ] || fail "too few metrics: $ours"
label='volume="'"$work"'/vol \"q\" \\b"'
got=$(grep '^cairn_log_size_bytes' "$work/scrape")
[[ $got == "cairn_log_size_bytes{$label} "* ]] || fail "the volume label came out as: $got"
awk -v want="$log_size" '{ if ($NF + 0 != want + 0) exit 1 }' <<<"$got" ||
	fail "cairn_log_size_bytes is '$got', the volume has $log_size"
grep -q "^cairn_tier_free_bytes{.*tier=\"fast\"" "$work/scrape" || fail "no tier sample"
grep -q "^cairn_tier_draining{.*tier=\"fast\".*} 0$" "$work/scrape" || fail "no draining sample of 0"
kill "$exporter"
exporter=

# --watch.
n=$("$cairn" stat "$vol" --json --watch 0.1 --count 3 | grep -c '^{"volume"')
[ "$n" = 3 ] || fail "--watch --count 3 printed $n JSON objects"
n=$("$cairn" stat "$vol" --watch 0.1 --count 2 | grep -c '^volume ')
[ "$n" = 2 ] || fail "--watch --count 2 printed $n outputs"
script -qc "'$cairn' stat '$vol' --watch 0.1 --count 2" /dev/null >"$work/tty" </dev/null
n=$(grep -o $'\033\\[H\033\\[2J' "$work/tty" | wc -l)
[ "$n" = 2 ] || fail "on a terminal: $n redraws, not 2"
! grep -q $'\033' <("$cairn" stat "$vol" --watch 0.1 --count 2) || fail "escape codes off a terminal"

"$cairn" mount "$vol" "$work/mp"
"$cairn" stat "$work/mp" --json --watch 0.2 >"$work/watched" &
watcher=$!
sleep 0.5
for i in $(seq 1 50); do echo "$i" >"$work/mp/file$i"; done
sleep 0.6
kill -INT "$watcher"
rc=0
wait "$watcher" || rc=$?
[ "$rc" = 0 ] || fail "--watch ended by SIGINT: exit $rc"
first=$(head -1 "$work/watched" | grep -o '"free_inodes": [0-9]*' | grep -o '[0-9]*$')
last=$(tail -1 "$work/watched" | grep -o '"free_inodes": [0-9]*' | grep -o '[0-9]*$')
[ -n "$first" ] && [ -n "$last" ] && [ $((first - last)) -eq 50 ] ||
	fail "the watch did not see the 50 new files: free inodes $first then $last"
"$cairn" umount "$work/mp"

for bad in "--count 2" "--watch 0" "--watch -1" "--json --prometheus" "--watch 0.2 --count 0" \
	"--prometheus --watch 1"; do
	rc=0
	# shellcheck disable=SC2086
	"$cairn" stat "$vol" $bad >/dev/null 2>&1 || rc=$?
	[ "$rc" = 2 ] || fail "cairn stat $bad: exit $rc, not 2"
done
echo "[stat] passed"
