#!/usr/bin/env bash
# P client processes (bench_append attach) on a fresh emul volume served
# by `cairn mount`, N appends of 4 KiB each: aggregate appends/s over the
# appends' window, the daemon's and the clients' CPU time, and the share
# of the two processors busy meanwhile (/proc/stat).  LOG: the volume's
# log (256M: the digest runs).  Usage: cpu.sh N P, as root.
set -euo pipefail
B=${B:?the build to run}; n=${1:-40000}; P=${2:-1}; LOG=${LOG:-256M}
vol=/tmp/r/cvol; mnt=/tmp/p/mnt; mkdir -p $mnt; rm -rf $vol
$B/cairn mkfs $vol --media emul --log-size $LOG --fast-size 3G >/dev/null
$B/cairn mount $vol $mnt
pid=$(pgrep -f "cairn mount $vol" | head -1)
tick=$(getconf CLK_TCK)
d0=$(awk '{print $14+$15}' /proc/$pid/stat)
s0=$(awk '/^cpu /{print $2+$3+$4+$7+$8, $5+$6}' /proc/stat)
t0=$(date +%s.%N)
out=$(mktemp)
for i in $(seq 1 $P); do /usr/bin/time -f "client_cpu=%U+%S" $B/bench/bench_append attach $mnt $n >>$out 2>&1 & done; wait
t1=$(date +%s.%N)
d1=$(awk '{print $14+$15}' /proc/$pid/stat)
s1=$(awk '/^cpu /{print $2+$3+$4+$7+$8, $5+$6}' /proc/stat)
ops=$(awk -v p=$P -v n=$n '{ for (i = 1; i <= NF; i++) { split($i, kv, "=")
	         if (kv[1] == "from_us" && (!a || kv[2] < a)) a = kv[2]
	         if (kv[1] == "to_us" && kv[2] > b) b = kv[2] } }
	     END { printf "%.0f", p * n / ((b - a) / 1e6) }' $out)
ccpu=$(grep -o "client_cpu=[0-9.+]*" $out | sed 's/client_cpu=//' | paste -sd+ | bc 2>/dev/null || echo 0)
echo "P=$P n=$n log=$LOG ops_s=$ops wall=$(echo "$t1-$t0"|bc) daemon_cpu_s=$(echo "($d1-$d0)/$tick"|bc -l|cut -c1-5) clients_cpu_s=$ccpu busy_frac=$(echo "$s0 $s1" | awk '{b=$3-$1; i=$4-$2; printf "%.2f", b/(b+i)}') daemon_us_per_append=$(echo "($d1-$d0)/$tick*1000000/($P*$n)"|bc -l|cut -c1-5) client_us_per_append=$(echo "$ccpu*1000000/($P*$n)"|bc -l|cut -c1-5)"
rm -f $out
$B/cairn umount $mnt; rm -rf $vol
