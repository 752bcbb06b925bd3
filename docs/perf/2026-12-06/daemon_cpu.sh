#!/usr/bin/env bash
# The daemon's processor time per client record in the apart regime (a
# 1 GiB log, no digest): W client processes of `cairn mount`, N appends
# each; the daemon's utime + stime (all its threads, those that ended
# included) over the run, from /proc/PID/stat, in ticks of 10 ms.
# Usage: daemon_cpu.sh W N   (as root, from the tree; N*W at most 120000)
set -euo pipefail
w=${1:-2} n=${2:-20000}
source bench/ram.sh
source bench/writers.sh
ram_scratch 8G
build/cairn mkfs "$vol" --media emul --log-size 1G --fast-size 4G >/dev/null
build/cairn mount "$vol" "$work/mnt"
pid=$(pgrep -f "cairn mount $vol" | head -1)
a=$(awk '{print $14+$15}' "/proc/$pid/stat")
t0=$(date +%s%N)
ops=$(parallel "$w" attach "$work/mnt" "$n")
t1=$(date +%s%N)
b=$(awk '{print $14+$15}' "/proc/$pid/stat")
echo "w=$w ops_s=$ops wall_ms=$(((t1 - t0) / 1000000)) daemon_cpu_ms=$(((b - a) * 10))" \
	"daemon_us_per_record=$(echo "($b-$a)*10000/($w*$n)" | bc -l | cut -c1-5)"
build/cairn umount "$work/mnt"
