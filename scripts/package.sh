#!/usr/bin/env bash
# Builds the Debian packages of the committed tree and checks them:
#   scripts/package.sh [OUTDIR]      (default: build-deb/)
# 1. dpkg-buildpackage -us -uc -b in a copy of the tree (git archive of
#    HEAD): cairn, libcairn1, libcairn-dev (and their -dbgsym);
# 2. lintian: any error fails;
# 3. a throw-away root: in a mount namespace of its own, an overlay over /
#    whose changes vanish with it, the three packages are installed with
#    apt-get install ./*.deb, and the README's demo runs from the installed
#    paths: mkfs, mount -t cairn (mount.cairn), files written and read,
#    cairn stat, a client process (cairn demo), cairn run, a program built
#    with pkg-config, the man pages, umount.
# Root is needed for step 3.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${1:-build-deb}")
rm -rf "$out"
mkdir -p "$out/src"
git archive --format=tar HEAD | tar -xf - -C "$out/src"
echo "== dpkg-buildpackage (log: $out/build.log)"
if ! (cd "$out/src" && dpkg-buildpackage -us -uc -b) >"$out/build.log" 2>&1; then
	tail -40 "$out/build.log"
	echo "package.sh: dpkg-buildpackage failed" >&2
	exit 1
fi
changes=$(ls "$out"/cairn_*.changes)
echo "== lintian"
lintian --fail-on error --display-info "$changes" 2>&1 | grep -v 'root privileges' || true
lintian --fail-on error "$changes" >/dev/null 2>&1 || {
	echo "package.sh: lintian found errors" >&2
	exit 1
}
echo "== installed in a throw-away root"
scratch=$(mktemp -d /dev/shm/cairn-pkgroot.XXXXXX)
rc=0
unshare -m --propagation private bash scripts/package-check.sh "$out" "$scratch" || rc=$?
rmdir "$scratch"
exit "$rc"
