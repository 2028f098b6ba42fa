#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Build execmem_rs.ko against a test-kernel flavour (or KDIR=).
#
#   scripts/module.sh [base|debug|kasan|arm64] [extra kbuild args, e.g. CLIPPY=1]
#
# EXECMEM_RS_TEST=y|n: with or without the test harness (execmem/test/);
# default y for the project's kernels, n with KDIR=.
#
# base builds in the repository (execmem_rs.ko next to Kbuild); debug
# builds a copy of the sources in out/debug/, since kbuild writes its
# objects next to the sources.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/scripts/env.sh"
flavour=${1:-base}
shift || true
kmake_args "$flavour"
kdir=${KDIR:-$("$here/scripts/kernel.sh" --kdir "$flavour")}
[ -f "$kdir/Module.symvers" ] || { echo "module: no built kernel in $kdir (run scripts/kernel.sh $flavour)" >&2; exit 1; }
src=$here
if [ "$flavour" != base ]; then
	src=$here/out/$flavour
	copy_sources "$src"
fi
# The test harness (execmem/test/) is built in for the project's own test
# kernels; against KDIR= only when asked for with EXECMEM_RS_TEST=y.
test=${EXECMEM_RS_TEST:-$([ -n "${KDIR:-}" ] || echo y)}
make -s -C "$kdir" M="$src" "${KMAKE_ARGS[@]}" EXECMEM_RS_TEST="$test" "$@" modules
echo "module: $src/execmem_rs.ko (against $kdir$([ "$test" = y ] && echo ', with the test harness'))"
