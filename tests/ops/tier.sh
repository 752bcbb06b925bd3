#!/usr/bin/env bash
# tier.sh CAIRN - `cairn tier add` and `cairn tier remove` of a running
# volume:
#   1. through a mounted volume's daemon: files written through the mount
#      move down to the capacity tier ssd; root adds a tier hdd (the
#      manifest's line, cairn stat); user nobody is refused both add and
#      remove, with a word about root, and nothing changes;
#   2. root removes ssd: its data moves to hdd, every file reads back the
#      same, the manifest says `retired ssd`, cairn stat shows it removed
#      with no blocks, fsck finds the unmounted volume clean and the next
#      mount has the same files;
#   3. SIGINT during the removal (the command, which has its handler,
#      stopped by SIGSTOP once ssd drains, while cairn stat shows it
#      draining in all three formats; then SIGINT): exit 3, "cancelled",
#      no longer draining, the tier keeps its place and its data (a
#      removal that finished first, the stop landing in its last step,
#      proves nothing: the next try has more data), new data moves to it again
#      (and again after kill -9 of a removal's command: the daemon gives
#      the tier back when the command's session ends), and the next
#      removal (under script(1): the progress line) finishes;
#   4. kill -9 during the removal of ssd, of the command itself (an
#      unserved volume: the command runs the engine) 0.05 to 0.45 s after
#      its start, and of the daemon of a served volume 0.05 and 0.15 s
#      after the command attached (the move runs at 1 GiB/s here: longer
#      delays would find it done): after each, the manifest says `tier ssd`
#      or `retired ssd`, the volume mounts (a retired tier's manifest line
#      rewritten by then), every file reads back the same, fsck finds it
#      clean; ssd is filled again when it runs low, and should a round
#      find the removal done, the rounds go on removing hdd (a tier cap
#      added under it); at least 3 kills must land half way (under load,
#      as in a sanitizer build beside other tests, the command may still
#      be mounting the volume when those delays end: up to 6 more rounds
#      then kill it 0.1 to 0.2 s after its move began, its signal
#      handlers in place, until 3 have); then a
#      removal that completes; then, on a small volume, SIGKILL at each
#      step of the manifest's replacement (strace's fault injection) in an
#      add and in removes: before the rename the add never happened, after
#      it the next mount finishes it; a remove killed at any of them (the
#      superblock has the tier retired by then) is finished by the next
#      mount;
#   5. refusals that change nothing: removing a tier that is not there, a
#      tier named fast, a name the volume has, a file holding data unless
#      --force;
#   6. the fast tier of the small volume grows: SIGKILL at each step of
#      the manifest's replacement (before the rename the tier is as it
#      was; after it, with block 0 damaged as well, the next mount finds
#      the superblock's copy at the part's new end and finishes the
#      grow); then through the daemon, where user nobody is refused.
# Parts 1, 2, 3, 5 and the volume of 4 live in /dev/shm; part 4's hdd (and
# cap) are files under /var/tmp (a disk), so that moving data onto them
# takes long enough to be killed half way.
# shellcheck source=tests/ops/lib.sh
source "$(dirname "$0")/lib.sh"
cairn=$(realpath "$1")
need_root_fuse
command -v strace >/dev/null || {
	echo "SKIP: needs strace"
	exit 77
}
work=$(mktemp -d /dev/shm/cairn-tier.XXXXXX)
slow=$(mktemp -d /var/tmp/cairn-tier.XXXXXX)
cleanup() {
	# Our own background jobs still there (cairn serve, a removal).
	for p in $(jobs -p); do kill -9 "$p" 2>/dev/null || true; done
	for m in "$work"/mp*; do
		[ -d "$m" ] || continue
		mountpoint -q "$m" && { "$cairn" umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; }
	done
	rm -rf "$work" "$slow"
}
trap cleanup EXIT
chmod 755 "$work"
mkdir -p "$work/mp1" "$work/mp3" "$work/mp4"
t0=$SECONDS

# 64 MiB of random bytes files are cut from.
pool=$work/pool
head -c 64M /dev/urandom >"$pool"

# ---- helpers -------------------------------------------------------------

# tier_obj NAME JSON: tier NAME's object in `cairn stat --json`, or nothing.
tier_obj() { grep -o "{\"name\": \"$1\"[^}]*}" <<<"$2" || true; }
# tier_used NAME JSON: MiB in use on tier NAME (0 when absent or removed).
tier_used() {
	local o b f
	o=$(tier_obj "$1" "$2")
	[ -n "$o" ] || {
		echo 0
		return
	}
	b=$(json_field blocks "$o")
	f=$(json_field free_blocks "$o")
	echo $(((b - f) * 4096 >> 20))
}
# tier_field NAME FIELD JSON
tier_field() {
	local o
	o=$(tier_obj "$1" "$3")
	[ -z "$o" ] || json_field "$2" "$o"
}
json() { "$cairn" stat "$1" --json; }
# fast_pct JSON: how full the fast tier is, in percent.
fast_pct() {
	local b f
	b=$(json_field fast_blocks "$1")
	f=$(json_field fast_free_blocks "$1")
	echo $(((b - f) * 100 / b))
}

