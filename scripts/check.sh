#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The README's test command (`make check`): host unit/property tests,
# rustfmt, the module built with clippy, and the kselftests in the VM.
# Ends with one line "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh

passed=0 failed=0
log=$(mktemp -d "${TMPDIR:-/tmp}/execmem_rs-check.XXXXXX")
trap 'rm -rf "$log"' EXIT

step() { echo; echo "=== $*"; }
count() { # count NAME STATUS: one pass or one failure
	if [ "$2" = 0 ]; then passed=$((passed + 1)); echo "check: $1: ok"
	else failed=$((failed + 1)); echo "check: $1: FAILED"; fi
}

if [ -f Cargo.toml ]; then
	step "host: cargo test (the binpacking core, compiled from the module's own files)"
	cargo test --release 2>&1 | tee "$log/cargo"
	rc=${PIPESTATUS[0]}
	p=$(sed -n 's/^test result: .* \([0-9]*\) passed; \([0-9]*\) failed.*/\1/p' "$log/cargo" | paste -sd+ | bc)
	f=$(sed -n 's/^test result: .* \([0-9]*\) passed; \([0-9]*\) failed.*/\2/p' "$log/cargo" | paste -sd+ | bc)
	passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0}))
	# A build failure or a crash reports no "test result" line: count it.
	[ "$rc" = 0 ] || [ "${f:-0}" != 0 ] || count "cargo test" "$rc"
fi

if [ -f Cargo.toml ]; then
	step "host: cargo clippy --all-targets (the core's deny lints: no indexing, unwrap, unchecked arithmetic)"
	cargo clippy -q --all-targets -- -D warnings
	count "cargo clippy" $?
fi

step "rustfmt --check"
scripts/fmt-check.sh
count rustfmt $?

step "module build with CLIPPY=1 (warnings fail)"
make -s clippy 2>&1 | tee "$log/clippy"
rc=${PIPESTATUS[0]}
if [ "$rc" = 0 ] && grep -q '^warning\|^error' "$log/clippy"; then rc=1; fi
count "clippy build" "$rc"

step "module build"
make -s module
count "module build" $?

step "VM: kselftests on the test kernel"
selftests/run_vm.sh selftests/execmem_rs.sh selftests/ctl_abi.py 2>&1 | tee "$log/vm"
rc=${PIPESTATUS[0]}
line=$(grep '^vm: [0-9]*s; ' "$log/vm" | tail -n1)
p=$(sed -n 's/.*; \([0-9]*\) passed, \([0-9]*\) failed.*/\1/p' <<<"$line")
f=$(sed -n 's/.*; \([0-9]*\) passed, \([0-9]*\) failed.*/\2/p' <<<"$line")
passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0}))
# The run as a whole (boot, insmod, rmmod, no splat) is one more check.
count "VM run (boot, load, unload, no splat)" "$rc"

echo
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
