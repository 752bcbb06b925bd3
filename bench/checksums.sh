#!/usr/bin/env bash
# The cost of data checksums, side by side in one run: bench_fs micro
# (durable 4 KiB append, sequential read, warm random 4 KiB read) through
# the native API on emul volumes, with this tree's build and with a build
# of BASELINE (a commit before checksums), rounds interleaved so both see
# the same machine.  Prints per-round results and the medians.
# Usage: bench/checksums.sh BASELINE [ROUNDS] [SEQ_MIB]   (defaults 5, 512)
set -euo pipefail
cd "$(dirname "$0")/.."
base=${1:?usage: bench/checksums.sh BASELINE [ROUNDS] [SEQ_MIB]}
rounds=${2:-5}
seq_mib=${3:-512}
work=$(mktemp -d /tmp/cairn-sums-bench.XXXXXX)
source bench/ram.sh
ram=$(ram_dir 8G)
cleanup() {
	git worktree remove --force "$work/base" 2>/dev/null || true
	ram_release "$ram"
	rm -rf "$work"
}
trap cleanup EXIT
[ -x build/bench/bench_fs ] || scripts/build.sh >/dev/null
git worktree add --detach "$work/base" "$base" >/dev/null 2>&1
cmake -S "$work/base" -B "$work/base/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$work/base/build" -j"$(nproc)" --target cairn-cli bench_fs >/dev/null

run() { # name tree
	local vol=$ram/vol-$1
	rm -rf "$vol"
	"$2/build/cairn" mkfs "$vol" --media emul --log-size 256M --fast-size 2G >/dev/null
	"$2/build/bench/bench_fs" --cairn "$vol" micro --n 20000 --meta 100 --seq "$seq_mib" \
		--cap 10 2>/dev/null | grep -E '^(append_4k|seqread|randread_4k)' | sed "s/^/$1,/"
	rm -rf "$vol"
}
echo "# $(date -u +%F) $(nproc) cores; baseline $(git rev-parse --short "$base"), checksums $(git rev-parse --short HEAD); $rounds rounds, seq $seq_mib MiB"
for r in $(seq 1 "$rounds"); do
	run baseline "$work/base" | sed "s/^/round=$r,/"
	run checksums . | sed "s/^/round=$r,/"
done | tee "$work/results.csv"
echo "# medians over rounds: metric unit baseline checksums ratio"
awk -F, '{ split($1, r, "="); key = $3 "," $4; v[$2, key, ++n[$2, key]] = $5; keys[key] = 1 }
	function median(who, key,   k, m, a, i, j, t) {
		m = n[who, key]; for (i = 1; i <= m; i++) a[i] = v[who, key, i]
		for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
		return m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2 }
	END { for (k in keys) { b = median("baseline", k); c = median("checksums", k)
		printf "%s %.3f %.3f %.3f\n", k, b, c, b ? c / b : 0 } }' "$work/results.csv" | sort
