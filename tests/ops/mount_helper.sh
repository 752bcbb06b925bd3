#!/usr/bin/env bash
# mount_helper.sh CAIRN - mount.cairn with the real mount(8) and umount(8):
# the test runs in a mount namespace of its own where /usr/sbin is an
# overlay holding mount.cairn (a link to CAIRN, as installed), so that
# mount(8) finds the helper without the system being changed.  Checks:
#   - `mount -t cairn VOL MP -o ...`: mount's and systemd's options
#     (_netdev, nofail, x-systemd.*) are dropped, cairn's become `cairn
#     mount` options (batch=), the rest reach FUSE (nosuid, ro);
#   - /etc/fstab lines (an fstab of the test's own, `mount -T`): `mount
#     MP`, `mount -a` leaving noauto lines alone and going on past a nofail
#     line whose volume is missing;
#   - umount(8) ends the daemon, which writes its last checkpoint: the
#     data is there at the next mount and fsck finds the volume clean;
#   - a bad option, a missing volume, -f (fake) and -s (sloppy).
# shellcheck source=tests/ops/lib.sh
source "$(dirname "$0")/lib.sh"
cairn=$(realpath "$1")
need_root_fuse
if [ "${CAIRN_OPS_IN_NS:-}" != 1 ]; then
	exec unshare -m --propagation private env CAIRN_OPS_IN_NS=1 bash "$0" "$@"
