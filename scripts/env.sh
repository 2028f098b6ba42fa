# SPDX-License-Identifier: GPL-2.0
#
# Sourced by the project's scripts: where the cache and tools live and the
# toolchain every kernel/module build uses.
CACHE=${EXECMEM_RS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/execmem_rs}
TOOLS=$CACHE/tools
BINDGEN=$TOOLS/bin/bindgen
VNG=$TOOLS/venv/bin/vng
# rustup's toolchain has no rust-src: the kernel is built with Debian's rustc-web.
KMAKE_ARGS=(LLVM=-19 RUSTC=/usr/bin/rustc HOSTRUSTC=/usr/bin/rustc
	    CLIPPY_DRIVER=/usr/bin/clippy-driver RUSTFMT=/usr/bin/rustfmt
	    "BINDGEN=$BINDGEN")
# The arm64 flavour is the same build for ARCH=arm64 (cross-built by clang).
kmake_args() {
	[ "${1:-}" != arm64 ] || KMAKE_ARGS+=(ARCH=arm64)
}
# vng, and rustup's cargo (host tests, bindgen's build) even where a login
# profile did not put it on PATH (CI).
PATH=$TOOLS/venv/bin:$PATH
[ -d "$HOME/.cargo/bin" ] && PATH=$HOME/.cargo/bin:$PATH
export PATH
# copy_sources DIR: the module's sources (Kbuild, *.rs) copied into DIR, for
# a build outside the repository (kbuild writes its objects next to the
# sources). Only what changed is copied, so kbuild's timestamps stay
# meaningful.
copy_sources() {
	mkdir -p "$1"
	(cd "$(dirname "${BASH_SOURCE[0]}")/.." && find Kbuild execmem_rs.rs execmem -type f \( -name Kbuild -o -name '*.rs' \) -print0 |
		xargs -0 -I{} bash -c 'mkdir -p "$(dirname "$0/{}")"; cmp -s "{}" "$0/{}" || cp "{}" "$0/{}"' "$1")
}
