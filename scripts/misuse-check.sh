#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Misuse of the module's safe API must not build (execmem/test/misuse.rs).
#
#   scripts/misuse-check.sh --list    the cases
#   scripts/misuse-check.sh CASE      build the module with that case: ok
#                                     only if rustc refuses it with the
#                                     error its `/// EXXXX "TEXT":` line
#                                     names (that code alone, and TEXT in
#                                     its message: refused for this reason)
#   scripts/misuse-check.sh none      the control: with no case, it builds
#
# Builds a copy of the sources in out/misuse/ against the base test kernel
# (or KDIR=), with the test harness.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/scripts/env.sh"
cases=$here/execmem/test/misuse.rs

# "CASE<tab>CODE<tab>TEXT" per case, from the last `/// EXXXX "TEXT":` line
# before the case's first `#[cfg(execmem_rs_misuse_CASE)]`.
list() {
	awk '
	match($0, /^\/\/\/ E[0-9][0-9][0-9][0-9] "[^"]+":/) {
		code = substr($0, 5, 5); text = substr($0, 12, RLENGTH - 13)
	}
	match($0, /^#\[cfg\(execmem_rs_misuse_[a-z0-9_]+\)\]$/) {
		c = substr($0, 25, length($0) - 26)
		if (!(c in seen)) { seen[c] = 1; print c "\t" code "\t" text }
	}' "$cases"
}

[ $# = 1 ] || { echo "usage: $0 --list | CASE | none" >&2; exit 2; }
if [ "$1" = --list ]; then list | cut -f1; exit 0; fi
case_=$1 want= text=
if [ "$case_" != none ]; then
	IFS=$'\t' read -r _ want text < <(list | awk -F'\t' -v c="$case_" '$1 == c') || true
	[ -n "$want" ] && [ -n "$text" ] ||
		{ echo "misuse: no case '$case_' with an error code and text in $cases" >&2; exit 2; }
fi

kdir=${KDIR:-$("$here/scripts/kernel.sh" --kdir base)}
[ -f "$kdir/Module.symvers" ] || { echo "misuse: no built kernel in $kdir (run scripts/kernel.sh base)" >&2; exit 1; }
src=$here/out/misuse
copy_sources "$src"
rm -f "$src/execmem_rs.o"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
rc=0
make -s -C "$kdir" M="$src" "${KMAKE_ARGS[@]}" EXECMEM_RS_TEST=y \
	EXECMEM_RS_MISUSE="$([ "$case_" = none ] || echo "$case_")" modules >"$log" 2>&1 || rc=$?

if [ "$case_" = none ]; then
	if [ "$rc" = 0 ]; then echo "misuse: none: ok (builds with no case)"; exit 0; fi
	cat "$log"; echo "misuse: none: FAILED (the harness does not build without a case)"; exit 1
fi
got=$(grep -o '^error\[E[0-9]*\]' "$log" | sed 's/^error\[\(.*\)\]/\1/' | sort -u | tr '\n' ' ' || true)
if [ "$rc" = 0 ]; then
	echo "misuse: $case_: FAILED (compiles; want $want \"$text\")"; exit 1
elif [ "$got" = "$want " ] && grep -qF -- "$text" "$log"; then
	echo "misuse: $case_: ok (refused: $want \"$text\")"; exit 0
else
	grep -A12 '^error' "$log" | head -40
	echo "misuse: $case_: FAILED (errors: ${got:-none with a code}; want $want \"$text\")"; exit 1
fi