# write_files DIR PREFIX N MIB: N files of MIB MiB each (random, each its
# own: its name at the end), DIR/PREFIX1 .. DIR/PREFIXN.
write_files() {
	local i
	for i in $(seq 1 "$3"); do
		dd if="$pool" of="$1/$2$i" bs=1M count="$4" skip=$((RANDOM % (64 - $4))) \
			status=none || fail "writing $1/$2$i failed"
		echo "$2$i" >>"$1/$2$i" || fail "appending to $1/$2$i failed"
	done
}

# sums DIR: sha256 of every file under DIR, by name.
sums() {
	(cd "$1" && find . -type f -print0 | xargs -0 -r -P2 -n16 sha256sum | sort -k2)
}

# same_sums DIR RECORD WHAT: every file reads back as recorded, no more, no less.
same_sums() {
	local now
	now=$(sums "$1") || fail "$3: reading the files failed"
	[ "$now" = "$(cat "$2")" ] ||
		fail "$3: the files differ from what was written: $(diff <(echo "$now") "$2" | head -8)"
}

# settle MP WHAT: waits until migration has taken the fast tier below the
# high watermark (all the mounts here have 50%/40% or 10%/5%).
settle() {
	local s high
	for _ in $(seq 1 300); do
		s=$(json "$1")
		high=$(json_field high_watermark "$s")
		[ "$(fast_pct "$s")" -gt "$high" ] || return 0
		sleep 0.05
	done
	fail "$2: the fast tier stays above its high watermark: $s"
}

# wait_handler PID: waits until PID is cairn and catches SIGINT and
# SIGTERM (the removal's handlers, set once the volume is open; bash's
# child before the exec catches neither); 1 if it ended first.  Builtins
# only: the removal of a few hundred MiB takes a tenth of a second.
wait_handler() {
	local k v comm cgt end=$((SECONDS + 10))
	while ((SECONDS < end)); do
		comm='' cgt=''
		read -r comm <"/proc/$1/comm" 2>/dev/null || return 1
		while read -r k v; do
			[ "$k" = SigCgt: ] && cgt=$v
		done <"/proc/$1/status" 2>/dev/null
		[ "$comm" = cairn ] && [ -n "$cgt" ] && (((0x$cgt & 0x4002) == 0x4002)) && return 0
	done
	return 1
}

# stop_draining PID: stops PID (SIGSTOP) and looks at cairn stat --json
# into s, until the look sees ssd draining (the removal's first step under
# way; PID stays stopped) or PID has ended (s empty).  The command is
# stopped before each look: a look may wait for a step to end, and a
# removal of a few hundred MiB takes a few tenths of a second here.
stop_draining() {
	local i idle
	[ -p "$work/idle" ] || mkfifo "$work/idle"
	exec {idle}<>"$work/idle"
	for ((i = 0; i < 200; i++)); do
		s=
		kill -STOP "$1" 2>/dev/null || break # it has ended
		s=$(json "$mp3")
		[ "$(tier_field ssd draining "$s")" = true ] && break
		kill -CONT "$1" 2>/dev/null || true
		read -rt 0.002 -u "$idle" || true # 2 ms, with no process forked
	done
	exec {idle}>&-
	((i < 200)) || fail "ssd was not seen draining in 200 looks at its removal"
}

# reap PID WHAT: rc becomes the exit status of PID, which must end within 20 s.
reap() {
	for _ in $(seq 1 200); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$1" 2>/dev/null; then
		kill -9 "$1" 2>/dev/null || true
		fail "$2: still running 20 s on"
	fi
	rc=0
	wait "$1" 2>/dev/null || rc=$?
}

# ---- 1. add through the daemon; another user refused ---------------------------
vol1=$work/vol1
mp1=$work/mp1
"$cairn" mkfs "$vol1" --media emul --log-size 16M --fast-size 64M \
	--tier "ssd=$work/ssd1.part:256M" >/dev/null
"$cairn" mount "$vol1" "$mp1"
"$cairn" tune "$mp1" --high-watermark 10 --low-watermark 5 >/dev/null
mkdir "$mp1/dir"
write_files "$mp1" f 8 4
write_files "$mp1/dir" g 4 3
for i in $(seq 1 20); do head -c $((i * 517)) "$pool" >"$mp1/dir/small$i"; done
for _ in $(seq 1 200); do
	s=$(json "$mp1")
	[ "$(tier_used ssd "$s")" -lt 20 ] || break
	sleep 0.05
done
[ "$(tier_used ssd "$s")" -ge 20 ] || fail "files written did not move to ssd: $s"
sums "$mp1" >"$work/sums1"
[ "$(wc -l <"$work/sums1")" = 32 ] || fail "expected 32 files: $(cat "$work/sums1")"

out=$("$cairn" tier add "$mp1" "hdd=$work/hdd1.part:512M") || fail "root's tier add through the daemon failed: $out"
grep -qx "tier hdd 536870912 256 $work/hdd1.part" "$vol1/cairn.volume" ||
	fail "no manifest line for hdd: $(cat "$vol1/cairn.volume")"
