#!/usr/bin/env bash
# tune.sh CAIRN - `cairn tune` of a live volume, through its daemon:
#   - root changes the watermarks and promotion of a mounted volume at once
#     (cairn stat shows them) and they hold at the next mount; the batch
#     interval of a batch-mode mount changes and is not stored;
#   - another user is refused (EPERM), and nothing changes;
#   - kill -9 of the daemon while tunes keep coming: every mount after it
#     succeeds, with one of the two settings tuned in turn, never a mixture,
#     and fsck finds the volume clean;
#   - SIGKILL at each step of the manifest's replacement, put there by
#     strace's fault injection (a tune of the unmounted volume, whose only
#     write, fsync and rename before the unmount are the manifest's): at
#     its write and its fsync and at the rename the old options hold, at
#     the directory's fsync after the rename the new ones.
# shellcheck source=tests/ops/lib.sh
source "$(dirname "$0")/lib.sh"
cairn=$(realpath "$1")
need_root_fuse
work=$(mktemp -d /dev/shm/cairn-tune.XXXXXX) # emul parts inside the volume
daemon=
cleanup() {
	[ -z "$daemon" ] || kill -9 "$daemon" 2>/dev/null || true
	umount -l "$work/mp" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
chmod 755 "$work"
mkdir -p "$work/mp"
vol=$work/vol
"$cairn" mkfs "$vol" --media emul --log-size 16M --fast-size 64M >/dev/null
json() { "$cairn" stat "$1" --json; }
# HIGH/LOW/PROMOTION of a volume's JSON.
tuning_of() { echo "$(json_field high_watermark "$1")/$(json_field low_watermark "$1")/$(json_field promotion "$1")"; }

"$cairn" mount "$vol" "$work/mp" --batch 50
out=$("$cairn" tune "$work/mp" --high-watermark 91 --low-watermark 41 --no-promote --batch 9) ||
	fail "root's tune of a mounted volume failed: $out"
s=$(json "$work/mp")
[ "$(tuning_of "$s")" = 91/41/false ] ||
	fail "the mount did not change: $s"
grep -q "batch (durable within 9 ms)" <<<"$("$cairn" stat "$work/mp")" || fail "the batch interval did not change"

# Another user: refused, nothing changed.
set +e
out=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$cairn" tune "$work/mp" --high-watermark 70 2>&1)
rc=$?
set -e
[ "$rc" = 1 ] || fail "a user's tune: exit $rc ($out)"
grep -q "Operation not permitted" <<<"$out" || fail "a user's tune did not say EPERM: $out"
s=$(json "$work/mp")
[ "$(json_field high_watermark "$s")" = 91 ] || fail "a refused tune changed the volume: $s"
"$cairn" umount "$work/mp"
s=$(json "$vol")
[ "$(tuning_of "$s")" = 91/41/false ] ||
	fail "not stored for the next mount: $s"
grep -q '"mode": "sync"' <<<"$s" || fail "the batch interval was stored: $s"

# kill -9 of the daemon among tunes.
tuned=0
for round in $(seq 1 12); do
	# The socket the daemon killed before left: gone, so that the wait
	# below sees the new daemon's, made once it serves (a probe that
	# took the volume's lock, or a stat that mounted it, would race it).
	rm -f "$vol/cairn.sock"
	"$cairn" serve "$vol" 2>/dev/null &
	daemon=$!
	for _ in $(seq 1 250); do [ -S "$vol/cairn.sock" ] && break; sleep 0.02; done
	[ -S "$vol/cairn.sock" ] || fail "round $round: the daemon did not serve"
	(
		# Only while the daemon lives: without it, cairn tune would mount
		# the volume itself.
		for i in $(seq 1 1000); do
			kill -0 "$daemon" 2>/dev/null || exit 0
			if ((i % 2)); then
				"$cairn" tune "$vol" --high-watermark 85 --low-watermark 35 --promote
			else
				"$cairn" tune "$vol" --high-watermark 95 --low-watermark 45 --no-promote
			fi >/dev/null 2>&1 || exit 0
		done
	) &
	tuner=$!
	sleep "0.$((RANDOM % 4 + 1))"
	kill -9 "$daemon" 2>/dev/null || true
	wait "$daemon" 2>/dev/null || true
	daemon=
	wait "$tuner" || true
	s=$(json "$vol") || fail "round $round: the volume is refused after kill -9: $s"
	got="$(tuning_of "$s")"
	case $got in
	85/35/true | 95/45/false) tuned=$((tuned + 1)) ;;
	91/41/false) ;;
	*) fail "round $round: after kill -9 the volume has $got, a mixture" ;;
	esac
done
[ "$tuned" -gt 0 ] || fail "no tune got through in 12 rounds: the test tested nothing"

# SIGKILL at each step of the manifest's replacement.
"$cairn" tune "$vol" --high-watermark 80 --low-watermark 60 --promote >/dev/null
for point in write:1:80/60/true fsync:1:80/60/true rename:1:80/60/true fsync:2:70/50/false; do
	IFS=: read -r call when want <<<"$point"
	set +e
	strace -f -o /dev/null -e "inject=$call:signal=SIGKILL:when=$when" \
		"$cairn" tune "$vol" --high-watermark 70 --low-watermark 50 --no-promote >/dev/null 2>&1
	rc=$?
	set -e
	[ "$rc" = 137 ] || fail "SIGKILL at $call #$when did not kill the tune (exit $rc)"
	s=$(json "$vol") || fail "SIGKILL at $call #$when: the volume is refused: $s"
	got="$(tuning_of "$s")"
	[ "$got" = "$want" ] || fail "SIGKILL at $call #$when: options $got, expected $want"
	"$cairn" tune "$vol" --high-watermark 80 --low-watermark 60 --promote >/dev/null
done
"$cairn" fsck "$vol" >/dev/null || fail "fsck after the kills found problems"
echo "[tune] passed"
