#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Host test of the test kernel's cache key (scripts/kernel.sh): every make
# argument the kernels are built with (KMAKE_ARGS, scripts/env.sh) is part
# of it, so that a changed argument builds a new kernel instead of reusing
# one its modules would not match. Runs `kernel.sh --kdir` (the key only,
# no build) from scratch copies of the scripts whose env.sh differs, and
# compares the directories with the real scripts' own, for each flavour.
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bad=0

# copy NAME SED-EXPRESSION: the scripts with env.sh edited by the expression.
copy() {
	mkdir -p "$tmp/$1/scripts"
	cp "$here/scripts/kernel.sh" "$tmp/$1/scripts/"
	sed "$2" "$here/scripts/env.sh" >"$tmp/$1/scripts/env.sh"
	ln -s "$here/kernel" "$tmp/$1/kernel"
}
copy same ''
# One more make argument, as a maintainer might add to env.sh.
copy extra 's/^KMAKE_ARGS=(LLVM=-19 /KMAKE_ARGS=(LLVM=-19 KCFLAGS=-Wno-test-key /'
# Another LLVM (not installed here: its version reads as missing).
copy llvm 's/^KMAKE_ARGS=(LLVM=-19 /KMAKE_ARGS=(LLVM=-18 /'
cmp -s "$here/scripts/env.sh" "$tmp/extra/scripts/env.sh" && { echo "not ok - the env.sh edit did not apply"; exit 1; }

for f in base arm64 debug kasan; do
	real=$("$here/scripts/kernel.sh" --kdir "$f")
	for c in same extra llvm; do
		got=$("$tmp/$c/scripts/kernel.sh" --kdir "$f" 2>/dev/null)
		if [ "$c" = same ]; then want=same; op='='; else want=different; op='!='; fi
		if [ -n "$got" ] && [ "$got" $op "$real" ]; then
			echo "ok - $f, env.sh $c: $want kernel directory"
		else
			echo "not ok - $f, env.sh $c: got '${got#"$HOME"/}', real '${real#"$HOME"/}', want $want"
			bad=1
		fi
	done
done
exit $bad