s=$(json "$mp1")
[ "$(tier_field hdd blocks "$s")" -gt 0 ] && [ "$(tier_field hdd removed "$s")" = false ] ||
	fail "cairn stat does not list hdd: $s"
"$cairn" stat "$mp1" | grep -Eq '^ +hdd +512\.0 ' || fail "cairn stat's table lacks hdd: $("$cairn" stat "$mp1")"

cp "$vol1/cairn.volume" "$work/manifest1"
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$cairn" "$@"; }
as_nobody stat "$mp1" >/dev/null 2>&1 || fail "user nobody cannot reach the daemon at all: the check below would test nothing"
for cmd in "add $mp1 nb=$work/nobody.part:64M" "remove $mp1 ssd" "remove $mp1 hdd"; do
	rc=0
	# shellcheck disable=SC2086
	out=$(as_nobody tier $cmd 2>&1) || rc=$?
	[ "$rc" != 0 ] || fail "user nobody's tier $cmd succeeded: $out"
	grep -q "root" <<<"$out" || fail "user nobody's tier $cmd: no word about root: $out"
	grep -q "Operation not permitted" <<<"$out" || fail "user nobody's tier $cmd: not EPERM: $out"
	cmp -s "$vol1/cairn.volume" "$work/manifest1" ||
		fail "user nobody's tier $cmd changed the manifest: $(diff "$work/manifest1" "$vol1/cairn.volume")"
done
[ ! -e "$work/nobody.part" ] || fail "user nobody's refused add made its part file"
s=$(json "$mp1")
[ "$(tier_field ssd removed "$s")" = false ] && [ "$(tier_field hdd removed "$s")" = false ] ||
	fail "a refused user changed the tiers: $s"
echo "[tier] 1. add through the daemon, nobody refused: ok ($((SECONDS - t0)) s)"

# ---- 2. remove through the daemon -------------------------------------------
rc=0
"$cairn" tier remove "$mp1" ssd >"$work/out" 2>"$work/err" || rc=$?
[ "$rc" = 0 ] || fail "tier remove ssd: exit $rc: $(cat "$work/out" "$work/err")"
grep -q "tier ssd removed" "$work/out" || fail "tier remove said: $(cat "$work/out")"
[ ! -s "$work/err" ] || fail "tier remove wrote to stderr off a terminal: $(od -c "$work/err" | head -3)"
grep -qx "retired ssd" "$vol1/cairn.volume" || fail "no 'retired ssd' in the manifest: $(cat "$vol1/cairn.volume")"
! grep -q "^tier ssd " "$vol1/cairn.volume" || fail "the manifest still has ssd's tier line"
grep -qx "tier hdd 536870912 256 $work/hdd1.part" "$vol1/cairn.volume" || fail "the manifest lost hdd"
s=$(json "$mp1")
[ "$(tier_field ssd removed "$s")" = true ] && [ "$(tier_field ssd blocks "$s")" = 0 ] ||
	fail "cairn stat shows ssd still there: $s"
"$cairn" stat "$mp1" | grep -Eq '^ +ssd +removed' || fail "cairn stat's table: $("$cairn" stat "$mp1")"
[ "$(tier_used hdd "$s")" -ge 20 ] || fail "ssd's data is not on hdd: $s"
same_sums "$mp1" "$work/sums1" "after tier remove ssd"
"$cairn" umount "$mp1"
"$cairn" fsck "$vol1" >"$work/fsck" 2>&1 || fail "fsck after tier remove: $(cat "$work/fsck")"
"$cairn" mount "$vol1" "$mp1"
same_sums "$mp1" "$work/sums1" "the next mount after tier remove ssd"
s=$(json "$mp1")
[ "$(tier_field ssd removed "$s")" = true ] || fail "the next mount has ssd back: $s"
echo "[tier] 2. remove through the daemon: ok ($((SECONDS - t0)) s)"

