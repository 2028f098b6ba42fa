#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Host test of `make check` itself: when scripts/deps.sh cannot install
# what the rest needs, the run still ends with its "N passed, N failed"
# line (0 passed, 1 failed; make's own "*** ... Error" line, which follows
# any failed recipe, aside) and a non-zero status. Runs the project's Makefile and check.sh in a scratch copy whose
# deps.sh fails.
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/scripts"
cp "$here/Makefile" "$tmp/"
cp "$here/scripts/check.sh" "$here/scripts/env.sh" "$tmp/scripts/"
printf '#!/bin/sh\necho "deps: apt-get: no such package (test)" >&2\nexit 1\n' >"$tmp/scripts/deps.sh"
chmod +x "$tmp/scripts/deps.sh"
out=$(make -s -C "$tmp" check 2>&1)
rc=$?
last=$(grep -v '^make: \*\*\* ' <<<"$out" | tail -n 1)
if [ "$rc" != 0 ] && [ "$last" = "0 passed, 1 failed" ]; then
	echo "ok - make check with a failing deps: exit $rc, last line '$last'"
else
	echo "not ok - make check with a failing deps: exit $rc, last line '$last'"
	exit 1
fi
