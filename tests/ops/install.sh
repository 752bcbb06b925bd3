#!/usr/bin/env bash
# install.sh BUILD_DIR SANITIZED - `cmake --install` of a build into a
# scratch root (DESTDIR), then:
#   - every file the README and dist/install.cmake promise is there;
#   - libcairn.so has the soname libcairn.so.1 and exports exactly the
#     functions of the installed cairn.h, each at a version CAIRN_n;
#   - a program outside the tree builds with `pkg-config --cflags --libs
#     cairn` and runs (makes a volume, writes, remounts, reads back); and
#     again linked with libcairn.a and `pkg-config --static --libs cairn`;
#   - the man pages render without a warning;
#   - the installed `cairn run` finds the installed preload shim.
# shellcheck source=tests/ops/lib.sh
source "$(dirname "$0")/lib.sh"
build=$(realpath "$1")
sanitized=${2:-0}
here=$(dirname "$(realpath "$0")")
root=$(mktemp -d /tmp/cairn-install.XXXXXX)
trap 'rm -rf "$root"' EXIT
DESTDIR=$root cmake --install "$build" >"$root/install.log" 2>&1 ||
	{ cat "$root/install.log"; fail "cmake --install failed"; }

cache() { sed -n "s/^$1:[A-Z]*=//p" "$build/CMakeCache.txt"; }
prefix=$(cache CMAKE_INSTALL_PREFIX)
libdir=$(cache CMAKE_INSTALL_LIBDIR)
[[ $libdir == /* ]] || libdir=$prefix/$libdir
P=$root$prefix
L=$root$libdir

for f in "$P/bin/cairn" "$P/sbin/mount.cairn" "$L/libcairn.so.1" "$L/libcairn.so" \
	"$L/libcairn.a" "$L/cairn/libcairn-preload.so" "$L/pkgconfig/cairn.pc" \
	"$P/include/cairn.h" "$P/share/man/man1/cairn.1" "$P/share/man/man8/mount.cairn.8" \
	"$P/share/bash-completion/completions/cairn" "$P/lib/systemd/system/cairn@.service"; do
	[ -e "$f" ] || fail "not installed: ${f#"$root"}"
done
[ "$(readlink "$P/sbin/mount.cairn")" = ../bin/cairn ] ||
	fail "mount.cairn links to '$(readlink "$P/sbin/mount.cairn")', not ../bin/cairn"
[ -x "$P/sbin/mount.cairn" ] || fail "mount.cairn does not lead to the command"

soname=$(readelf -d "$L/libcairn.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = libcairn.so.1 ] || fail "soname is '$soname', not libcairn.so.1"
declared=$(grep -o '\bcairn_[a-z0-9_]*(' "$P/include/cairn.h" | tr -d '(' | sort -u)
# Each function at a version node CAIRN_n (the nodes themselves are
# exported as absolute symbols named so).
exported=$(nm -D --defined-only "$L/libcairn.so" | awk '$3 !~ /^CAIRN_[0-9]+$/ { print $3 }' | sort)
unversioned=$(echo "$exported" | grep -Ev '@@CAIRN_[0-9]+$' || true)
[ -z "$unversioned" ] || fail "exported without a version CAIRN_n: $unversioned"
[ "$(echo "$exported" | grep -c '@@CAIRN_1$')" -ge 40 ] || fail "the first ABI (CAIRN_1) is not there"
if [ "$(echo "$exported" | sed 's/@@CAIRN_[0-9]*$//')" != "$declared" ]; then
	diff <(echo "$declared") <(echo "$exported" | sed 's/@@CAIRN_[0-9]*$//') >&2 || true
	fail "libcairn.so's exports differ from cairn.h's functions (< header, > library)"
fi
echo "[install] soname $soname; $(echo "$exported" | wc -l) functions, each at a version CAIRN_n"

export PKG_CONFIG_PATH=$L/pkgconfig PKG_CONFIG_SYSROOT_DIR=$root
flags=()
[ "$sanitized" = 1 ] && flags=(-fsanitize=address,undefined)
# shellcheck disable=SC2046 # pkg-config's words are meant to split
cc "${flags[@]}" -o "$root/outside" "$here/outside.c" $(pkg-config --cflags --libs cairn) ||
	fail "cannot build a program with pkg-config --cflags --libs cairn"
# (Outputs taken whole before grep -q: an early exit of grep would kill the
# writer with SIGPIPE, and pipefail would take that for a failure.)
needed=$(readelf -d "$root/outside")
grep -q 'NEEDED.*\[libcairn.so.1\]' <<<"$needed" || fail "outside does not need libcairn.so.1"
grep -q "libcairn.so.1 => $L/" <<<"$(LD_LIBRARY_PATH=$L ldd "$root/outside")" ||
	fail "outside does not find the installed libcairn.so.1"
LD_LIBRARY_PATH=$L "$root/outside" "$root/vol-shared" || fail "outside (shared) failed"
static_libs=$(pkg-config --static --libs cairn | sed 's/-L[^ ]*//g; s/-lcairn\b//')
# shellcheck disable=SC2086
cc "${flags[@]}" -o "$root/outside-static" "$here/outside.c" $(pkg-config --cflags cairn) \
	"$L/libcairn.a" $static_libs || fail "cannot link libcairn.a with pkg-config --static --libs"
! grep -q libcairn <<<"$(ldd "$root/outside-static")" || fail "outside-static still needs libcairn.so"
"$root/outside-static" "$root/vol-static" || fail "outside (static) failed"

for m in "$P/share/man/man1/cairn.1" "$P/share/man/man8/mount.cairn.8"; do
	warnings=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$m" 2>&1 >/dev/null)
	[ -z "$warnings" ] || fail "${m#"$root"} renders with warnings: $warnings"
done

shim=$(env -u CAIRN_PRELOAD "$P/bin/cairn" run -- sh -c 'echo "$LD_PRELOAD"')
[ "$shim" = "$L/cairn/libcairn-preload.so" ] || fail "installed cairn run preloads '$shim'"
echo "[install] passed"