# ---- 5. refusals that change nothing (on the same mount) ------------------------
cp "$vol1/cairn.volume" "$work/manifest1"
unchanged() {
	cmp -s "$vol1/cairn.volume" "$work/manifest1" ||
		fail "$1 changed the manifest: $(diff "$work/manifest1" "$vol1/cairn.volume")"
}
rc=0
out=$("$cairn" tier remove "$mp1" nosuch 2>&1) || rc=$?
[ "$rc" != 0 ] || fail "tier remove nosuch succeeded: $out"
grep -q "nosuch" <<<"$out" || fail "tier remove nosuch does not name the tier: $out"
unchanged "tier remove nosuch"
rc=0
out=$("$cairn" tier remove "$mp1" ssd 2>&1) || rc=$?
[ "$rc" != 0 ] && grep -q "ssd" <<<"$out" || fail "removing the removed ssd again: exit $rc: $out"
unchanged "tier remove of a removed tier"
rc=0
out=$("$cairn" tier add "$mp1" "fast=$work/fast.part:64M" 2>&1) || rc=$?
[ "$rc" != 0 ] || fail "tier add fast succeeded: $out"
grep -q "fast" <<<"$out" || fail "tier add fast: $out"
[ ! -e "$work/fast.part" ] || fail "the refused tier add fast made its file"
unchanged "tier add fast"
rc=0
out=$("$cairn" tier add "$mp1" "hdd=$work/hdd1b.part:64M" 2>&1) || rc=$?
[ "$rc" != 0 ] || fail "a second tier named hdd was added: $out"
[ ! -e "$work/hdd1b.part" ] || fail "the refused add of a second hdd made its file"
unchanged "tier add of a name the volume has"
head -c 16M /dev/urandom >"$work/busy.part"
busy=$(sha256sum <"$work/busy.part")
rc=0
out=$("$cairn" tier add "$mp1" "busy=$work/busy.part" 2>&1) || rc=$?
[ "$rc" != 0 ] || fail "tier add onto a file holding data succeeded without --force: $out"
[ "$(sha256sum <"$work/busy.part")" = "$busy" ] || fail "the refused add wrote over the file"
unchanged "tier add onto a file holding data"
out=$("$cairn" tier add "$mp1" "busy=$work/busy.part" --force 2>&1) ||
	fail "tier add --force onto a file holding data failed: $out"
grep -qx "tier busy 16777216 1 $work/busy.part" "$vol1/cairn.volume" ||
	fail "no manifest line for busy: $(cat "$vol1/cairn.volume")"
