#!/usr/bin/env bash
# Which calls of a program reach the FUSE mount, and how many requests
# each makes: the kernel's fuse:fuse_request_send tracepoint, recorded with
# call chains while a workload runs through the mount and under
# `cairn run` (the shim), counted per FUSE opcode and per system call that
# sent it, divided by the workload's operations.  A request is a round
# trip to the daemon (docs/PERFORMANCE.md says what one costs here); this
# is the list the shim must shorten.  Also the mean time from each
# request's sending to its end, per opcode.
#   sqlite   bench_fs sqlite, rollback journal (DELETE), synchronous=FULL:
#            N transactions; per transaction
#   varmail  bench_fs varmail for N/1000 seconds; per operation
#   postmark postmark (no fsync; stdio), N/2 files and N transactions, the
#            sizes bench/run uses; per file created, read, appended or
#            deleted
# A request whose recorded call chain shows no system call is counted as
# "(no system call in the chain)".
# Usage: bench/fuse_requests.sh [sqlite|varmail|postmark] [N]   (defaults sqlite,
#        2000); as root, with perf (linux-perf) installed.
set -euo pipefail
cd "$(dirname "$0")/.."
w=${1:-sqlite}
n=${2:-2000}
[ "$(id -u)" -eq 0 ] || { echo "bench/fuse_requests.sh: needs root (FUSE, tracepoints)" >&2; exit 1; }
command -v perf >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq linux-perf >/dev/null
perf list 2>/dev/null | grep fuse:fuse_request_send >/dev/null ||
	{ echo "bench/fuse_requests.sh: this kernel has no fuse:fuse_request_send tracepoint" >&2; exit 1; }
[ -x build/bench/bench_fs ] && [ -x build/bench/bench_wakeup ] && [ -x build/libcairn-preload.so ] ||
	scripts/build.sh >/dev/null
[ "$w" != postmark ] || command -v postmark >/dev/null ||
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postmark >/dev/null
cairn=$PWD/build/cairn
source bench/ram.sh
root=$(ram_dir 8G)
cleanup() {
	set +e
	"$cairn" umount "$root/mnt" >/dev/null 2>&1 || umount -l "$root/mnt" 2>/dev/null
	ram_release "$root"
}
trap cleanup EXIT
mkdir -p "$root/mnt"
"$cairn" mkfs "$root/vol" --media emul --log-size 512M --fast-size 4G >/dev/null
"$cairn" mount "$root/vol" "$root/mnt"

# record HOW: the workload's operations, its requests in $root/HOW.txt.
record() {
	local how=$1 d=$root/mnt/$1 run=() args ops
	mkdir -p "$d"
	[ "$how" = shim ] && run=("$cairn" run --mount "$root/mnt" --)
	case $w in
	sqlite) args=(build/bench/bench_fs --dir "$d" sqlite --journal delete --n "$n") ;;
	varmail) args=(build/bench/bench_fs --dir "$d" varmail --seconds $((n / 1000 > 0 ? n / 1000 : 1))) ;;
	postmark)
		printf 'set location %s\nset number %s\nset transactions %s\nset size 500 16384\nset seed 42\nrun\nquit\n' \
			"$d" $((n / 2)) "$n" >"$root/postmark.cfg"
		args=(postmark "$root/postmark.cfg") ;;
	*) echo "bench/fuse_requests.sh: unknown workload $w (sqlite, varmail, postmark)" >&2; exit 2 ;;
	esac
	perf record -q -g -e fuse:fuse_request_send -e fuse:fuse_request_end -a -o "$root/$how.data" -- \
		"${run[@]}" "${args[@]}" >"$root/$how.out" 2>/dev/null
	perf script -i "$root/$how.data" -F event,trace,ip,sym 2>/dev/null >"$root/$how.txt"
	perf script -i "$root/$how.data" -F time,event,trace 2>/dev/null >"$root/$how.times"
	case $w in
	sqlite) ops=$n ;;
	varmail) ops=$(awk -F, '$1 == "varmail" && $2 == "ops/s" { r = $3 } END { print r }' "$root/$how.out")
		ops=$(awk -v r="$ops" -v s=$((n / 1000 > 0 ? n / 1000 : 1)) 'BEGIN { printf "%d", r * s }') ;;
	postmark) ops=$(awk '/^\t[0-9]+ (created|read|appended|deleted) /{ s += $1 } END { print s + 0 }' "$root/$how.out") ;;
	esac
	echo "$ops"
}

# count FILE OPS HOW: requests per operation, by opcode and system call.
count() {
	awk -v ops="$2" -v how="$3" '
		function flush() {
			if (op != "") { k = op " " (sc == "" ? "(no system call in the chain)" : sc); c[k]++; all++ }
			op = ""; sc = ""
		}
		/fuse_request_end/ { flush(); next }
		/opcode [0-9]+ \(/ { flush(); match($0, /\(FUSE_[A-Z_]+\)/); op = substr($0, RSTART + 6, RLENGTH - 7); next }
		op != "" && sc == "" && $NF ~ /^(__x64_sys_|__do_sys_|__se_sys_)/ {
			sc = $NF; sub(/^(__x64_sys_|__do_sys_|__se_sys_)/, "", sc) }
		END { flush()
			printf "%s: %.2f requests per operation (%d operations)\n", how, all / ops, ops
			for (k in c) printf "  %7.2f  %s\n", c[k] / ops, k }' "$1" | { read -r h; echo "$h"; sort -rn; }
}

# service FILE: the mean time from a request's sending to its end (the
# daemon's answer reaching the kernel), per opcode; the caller's wake-up
# after that is not in it.
service() {
	awk '{ t = $1; sub(/:$/, "", t); match($0, /req [0-9]+/); r = substr($0, RSTART + 4, RLENGTH - 4) }
		/fuse_request_send/ { match($0, /\(FUSE_[A-Z_]+\)/); op[r] = substr($0, RSTART + 6, RLENGTH - 7); at[r] = t }
		/fuse_request_end/ && (r in at) { o = op[r]; sum[o] += (t - at[r]) * 1e6; n[o]++; delete at[r] }
		END { for (o in n) printf "  %7.1f us  %s (%d)\n", sum[o] / n[o], o, n[o] }' "$1" | sort -rn
}

echo "# $(date -u +%F) $(nproc) cores, $(uname -r); workload $w, n=$n; commit $(git rev-parse --short HEAD)"
# The least each request costs its caller here, before the daemon's work.
echo "# $(build/bench/bench_wakeup)"
for how in fuse shim; do
	ops=$(record "$how")
	echo "$how: $(grep -E '^(sqlite|varmail)|seconds total' "$root/$how.out" | head -2 | tr '\n' ' ')"
	count "$root/$how.txt" "$ops" "$how"
	echo "$how: mean time from send to end, per opcode (requests)"
	service "$root/$how.times"
done
