#!/usr/bin/env bash
# The README's first command: install what is needed, build, create the
# default volume if missing, mount it at the default mount point, and show
# cairn at work there.  The volume stays mounted; the last line says how to
# unmount it.
#   CAIRN_VOLUME  volume directory (default: ~/.cairn/default)
#   CAIRN_MOUNT   mount point (default: ~/cairn)
#   CAIRN_MEDIA   media of a new volume: file (default), emul or pmem
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh
vol=${CAIRN_VOLUME:-$HOME/.cairn/default}
mnt=${CAIRN_MOUNT:-$HOME/cairn}
if [ ! -f "$vol/cairn.volume" ]; then
	mkdir -p "$(dirname "$vol")"
	build/cairn mkfs "$vol" --media "${CAIRN_MEDIA:-file}" --log-size 64M --fast-size 256M
fi
mkdir -p "$mnt"
if ! awk -v m="$(realpath "$mnt")" '$2 == m && $3 == "fuse.cairn" { f = 1 } END { exit !f }' /proc/self/mounts; then
	build/cairn mount "$vol" "$mnt"
fi
echo "cairn: $vol is mounted at $mnt"
echo "+ every call below is durable when it returns (no fsync):"
(
	set -x
	mkdir -p "$mnt/demo"
	echo "hello from cairn" >"$mnt/demo/hello.txt"
	mv "$mnt/demo/hello.txt" "$mnt/demo/greeting.txt"
	cat "$mnt/demo/greeting.txt"
	ls -l "$mnt/demo"
	df -h "$mnt"
)
build/cairn stat "$mnt"
echo "+ another process uses the same volume at once, through the daemon (cairn_attach):"
build/cairn demo "$mnt"
ls "$mnt/demo"
echo "cairn: unmount with: build/cairn umount $mnt"