same_sums "$mp1" "$work/sums1" "after the refusals"
"$cairn" umount "$mp1"
"$cairn" fsck "$vol1" >"$work/fsck" 2>&1 || fail "fsck after the refusals: $(cat "$work/fsck")"
rm -rf "$vol1" "$work"/*1.part "$work/busy.part"
echo "[tier] 5. refusals: ok ($((SECONDS - t0)) s)"

# ---- 3. cancel -----------------------------------------------------------
mp3=$work/mp3
cancelled=
for try in 1 2 3 4; do
	vol3=$work/vol3.$try
	mib=$((150 + try * 150)) # more than one 256 MiB step
	"$cairn" mkfs "$vol3" --media file --log-size 16M --fast-size 64M \
		--tier "ssd=$work/ssd3.$try:1G" --tier "hdd=$work/hdd3.$try:1G" >/dev/null
	"$cairn" tune "$vol3" --high-watermark 50 --low-watermark 40 --no-promote >/dev/null
	"$cairn" mount "$vol3" "$mp3"
	write_files "$mp3" c $((mib / 10)) 10
	settle "$mp3" "cancel try $try"
	sums "$mp3" >"$work/sums3"
	s=$(json "$mp3")
	before=$(tier_used ssd "$s")
	[ "$before" -gt 256 ] || fail "cancel try $try: only $before MiB on ssd: $s"
	cp "$vol3/cairn.volume" "$work/manifest3"
	"$cairn" tier remove "$mp3" ssd >"$work/out" 2>"$work/err" &
	cli=$!
	wait_handler "$cli" || fail "cancel try $try: the removal ended before it caught SIGINT: $(cat "$work/out" "$work/err")"
	# The command stopped while ssd drains, cairn stat looks; then SIGINT.
	# Should the stop land in the last step (the machine busy enough to
	# hold this script back for a step), the removal finishes: this try
	# proves nothing, and the next has more data.
	stop_draining "$cli"
	table=$("$cairn" stat "$mp3")
	prom=$("$cairn" stat "$mp3" --prometheus)
	kill -INT "$cli" 2>/dev/null || true
	kill -CONT "$cli" 2>/dev/null || true
	reap "$cli" "the removal after SIGINT"
	same_sums "$mp3" "$work/sums3" "cancel try $try (exit $rc)"
	if [ "$rc" = 0 ]; then
		grep -qx "retired ssd" "$vol3/cairn.volume" || fail "cancel try $try: exit 0 but ssd not retired"
		echo "[tier] 3. try $try: stopped too late, the removal of $before MiB finished"
		"$cairn" umount "$mp3"
		"$cairn" fsck "$vol3" >"$work/fsck" 2>&1 || fail "fsck after try $try: $(cat "$work/fsck")"
		rm -rf "$vol3" "$work/ssd3.$try" "$work/hdd3.$try"
		continue
	fi
	[ "$rc" = 3 ] || fail "cancel try $try: exit $rc, not 3: $(cat "$work/out" "$work/err")"
	[ "$(tier_field ssd draining "$s")" = true ] || fail "cairn stat --json during the removal: $s"
	grep -Eq '^ +ssd .* draining$' <<<"$table" || fail "cairn stat's table during the removal: $table"
	grep -q '^cairn_tier_draining{.*tier="ssd"} 1$' <<<"$prom" ||
		fail "--prometheus during the removal: $(grep draining <<<"$prom")"
	grep -q "cancelled: tier ssd keeps its place" "$work/err" || fail "cancel: said $(cat "$work/err")"
	cmp -s "$vol3/cairn.volume" "$work/manifest3" ||
		fail "cancel changed the manifest: $(diff "$work/manifest3" "$vol3/cairn.volume")"
	s=$(json "$mp3")
	[ "$(tier_field ssd removed "$s")" = false ] || fail "cancelled, but ssd is removed: $s"
	[ "$(tier_field ssd draining "$s")" = false ] || fail "cancelled, but ssd is still draining: $s"
	kept=$(tier_used ssd "$s")
	said=$(grep -o 'and its [0-9]* MiB' "$work/err" | grep -o '[0-9]*')
	moved=$(grep -o '([0-9]* MiB moved)' "$work/err" | grep -o '[0-9]*')
	# (Nothing moved, kept = before, if SIGINT came before the first step.)
	[ "$kept" -gt 0 ] && [ "$kept" -le "$before" ] ||
		fail "cancelled, ssd holds $kept MiB of its $before: $s"
	[ $((said - kept)) -le 4 ] && [ $((kept - said)) -le 4 ] ||
		fail "cancel said ssd keeps $said MiB, it holds $kept"
	cancelled="try $try: $before MiB on ssd, $moved MiB moved, $kept MiB kept"
	break
done
[ -n "$cancelled" ] || fail "four removals, each stopped while ssd drained and sent SIGINT, all finished: none was cancelled"
echo "[tier] 3. cancelled at $cancelled"
# takes_new WHAT PREFIX: new files written through the mount move to ssd.
takes_new() {
	local in_down
	in_down=$(tier_field ssd in_down_blocks "$(json "$mp3")")
	write_files "$mp3" "$2" 5 10
	for _ in $(seq 1 200); do
		s=$(json "$mp3")
		[ "$(tier_field ssd in_down_blocks "$s")" -gt "$in_down" ] && break
		sleep 0.05
	done
	[ "$(tier_field ssd in_down_blocks "$s")" -gt "$in_down" ] ||
		fail "$1: no new data moves to ssd (left draining?): $s"
	settle "$mp3" "$1: new data"
}
# The tier takes new data again.
takes_new "after the cancel" n
# kill -9 of a removal's command: its daemon gives ssd back as well.  ssd
# holds more than one step's 256 MiB: a removal of less is one step and the
# retirement, which may both be done before the kill lands.  The files
# written for that go afterwards, so that hdd keeps room for the removals
# below.
used=$(tier_used ssd "$(json "$mp3")")
if [ "$used" -lt 300 ]; then
	write_files "$mp3" K $(((300 - used) / 10 + 1)) 10
	settle "$mp3" "before the killed removal"
fi
[ "$(tier_used ssd "$(json "$mp3")")" -gt 256 ] || fail "before the killed removal: $(json "$mp3")"
"$cairn" tier remove "$mp3" ssd >"$work/out" 2>&1 &
cli=$!
wait_handler "$cli" || fail "the removal to be killed ended first: $(cat "$work/out")"
kill -9 "$cli" 2>/dev/null || true
wait "$cli" 2>/dev/null || true
grep -q "^tier ssd " "$vol3/cairn.volume" || fail "kill -9 of the removal's command removed ssd"
rm -f "$mp3"/K*
# The daemon sees the session end once the step under way is done.
for _ in $(seq 1 200); do
	s=$(json "$mp3")
	[ "$(tier_field ssd draining "$s")" = true ] || break
	sleep 0.05
done
[ "$(tier_field ssd draining "$s")" = false ] || fail "kill -9 of the removal's command: ssd stays draining: $s"
takes_new "after kill -9 of the removal's command" k
sums "$mp3" >"$work/sums3"
# Removal again, on a terminal: its progress line, and it finishes.
script -qec "'$cairn' tier remove '$mp3' ssd" /dev/null >"$work/tty" </dev/null ||
	fail "the second removal failed: $(cat "$work/tty")"
tr '\r' '\n' <"$work/tty" | grep -q "moving tier ssd's data 100%" ||
	fail "no progress line on a terminal: $(head -c 400 "$work/tty")"
grep -q "tier ssd removed" "$work/tty" || fail "the second removal said: $(cat "$work/tty")"
grep -qx "retired ssd" "$vol3/cairn.volume" || fail "after the second removal: $(cat "$vol3/cairn.volume")"
same_sums "$mp3" "$work/sums3" "after the second removal"
"$cairn" umount "$mp3"
"$cairn" fsck "$vol3" >"$work/fsck" 2>&1 || fail "fsck after the second removal: $(cat "$work/fsck")"
"$cairn" mount "$vol3" "$mp3"
same_sums "$mp3" "$work/sums3" "the mount after the second removal"
"$cairn" umount "$mp3"
rm -rf "$vol3" "$work"/ssd3.* "$work"/hdd3.*
echo "[tier] 3. cancel: ok ($((SECONDS - t0)) s)"

# ---- 4. kill -9 ------------------------------------------------------------
# The tier removed, $victim: ssd; once a round has finished its removal,
# hdd (a tier cap added under it to take its data).
vol4=$work/vol4
mp4=$work/mp4
"$cairn" mkfs "$vol4" --media file --log-size 16M --fast-size 64M \
	--tier "ssd=$work/ssd4.part:1G" --tier "hdd=$slow/hdd4.part:3G" >/dev/null
"$cairn" tune "$vol4" --high-watermark 50 --low-watermark 40 --no-promote >/dev/null
"$cairn" mount "$vol4" "$mp4"
write_files "$mp4" a 40 10
settle "$mp4" "the first files"
sums "$mp4" >"$work/sums4"
victim=ssd
v_live=1
v_mib=$(tier_used ssd "$(json "$mp4")")
"$cairn" umount "$mp4"
refills=0

# check4 WHAT: the volume after a kill: the manifest, a mount, the files,
# fsck; the victim filled up again (new files: migration takes them to the
# first tier under the fast one, the victim) when it is there and holds
# less than 250 MiB.  Sets v_live, v_seen (MiB on the victim as the kill
# left it) and v_mib (after the refill).
check4() {
	local tl rl s removed
	tl=$(grep -c "^tier $victim " "$vol4/cairn.volume" || true)
	rl=$(grep -cx "retired $victim" "$vol4/cairn.volume" || true)
	[ "$((tl + rl))" = 1 ] ||
		fail "$1: the manifest says neither tier $victim nor retired $victim: $(cat "$vol4/cairn.volume")"
	"$cairn" mount "$vol4" "$mp4" 2>"$work/err" || fail "$1: the volume does not mount: $(cat "$work/err")"
	s=$(json "$mp4")
	removed=$(tier_field "$victim" removed "$s")
	if [ "$removed" = true ]; then
		grep -qx "retired $victim" "$vol4/cairn.volume" ||
			fail "$1: $victim is retired but the mount left the manifest naming it: $(cat "$vol4/cairn.volume")"
		v_live=0
	else
		grep -q "^tier $victim " "$vol4/cairn.volume" || fail "$1: $victim is there, its manifest line is not"
		v_live=1
	fi
	same_sums "$mp4" "$work/sums4" "$1"
	v_seen=$(tier_used "$victim" "$s")
	v_mib=$v_seen
	if [ "$v_live" = 1 ] && [ "$v_mib" -lt 250 ]; then
		refills=$((refills + 1))
		write_files "$mp4" "r${refills}_" $(((400 - v_mib) / 10 + 2)) 10
		settle "$mp4" "$1: refill"
		sums "$mp4" >"$work/sums4"
		v_mib=$(tier_used "$victim" "$(json "$mp4")")
	fi
	"$cairn" umount "$mp4"
	"$cairn" fsck "$vol4" >"$work/fsck" 2>&1 || fail "$1: fsck: $(cat "$work/fsck")"
}

midway=0 # kills that left the victim with some, not all, of its data moved
outcomes=
# round KIND DELAY: one removal killed; KIND daemon (kill -9 of the
# daemon DELAY after the removal attached), command (kill -9 of the
# command, which mounted the volume itself, DELAY after its start) or
# moving (the same, DELAY after its move began: its handlers are set).
round() {
	local before=$v_mib cli daemon what="kill -9 of the $1 after $2 s (tier remove $victim)"
	if [ "$1" = daemon ]; then
		"$cairn" serve "$vol4" 2>>"$work/serve.log" &
		daemon=$!
		for _ in $(seq 1 250); do [ -S "$vol4/cairn.sock" ] && break; sleep 0.02; done
		[ -S "$vol4/cairn.sock" ] || fail "$what: the daemon did not serve"
		"$cairn" tier remove "$vol4" "$victim" >"$work/out" 2>&1 &
		cli=$!
		# Attached (the handlers come after): it cannot mount the volume itself.
		wait_handler "$cli" || fail "$what: the removal ended at once: $(cat "$work/out")"
		sleep "$2"
		kill -9 "$daemon" 2>/dev/null || true
		wait "$daemon" 2>/dev/null || true
		reap "$cli" "$what: the removal whose daemon died"
		rm -f "$vol4/cairn.sock"
	else
		"$cairn" tier remove "$vol4" "$victim" >"$work/out" 2>&1 &
		cli=$!
		if [ "$1" = moving ]; then
			wait_handler "$cli" || true # ended first: the kill finds nothing
		fi
		sleep "$2"
		kill -9 "$cli" 2>/dev/null || true
		rc=0
		wait "$cli" 2>/dev/null || rc=$?
	fi
	check4 "$what (exit $rc)"
	if [ "$v_live" = 1 ]; then
		[ "$v_seen" -ge "$before" ] || midway=$((midway + 1))
		outcomes+=" $1@$2:$victim:$before->$v_seen"
	else
		outcomes+=" $1@$2:$victim:retired"
	fi
}
# rounds SPEC...: a round for each KIND:DELAY, on hdd once ssd is
# retired; none once hdd is too.
rounds() {
	local spec
	for spec in "$@"; do
		if [ "$v_live" = 0 ]; then
			[ "$victim" = ssd ] || return 0
			out=$("$cairn" tier add "$vol4" "cap=$slow/cap4.part:4G" 2>&1) ||
				fail "tier add cap: $out"
			victim=hdd
			check4 "the tier add of cap"
			[ "$v_live" = 1 ] || fail "hdd is gone"
		fi
		round "${spec%:*}" "${spec#*:}"
	done
}
rounds daemon:0.05 daemon:0.15 command:0.05 command:0.1 command:0.15 command:0.2 \
	command:0.3 command:0.45
for delay in 0.1 0.15 0.2 0.1 0.15 0.2; do
	[ "$midway" -ge 3 ] || rounds "moving:$delay"
done
echo "[tier] 4. kill -9 rounds:$outcomes ($midway half way, $refills refills)"
[ "$midway" -ge 3 ] || fail "only $midway kills landed while the data moved: the rounds tested little"
if [ "$v_live" = 1 ]; then
	out=$("$cairn" tier remove "$vol4" "$victim" 2>&1) || fail "the last removal failed: $out"
	grep -qx "retired $victim" "$vol4/cairn.volume" || fail "the last removal left: $(cat "$vol4/cairn.volume")"
	check4 "the last removal"
	[ "$v_live" = 0 ] || fail "the last removal left $victim there"
	echo "[tier] 4. the last removal (of $victim) finished"
else
	echo "[tier] 4. killed removals had finished both ssd and hdd: no last one"
fi

echo "[tier] 4. kill -9 rounds: ok ($((SECONDS - t0)) s)"
"$cairn" umount "$mp4" 2>/dev/null || true
rm -rf "$vol4" "$work/ssd4.part" "$slow/hdd4.part" "$slow/cap4.part"

# SIGKILL at the manifest's replacement (strace's fault injection), on a
# small volume of its own whose ssd holds data: fsync #1 is the new
# manifest's, rename #1 puts it in place, fsync #2 is the directory's.
vol5=$work/vol5
mp5=$work/mp4
"$cairn" mkfs "$vol5" --media emul --log-size 16M --fast-size 64M \
	--tier "ssd=$work/ssd5.part:128M" --tier "hdd=$work/hdd5.part:256M" >/dev/null
"$cairn" tune "$vol5" --high-watermark 10 --low-watermark 5 --no-promote >/dev/null
"$cairn" mount "$vol5" "$mp5"
write_files "$mp5" s 8 4
settle "$mp5" "the small volume's files"
sums "$mp5" >"$work/sums5"
[ "$(tier_used ssd "$(json "$mp5")")" -gt 0 ] || fail "nothing moved to the small volume's ssd"
"$cairn" umount "$mp5"
# killed CALL WHEN ARGS...: cairn ARGS killed at that call.
killed() {
	local call=$1 when=$2 rc=0
	shift 2
	# (A subshell that waits: its shell, not ours, tells of the kill, to
	# /dev/null.)
	(
		strace -f -o /dev/null -e "inject=$call:signal=SIGKILL:when=$when" "$cairn" "$@" >/dev/null
		exit $?
	) 2>/dev/null || rc=$?
	[ "$rc" = 137 ] || fail "SIGKILL at $call #$when did not kill cairn $* (exit $rc)"
}
# tier_state NAME WHAT: st becomes "live", "removed" or "none", from a
# mount; checks the files and fsck.
tier_state() {
	local s
	"$cairn" mount "$vol5" "$mp5" 2>"$work/err" || fail "$2: the volume does not mount: $(cat "$work/err")"
	s=$(json "$mp5")
	st=$(tier_field "$1" removed "$s")
	same_sums "$mp5" "$work/sums5" "$2"
	"$cairn" umount "$mp5"
	"$cairn" fsck "$vol5" >"$work/fsck" 2>&1 || fail "$2: fsck: $(cat "$work/fsck")"
	case $st in
	false)
		[ "$(tier_field "$1" blocks "$s")" -gt 0 ] || fail "$2: tier $1 has no blocks: $s"
		st=live
		;;
	true) st=removed ;;
	*) st=none ;;
	esac
}
cp "$vol5/cairn.volume" "$work/manifest5"
for point in fsync:1 rename:1; do
	killed "${point%:*}" "${point#*:}" tier add "$vol5" "t3=$work/t3.${point%:*}:64M"
	cmp -s "$vol5/cairn.volume" "$work/manifest5" || fail "add killed at $point changed the manifest"
	tier_state t3 "add killed at $point"
	[ "$st" = none ] || fail "add killed at $point: tier t3 is $st after the next mount"
	cmp -s "$vol5/cairn.volume" "$work/manifest5" ||
		fail "add killed at $point: the next mount changed the manifest: $(diff "$work/manifest5" "$vol5/cairn.volume")"
done
killed fsync 2 tier add "$vol5" "t3=$work/t3.part:64M"
grep -qx "tier t3 67108864 1 $work/t3.part" "$vol5/cairn.volume" || fail "add killed at fsync #2: no manifest line"
tier_state t3 "add killed at fsync #2"
[ "$st" = live ] || fail "add killed at fsync #2 (manifest written): tier t3 is $st after the next mount"
# Removals: t3 (empty), ssd (its data moved first), t4 (empty).
for point in fsync:1:t3 rename:1:ssd fsync:2:t4; do
	IFS=: read -r call when name <<<"$point"
	if [ "$name" = t4 ]; then
		out=$("$cairn" tier add "$vol5" "t4=$work/t4.part:64M" 2>&1) || fail "tier add t4: $out"
	fi
	killed "$call" "$when" tier remove "$vol5" "$name"
	if [ "$call:$when" = fsync:2 ]; then
		grep -qx "retired $name" "$vol5/cairn.volume" || fail "remove of $name killed at fsync #2: the manifest was not replaced"
	else
		grep -q "^tier $name " "$vol5/cairn.volume" || fail "remove of $name killed at $call #$when: the manifest was replaced"
	fi
	tier_state "$name" "remove of $name killed at $call #$when"
	[ "$st" = removed ] ||
		fail "remove of $name killed at $call #$when (after the superblock's retirement): tier $name is $st after the next mount"
	grep -qx "retired $name" "$vol5/cairn.volume" ||
		fail "remove of $name killed at $call #$when: the next mount left the manifest: $(cat "$vol5/cairn.volume")"
done
echo "[tier] 4. SIGKILL at the manifest's replacement: ok ($((SECONDS - t0)) s)"

# ---- 6. the fast tier grows ----------------------------------------------------
# fast_mib: the fast part's size in the manifest, in MiB.
fast_mib() { echo $(($(awk '$1 == "part" && $2 == "fast" {print $3}' "$vol5/cairn.volume") >> 20)); }
# fast_state WHAT: mounts; fb becomes the fast tier's data blocks; checks
# the files and fsck.
fast_state() {
	"$cairn" mount "$vol5" "$mp5" 2>"$work/err" || fail "$1: the volume does not mount: $(cat "$work/err")"
	fb=$(json_field fast_blocks "$(json "$mp5")")
	same_sums "$mp5" "$work/sums5" "$1"
	"$cairn" umount "$mp5"
	"$cairn" fsck "$vol5" >"$work/fsck" 2>&1 || fail "$1: fsck: $(cat "$work/fsck")"
}
[ "$(fast_mib)" = 64 ] || fail "the small volume's fast part is $(fast_mib) MiB"
fast_state "before the fast grows"
fb0=$fb
# Killed before the manifest is in place (fsync #1 extends the part, #2 is
# the new manifest's, rename #1 puts it there): the tier as it was, the
# part longer.
for point in fsync:2:80 rename:1:96; do
	IFS=: read -r call when mib <<<"$point"
	cp "$vol5/cairn.volume" "$work/manifest5"
	killed "$call" "$when" tier grow "$vol5" fast "${mib}M"
	cmp -s "$vol5/cairn.volume" "$work/manifest5" || fail "fast grow killed at $call #$when changed the manifest"
	[ "$(stat -c %s "$vol5/fast.part")" = $((mib << 20)) ] || fail "fast grow killed at $call #$when: the part was not extended"
	fast_state "fast grow killed at $call #$when"
	[ "$fb" = "$fb0" ] || fail "fast grow killed at $call #$when: the fast tier has $fb blocks, not $fb0"
done
# Killed after (fsync #3, the directory's): the manifest has the size, the
# superblock not; with block 0 damaged, the copy at the part's new end is
# the one a mount finds.  The mount finishes the grow.
killed fsync 3 tier grow "$vol5" fast 112M
[ "$(fast_mib)" = 112 ] || fail "fast grow killed at fsync #3: the manifest says $(fast_mib) MiB"
dd if=/dev/zero of="$vol5/fast.part" bs=4096 count=1 conv=notrunc status=none
fast_state "fast grow killed at fsync #3, block 0 damaged"
[ "$fb" = $((fb0 + (112 - 64) * 256)) ] || fail "fast grow killed at fsync #3: the next mount left $fb blocks (made with $fb0)"
# Through the daemon: root grows it, nobody is refused.
"$cairn" mount "$vol5" "$mp5"
rc=0
out=$(as_nobody tier grow "$mp5" fast 160M 2>&1) || rc=$?
[ "$rc" != 0 ] && grep -q "Operation not permitted" <<<"$out" || fail "user nobody's fast grow: exit $rc: $out"
[ "$(fast_mib)" = 112 ] || fail "user nobody's fast grow changed the manifest"
out=$("$cairn" tier grow "$mp5" fast 160M 2>&1) || fail "tier grow fast through the daemon: $out"
write_files "$mp5" g 40 1
sums "$mp5" >"$work/sums5"
fb=$(json_field fast_blocks "$(json "$mp5")")
[ "$fb" = $((fb0 + (160 - 64) * 256)) ] || fail "after the grow through the daemon, $fb fast blocks"
"$cairn" umount "$mp5"
fast_state "after the grow through the daemon"
echo "[tier] 6. the fast tier grows: ok ($((SECONDS - t0)) s)"
echo "[tier] passed in $((SECONDS - t0)) s"
