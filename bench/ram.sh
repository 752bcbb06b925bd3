# bench/ram.sh - sourced by the bench scripts: where RAM-backed volumes,
# ext4 images and tmpfs contenders live.
#
# ram_dir SIZE   makes a directory on a tmpfs of its own, mounted with
#                huge=within_size (files mapped with 2 MiB pages), and
#                prints it
# ram_release DIR unmounts and removes it
# ram_ext4 IMG MNT makes a 2 GiB ext4 on a loop device whose image is IMG
#                (in a ram_dir) and mounts it at MNT; its device goes in
#                $ram_loop
# ram_ext4_release MNT unmounts it and frees the loop device
# ram_scratch SIZE sets $work (a temporary directory holding mnt/ and
#                ext4/), $ram (a ram_dir of SIZE) and $vol (where in it the
#                cairn volume goes), mounts a ram_ext4 of $ram/ext4.img at
#                $work/ext4, and at exit undoes all of it, a cairn mount at
#                $work/mnt included
#
# Why not /dev/shm: it maps files with 4 KiB pages, and on a virtual
# machine whose hypervisor shadows the guest's page tables (this one:
# docs/PERFORMANCE.md, "Stores to a mapped file") the first store to each
# 4 KiB page of a mapping costs about 4 us after any change to the
# process's mappings.  An emul volume is such a mapping, written by user
# code, so cairn paid that for every 4 KiB of log it wrote, where the
# kernel's own writes (ext4, tmpfs) never do.  Real persistent memory is
# mapped with 2 MiB pages (DAX); a tmpfs of huge pages is the closer
# stand-in.  Every RAM contender sits on the same tmpfs, so none has a
# medium the others lack.  Without root (no mount) it falls back to
# /dev/shm and says so.

ram_dir() {
	local d
	d=$(mktemp -d /tmp/cairn-ram.XXXXXX)
	if mount -t tmpfs -o "size=$1,huge=within_size,mode=0755" tmpfs "$d" 2>/dev/null; then
		echo "$d"
		return 0
	fi
	rmdir "$d"
	echo "bench: cannot mount a tmpfs of huge pages; using /dev/shm (4 KiB pages)" >&2
	mktemp -d /dev/shm/cairn-ram.XXXXXX
}

ram_release() {
	[ -n "${1:-}" ] && [ -d "$1" ] || return 0
	if mountpoint -q "$1"; then
		umount "$1" 2>/dev/null || umount -l "$1"
		rmdir "$1"
	else
		rm -rf "$1"
	fi
}

ram_ext4() {
	truncate -s 2G "$1"
	ram_loop=$(losetup -f --show "$1")
	mkfs.ext4 -q -F "$ram_loop"
	mount "$ram_loop" "$2"
}

ram_ext4_release() {
	umount "$1" 2>/dev/null || true
	[ -n "${ram_loop:-}" ] && losetup -d "$ram_loop" 2>/dev/null || true
	ram_loop=
}

ram_scratch() {
	work=$(mktemp -d /tmp/cairn-bench.XXXXXX)
	ram=$(ram_dir "$1")
	vol=$ram/vol
	trap ram_scratch_release EXIT
	mkdir -p "$work/ext4" "$work/mnt"
	ram_ext4 "$ram/ext4.img" "$work/ext4"
}

ram_scratch_release() {
	build/cairn umount "$work/mnt" 2>/dev/null || true
	ram_ext4_release "$work/ext4"
	ram_release "$ram"
	rm -rf "$work"
}
