#!/usr/bin/env bash
# Installs the Debian packages cairn builds and tests with (root, or sudo).
set -euo pipefail
pkgs=(build-essential cmake pkg-config clang libclang-rt-14-dev
      libpmem-dev libxxhash-dev libbsd-dev uuid-dev libcmocka-dev
      libfuse3-dev fuse3 liburing-dev libsystemd-dev e2fsprogs util-linux
      systemd debhelper dpkg-dev fakeroot lintian man-db curl strace
      prometheus-node-exporter
      sqlite3 git tar make gcc attr redis-server postgresql postgresql-contrib)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq "${missing[@]}" >/dev/null
