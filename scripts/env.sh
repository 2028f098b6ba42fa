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
PATH=$TOOLS/venv/bin:$PATH
