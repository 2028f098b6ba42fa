#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Build execmem_rs.ko against a test-kernel flavour (or KDIR=).
#
#   scripts/module.sh [base|debug] [extra kbuild args, e.g. CLIPPY=1]
#
# base builds in the repository (execmem_rs.ko next to Kbuild); debug
# builds a copy of the sources in out/debug/, since kbuild writes its
# objects next to the sources.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/scripts/env.sh"
flavour=${1:-base}
shift || true
kdir=${KDIR:-$("$here/scripts/kernel.sh" --kdir "$flavour")}
[ -f "$kdir/Module.symvers" ] || { echo "module: no built kernel in $kdir (run scripts/kernel.sh $flavour)" >&2; exit 1; }
src=$here
if [ "$flavour" != base ]; then
	src=$here/out/$flavour
	mkdir -p "$src"
	# Copy only what changed so kbuild's timestamps stay meaningful.
	(cd "$here" && find Kbuild execmem_rs.rs execmem -type f \( -name Kbuild -o -name '*.rs' \) -print0 |
		xargs -0 -I{} bash -c 'mkdir -p "$(dirname "$0/{}")"; cmp -s "{}" "$0/{}" || cp "{}" "$0/{}"' "$src")
fi
make -s -C "$kdir" M="$src" "${KMAKE_ARGS[@]}" "$@" modules
echo "module: $src/execmem_rs.ko (against $kdir)"
