#!/usr/bin/env bash
# ab_threads.sh OLD_BENCH NEW_BENCH ROUNDS N THREADS... - two builds of
# bench_append (statically linked: each carries its own engine), T native
# threads appending N x 4 KiB each to their own files, alternating within
# each round, a fresh emul volume (1 GiB log: no digest) per run on the
# tmpfs of 2 MiB pages at /tmp/r.  Prints every run's appends/s.
old=$1 new=$2 rounds=$3 n=$4
shift 4
vol=/tmp/r/abv
for t in "$@"; do
	for r in $(seq 1 "$rounds"); do
		for b in old new; do
			bin=$old
			[ $b = new ] && bin=$new
			rm -rf $vol
			build/cairn mkfs $vol --media emul --log-size 1G --fast-size 2G >/dev/null
			echo "$t $b $("$bin" threads-cairn $vol "$n" "$t" | sed 's/.*ops_s=//')"
		done
	done
done | awk '{ k = $1 " threads, " $2; a[k] = a[k] " " $3 } END { for (k in a) print k ":" a[k] }' | sort
rm -rf $vol
