#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# rustfmt --check over the module (from its crate root) and the host crate,
# with the kernel's .rustfmt.toml rules (edition 2021, defaults).
set -euo pipefail
cd "$(dirname "$0")/.."
rc=0
/usr/bin/rustfmt --check --edition 2021 execmem_rs.rs || rc=1
if [ -f Cargo.toml ]; then
	cargo fmt --check || rc=1
fi
exit $rc
