# bench/writers.sh - sourced by the bench scripts that run several writer
# processes at once.
#
# parallel P MODE PATH N  runs P processes of `build/bench/bench_append
#                MODE PATH N` at once (each to its own file) and prints
#                their aggregate appends a second: P * N over the span from
#                the first one's first timed append to the last one's last
#                (each reports its window on the shared monotonic clock),
#                so that the processes' start and end (attach or open, and
#                close, unlink and detach) are not counted as appending;
#                "failed" if one did not report.  Its scratch files go in
#                $work.

parallel() {
	local p=$1 mode=$2 path=$3 count=$4 out
	out=$(mktemp "$work/parallel.XXXXXX")
	for _ in $(seq 1 "$p"); do build/bench/bench_append "$mode" "$path" "$count" >>"$out" & done
	wait
	awk -v p="$p" -v n="$count" '{ for (i = 1; i <= NF; i++) { split($i, kv, "=")
	         if (kv[1] == "from_us" && (!a || kv[2] < a)) a = kv[2]
	         if (kv[1] == "to_us" && kv[2] > b) b = kv[2] } ; k++ }
	     END { if (k != p || b <= a) { print "failed"; exit 1 }
	           printf "%.0f", p * n / ((b - a) / 1e6) }' "$out"
	rm -f "$out"
}