fi
# On a tmpfs: emul parts live in the volume directory (not beside it in
# /dev/shm), so that removing it removes them.
work=$(mktemp -d /dev/shm/cairn-mh.XXXXXX)
cleanup() {
	for m in $(awk -v w="$work" 'index($2, w) == 1 { print $2 }' /proc/self/mounts); do
		umount "$m" 2>/dev/null || true
	done
	rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/sbin" "$work/mp" "$work/mp2"
ln -s "$cairn" "$work/sbin/mount.cairn"
mount -t overlay overlay -o "lowerdir=$work/sbin:/usr/sbin" /usr/sbin
"$cairn" mkfs "$work/vol" --media emul --log-size 16M --fast-size 64M >/dev/null

mounted() { awk -v m="$1" '$2 == m { print $3, $4 }' /proc/self/mounts; }
# daemon_gone VOL: the daemon let go of the volume (its lock is free: the
# daemon, forked by mount.cairn, holds it until its last checkpoint ends).
daemon_gone() {
	for _ in $(seq 1 100); do
		flock -n "$work/$1" true && return 0
		sleep 0.1
	done
	return 1
}

out=$(mount -v -t cairn "$work/vol" "$work/mp" \
	-o _netdev,nofail,x-systemd.requires=foo.service,x-systemd.automount,batch=7,nosuid 2>&1) ||
	fail "mount -t cairn failed: $out"
echo "$out" | grep -q -- "cairn mount --batch 7 -o rw,nosuid $work/vol $work/mp" ||
	fail "the helper ran something else: $out"
m=$(mounted "$work/mp")
[[ $m == "fuse.cairn "* ]] || fail "not a cairn mount: '$m'"
[[ ,${m#* }, == *,nosuid,* ]] || fail "nosuid did not reach the mount: $m"
[ "$("$cairn" stat "$work/mp" --json | grep -o '"mode": "[a-z]*"')" = '"mode": "batch"' ] ||
	fail "batch=7 did not make a batch-mode mount"
echo "written through mount -t cairn" >"$work/mp/f"
umount "$work/mp" || fail "umount failed"
daemon_gone vol || fail "the daemon is still running after umount"
[ -z "$(mounted "$work/mp")" ] || fail "still mounted after umount"
"$cairn" fsck "$work/vol" >/dev/null || fail "fsck after umount found problems"
# The daemon's last checkpoint digested everything: the log is empty.
s=$("$cairn" stat "$work/vol" --json)
[ "$(json_field undigested_records "$s")" = 0 ] || fail "records left in the log after umount: $s"

# fstab: its own file, read with mount -T.
"$cairn" mkfs "$work/vol2" --media emul --log-size 16M --fast-size 64M >/dev/null
cat >"$work/fstab" <<FSTAB
# a comment line
$work/vol   $work/mp   cairn  defaults,ro,_netdev,x-systemd.device-timeout=5s  0 0
$work/vol2  $work/mp2  cairn  noauto,nodev  0 0
$work/gone  $work/mp2  cairn  nofail  0 0
FSTAB
mount -T "$work/fstab" "$work/mp" || fail "mount MP from an fstab line failed"
m=$(mounted "$work/mp")
[[ ,${m#* }, == *,ro,* ]] || fail "ro from fstab did not reach the mount: $m"
[ "$(cat "$work/mp/f")" = "written through mount -t cairn" ] || fail "data lost across umount"
! touch "$work/mp/g" 2>/dev/null || fail "a read-only mount took a write"
umount "$work/mp"
daemon_gone vol || fail "the daemon is still running after umount"
mount -a -T "$work/fstab" 2>"$work/err" || fail "mount -a failed: $(cat "$work/err")"
[ -n "$(mounted "$work/mp")" ] || fail "mount -a did not mount the auto line"
[ -z "$(mounted "$work/mp2")" ] || fail "mount -a mounted a noauto line (or a missing volume)"
umount "$work/mp"
daemon_gone vol || fail "the daemon is still running after umount"

# Errors: exit 32 with a reason; nothing left mounted.
set +e
out=$(mount -t cairn "$work/vol" "$work/mp" -o no_such_option 2>&1)
rc=$?
set -e
[ "$rc" = 32 ] || fail "an unknown option: exit $rc, not 32 ($out)"
echo "$out" | grep -q no_such_option || fail "an unknown option is not named: $out"
[ -z "$(mounted "$work/mp")" ] || fail "mounted despite an unknown option"
mount -s -t cairn "$work/vol" "$work/mp" -o no_such_option || fail "-s did not drop the option"
umount "$work/mp"
daemon_gone vol || fail "the daemon is still running after umount"
set +e
out=$(mount -t cairn "$work/missing" "$work/mp" 2>&1)
rc=$?
set -e
[ "$rc" = 32 ] || fail "a missing volume: exit $rc, not 32"
echo "$out" | grep -q "$work/missing" || fail "a missing volume is not named: $out"
out=$(POSIXLY_CORRECT=1 "$work/sbin/mount.cairn" "$work/vol" "$work/mp" -f -o batch=3 -o nodev 2>&1) ||
	fail "-f failed: $out"
[ -z "$(mounted "$work/mp")" ] || fail "-f mounted"
# Options after the operands (even with POSIXLY_CORRECT), and each -o.
echo "$out" | grep -q -- "--batch 3 -o nodev $work/vol $work/mp" || fail "-f did not say the command: $out"
set +e
"$work/sbin/mount.cairn" "$work/vol" 2>/dev/null
rc=$?
set -e
[ "$rc" = 1 ] || fail "a missing MOUNTPOINT: exit $rc, not 1"
# -N: the mount lands in another mount namespace, not in this one.
unshare -m --propagation private sleep 60 &
holder=$!
for _ in $(seq 1 50); do
	[ "$(readlink /proc/$holder/ns/mnt)" != "$(readlink /proc/self/ns/mnt)" ] && break
	sleep 0.05
done
"$work/sbin/mount.cairn" "$work/vol" "$work/mp" -N "$holder" || fail "mount -N failed"
awk -v m="$work/mp" '$2 == m && $3 == "fuse.cairn" { f = 1 } END { exit !f }' "/proc/$holder/mounts" ||
	fail "-N: not mounted in the other namespace"
[ -z "$(mounted "$work/mp")" ] || fail "-N: mounted in this namespace too"
nsenter -t "$holder" -m umount "$work/mp" || fail "umount in the other namespace failed"
daemon_gone vol || fail "the daemon of the -N mount is still running after umount"
kill "$holder"
echo "[mount_helper] passed"
