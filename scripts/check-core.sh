#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Check the shared binpacking core on the host: rustfmt, clippy (with the
# core's deny lints), the tests, and a build of execmem/core alone in a
# #![no_std] crate without std or alloc, as the kernel module compiles it.
set -euo pipefail

cd "$(dirname "$0")/.."
cargo fmt --check
cargo clippy -q -j1 --all-targets -- -D warnings
cargo test -q -j1 --release

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/lib.rs" <<EOT
#![no_std]
#![deny(warnings)]
#[path = "$PWD/execmem/core/mod.rs"]
pub mod execmem_core;
EOT
rustc --edition 2021 --crate-type lib -O --out-dir "$tmp" "$tmp/lib.rs"
echo "check-core: ok"
