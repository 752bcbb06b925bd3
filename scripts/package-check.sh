#!/usr/bin/env bash
# package-check.sh OUTDIR SCRATCH - the third step of scripts/package.sh,
# run in a mount namespace of its own: an overlay over / (its upper layer a
# tmpfs mounted on the empty directory SCRATCH, gone when the namespace
# goes), chroot into it, install the packages of OUTDIR, run the demo from
# the installed paths.
set -euo pipefail
out=$1
scratch=$2
[ "$(id -u)" = 0 ] || { echo "package-check.sh: needs root" >&2; exit 1; }
mount -t tmpfs tmpfs "$scratch"
mkdir -p "$scratch/upper" "$scratch/work" "$scratch/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$scratch/upper,workdir=$scratch/work" \
	"$scratch/root"
r=$scratch/root
mount --rbind /dev "$r/dev"
mount -t proc proc "$r/proc"
mount --rbind /sys "$r/sys"
mount -t tmpfs tmpfs "$r/tmp"
mount -t tmpfs tmpfs "$r/run"
mkdir -p "$r/dev/shm" && mount -t tmpfs -o huge=within_size tmpfs "$r/dev/shm"
cp "$out"/cairn_*.deb "$out"/libcairn1_*.deb "$out"/libcairn-dev_*.deb "$r/tmp/"
cp tests/ops/outside.c "$r/tmp/"
chroot "$r" /bin/bash -euo pipefail -c '
	export DEBIAN_FRONTEND=noninteractive
	# A failure half way must not leave the daemon serving /tmp/mnt.
	trap "umount /tmp/mnt 2>/dev/null || true" EXIT
	# What a user types: apt-get resolves the dependencies.
	cd /tmp
	apt-get install -y -qq ./cairn_*.deb ./libcairn1_*.deb ./libcairn-dev_*.deb \
		>/tmp/apt.log 2>&1 ||
		{ cat /tmp/apt.log; exit 1; }
	for f in /usr/bin/cairn /usr/sbin/mount.cairn /lib/systemd/system/cairn@.service; do
		[ -e "$f" ] || { echo "missing: $f"; exit 1; }
	done
	set -x
	cairn mkfs /tmp/vol --media emul --log-size 16M --fast-size 64M
	mkdir -p /tmp/mnt
	mount -t cairn /tmp/vol /tmp/mnt -o nofail,_netdev
	mkdir -p /tmp/mnt/demo
	echo "hello from cairn" >/tmp/mnt/demo/hello.txt
	mv /tmp/mnt/demo/hello.txt /tmp/mnt/demo/greeting.txt
	[ "$(cat /tmp/mnt/demo/greeting.txt)" = "hello from cairn" ]
	cairn stat /tmp/mnt
	cairn demo /tmp/mnt
	[ "$(cairn run -- sh -c "echo \$LD_PRELOAD")" = \
		"$(echo /usr/lib/*/cairn/libcairn-preload.so)" ]
	cairn run --mount /tmp/mnt -- sh -c "echo shimmed >/tmp/mnt/demo/shim.txt"
	[ "$(cat /tmp/mnt/demo/shim.txt)" = shimmed ]
	cc -o /tmp/outside /tmp/outside.c $(pkg-config --cflags --libs cairn)
	/tmp/outside /tmp/vol2
	man -w cairn mount.cairn
	umount /tmp/mnt
	cairn fsck /tmp/vol
	apt-get remove -y -qq cairn libcairn-dev libcairn1 >/dev/null
	[ ! -e /usr/bin/cairn ]
'
echo "package-check.sh: the packages install, work and remove in a throw-away root"
