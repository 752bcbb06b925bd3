#!/usr/bin/env bash
# systemd.sh CAIRN NOTIFY_LISTEN UNIT - the daemon under systemd, as far as
# it can be tested without systemd as PID 1:
#   - UNIT (the configured cairn@.service, its ExecStart pointed at CAIRN)
#     passes `systemd-analyze verify` for an instance, with nothing said;
#   - an fstab line of type cairn becomes, through systemd-fstab-generator,
#     a mount unit of Type=cairn with its options, which verify accepts;
#   - Type=notify: `cairn serve` and `cairn mount --foreground` send
#     READY=1 to NOTIFY_SOCKET only once they serve (the test then attaches
#     at once, or finds the mount up), and STOPPING=1 on SIGTERM, after
#     which they exit 0 with the volume clean.
# shellcheck source=tests/ops/lib.sh
source "$(dirname "$0")/lib.sh"
cairn=$(realpath "$1")
listen=$(realpath "$2")
unit=$(realpath "$3")
need_root_fuse
work=$(mktemp -d /dev/shm/cairn-sd.XXXXXX) # emul parts inside the volume
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	umount "$work/mp" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/units" "$work/gen" "$work/mp"

# The unit, verified: verify's complaints go to stderr, some with exit 0.
sed "s|^ExecStart=[^ ]*|ExecStart=$cairn|" "$unit" >"$work/units/cairn@.service"
grep -q "^ExecStart=$cairn serve %f$" "$work/units/cairn@.service" ||
	fail "unexpected ExecStart in $unit"
inst="cairn@$(systemd-escape --path "$work/vol").service"
out=$(cd "$work/units" && systemd-analyze verify --man=no "./$inst" 2>&1) ||
	fail "systemd-analyze verify $inst: $out"
[ -z "$out" ] || fail "systemd-analyze verify $inst said: $out"
grep -q '^Type=notify$' "$work/units/cairn@.service" || fail "the unit is not Type=notify"

# fstab through the generator.
echo "$work/vol $work/mp cairn defaults,nofail,batch=5,x-systemd.device-timeout=5s 0 0" \
	>"$work/fstab"
SYSTEMD_FSTAB=$work/fstab /lib/systemd/system-generators/systemd-fstab-generator \
	"$work/gen" "$work/gen" "$work/gen" 2>/dev/null || fail "systemd-fstab-generator failed"
mu="$work/gen/$(systemd-escape --path "$work/mp").mount"
[ -f "$mu" ] || fail "the generator made no mount unit: $(ls "$work/gen")"
for want in "What=$work/vol" "Where=$work/mp" "Type=cairn" "Options=defaults,nofail,batch=5"; do
	grep -q "^$want" "$mu" || fail "$want missing from the generated unit: $(cat "$mu")"
done
out=$(systemd-analyze verify --man=no "$mu" 2>&1) || fail "verify of the mount unit: $out"

# Type=notify.  notify [DAEMON ARGS...]: runs the daemon with a listener on
# its NOTIFY_SOCKET; sets $daemon and $heard.
notify() {
	local sock=$work/notify.$RANDOM.sock # a new one: an old file would look bound
	heard=$work/heard.$RANDOM
	"$listen" "$sock" 60 >"$heard" &
	pids+=($!)
	listener=$!
	for _ in $(seq 1 50); do [ -S "$sock" ] && break; sleep 0.05; done
	NOTIFY_SOCKET=$sock "$@" &
	daemon=$!
	pids+=("$daemon")
	for _ in $(seq 1 200); do grep -q '^READY=1$' "$heard" && return 0; sleep 0.05; done
	fail "no READY=1 from $*: heard '$(cat "$heard")'"
}
stop_daemon() {
	kill -TERM "$daemon"
	local rc=0
	wait "$daemon" || rc=$?
	[ "$rc" = 0 ] || fail "$1 exited $rc after SIGTERM"
	wait "$listener" || fail "no STOPPING=1 from $1: heard '$(cat "$heard")'"
	"$cairn" fsck "$work/vol" >/dev/null || fail "fsck after $1 stopped found problems"
}

"$cairn" mkfs "$work/vol" --media emul --log-size 16M --fast-size 64M >/dev/null
notify "$cairn" serve "$work/vol"
grep -q '"client_logs"' <<<"$("$cairn" stat "$work/vol" --json)" ||
	fail "READY=1 came, but a client could not attach"
"$cairn" demo "$work/vol" >/dev/null || fail "a client's demo failed on the served volume"
stop_daemon "cairn serve"

notify "$cairn" mount --foreground "$work/vol" "$work/mp"
awk -v m="$work/mp" '$2 == m && $3 == "fuse.cairn" { f = 1 } END { exit !f }' /proc/self/mounts ||
	fail "READY=1 came before the mount was up"
echo kept >"$work/mp/f"
stop_daemon "cairn mount --foreground"
! awk -v m="$work/mp" '$2 == m { f = 1 } END { exit !f }' /proc/self/mounts ||
	fail "still mounted after SIGTERM"
echo "[systemd] passed"
