#!/usr/bin/env bash
# The README's first command: install what is needed, build, create the
# default volume if missing, and show cairn working on it.
#   CAIRN_VOLUME  volume directory (default: ~/.cairn/default)
#   CAIRN_MEDIA   media of a new volume: file (default), emul or pmem
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh
vol=${CAIRN_VOLUME:-$HOME/.cairn/default}
if [ ! -f "$vol/cairn.volume" ]; then
	mkdir -p "$(dirname "$vol")"
	build/cairn mkfs "$vol" --media "${CAIRN_MEDIA:-file}" --log-size 64M --fast-size 256M
fi
build/cairn demo "$vol"
build/cairn stat "$vol"
