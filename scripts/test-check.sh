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
bad=0

# tally NAME WANT LOG-TEXT: cargo-tally.sh's output, on one line.
tally() {
	printf '%s\n' "$3" >"$tmp/cargo"
	got=$("$here/scripts/cargo-tally.sh" "$tmp/cargo" | paste -sd'|')
	if [ "$got" = "$2" ]; then echo "ok - $1"; else echo "not ok - $1: got '$got', want '$2'"; bad=1; fi
}
tally "cargo log, all pass" "3 0" $'     Running a (x)\ntest result: ok. 1 passed; 0 failed; 0 ignored\n   Doc-tests c\ntest result: ok. 2 passed; 0 failed; 0 ignored'
tally "cargo log, a crash beside a failure" "4 2|t2|no result from Running b (y) (crashed or killed)" \
	$'     Running a (x)\ntest t2 ... FAILED\ntest result: FAILED. 1 passed; 1 failed; 0 ignored\n     Running b (y)\nthread panicked\n     Running c (z)\ntest result: ok. 3 passed; 0 failed; 0 ignored'
# A test that failed in a binary that then crashed: no result line counts it.
tally "cargo log, a failure then a crash in one binary" "3 2|t3|no result from Running b (y) (crashed or killed)" \
	$'     Running b (y)\ntest t3 ... FAILED\nthread panicked\n     Running c (z)\ntest result: ok. 3 passed; 0 failed; 0 ignored'
mkdir "$tmp/scripts"
cp "$here/Makefile" "$tmp/"
cp "$here/scripts/check.sh" "$here/scripts/check-steps.sh" "$here/scripts/env.sh" "$tmp/scripts/"
printf '#!/bin/sh\necho "deps: apt-get: no such package (test)" >&2\nexit 1\n' >"$tmp/scripts/deps.sh"
chmod +x "$tmp/scripts/deps.sh"
# Run as from a shell, whatever make called this (make check itself does).
out=$(env -u MAKELEVEL -u MAKEFLAGS -u MFLAGS make -s -C "$tmp" check 2>&1)
rc=$?
last=$(grep -Ev '^make(\[[0-9]+\])?: \*\*\* ' <<<"$out" | tail -n 1)
if [ "$rc" != 0 ] && [ "$last" = "0 passed, 1 failed" ]; then
	echo "ok - make check with a failing deps: exit $rc, last line '$last'"
else
	echo "not ok - make check with a failing deps: exit $rc, last line '$last'"
	bad=1
fi
exit $bad
