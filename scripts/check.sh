#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The README's test command (`make check`): host unit/property tests,
# rustfmt, the module built with clippy, and the kselftests in the VM.
# Ends with one line "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
# The VM tests drive the test harness's debugfs files (execmem/test/).
export EXECMEM_RS_TEST=y

. scripts/check-steps.sh
steps_begin

# Everything else needs what deps installs: if it cannot, say so in the
# count and stop (scripts/test-check.sh).
step "deps: the toolchain, kernel source, virtme-ng and QEMU (scripts/deps.sh)"
scripts/deps.sh
rc=$?
count deps "$rc"
if [ "$rc" != 0 ]; then
	echo
	echo "check: failed: deps (nothing else can run)"
	echo "$passed passed, $failed failed"
	exit 1
fi

step "host: make check's own tallies: its last line when deps fail, cargo test crashes counted"
scripts/test-check.sh
count "check summary when deps fail" $?

step "host: the test kernels' cache key follows every make argument they are built with"
scripts/test-kernel-key.sh
count "kernel cache key" $?

if [ -f Cargo.toml ]; then
	step "host: cargo test (the binpacking core, compiled from the module's own files)"
	# Every test binary runs and is counted, whichever fails.
	cargo test --release --no-fail-fast 2>&1 | tee "$log/cargo"
	rc=${PIPESTATUS[0]}
	# Failed tests and test binaries that crashed, each counted and named.
	{ read -r p f; while read -r t; do failures+=("cargo test: $t"); done; } \
		< <(scripts/cargo-tally.sh "$log/cargo")
	passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0}))
	# A build failure reports no test at all: count it.
	[ "$rc" = 0 ] || [ "${f:-0}" != 0 ] || count "cargo test" "$rc"
fi

if [ -f Cargo.toml ]; then
	step "host: cargo clippy --all-targets (the core's deny lints: no indexing, unwrap, unchecked arithmetic)"
	cargo clippy -q --all-targets -- -D warnings
	count "cargo clippy" $?
fi

step "host: the VM runner's verdict on canned consoles (a skip is not a pass)"
scripts/test-verdict.sh
count "runner verdict" $?

step "host: the BPF JIT bench compares the same programs on both sides"
python3 selftests/bpf_bench.py --check-schedule
count "bpf bench schedule" $?

step "reST docs render without warnings (docutils)"
scripts/doc-check.sh
count "docs render" $?

step "rustfmt --check"
scripts/fmt-check.sh
count rustfmt $?

step "module build with CLIPPY=1 (warnings fail)"
make -s clippy 2>&1 | tee "$log/clippy"
rc=${PIPESTATUS[0]}
if [ "$rc" = 0 ] && grep -q '^warning\|^error' "$log/clippy"; then rc=1; fi
count "clippy build" "$rc"

step "module build without the test harness (as a plain make KDIR= builds it), CLIPPY=1"
rm -f execmem_rs.o
EXECMEM_RS_TEST=n scripts/module.sh base CLIPPY=1 2>&1 | tee "$log/bare"
rc=${PIPESTATUS[0]}
if [ "$rc" = 0 ] && grep -q '^warning\|^error' "$log/bare"; then rc=1; fi
# The stress runner's thread name is the harness's; a bare build has none.
if [ "$rc" = 0 ] && grep -aq execmem_stress execmem_rs.ko; then rc=1; echo "check: the test harness is in a bare build"; fi
count "module build without the test harness" "$rc"

step "module build"
rm -f execmem_rs.o
make -s module
count "module build" $?

step "misuse of the safe API does not build, each case for its own reason (scripts/misuse-check.sh)"
cases=$(scripts/misuse-check.sh --list)
[ -n "$cases" ] || count "misuse cases listed" 1
for c in none $cases; do
	scripts/misuse-check.sh "$c"
	count "misuse: $c" $?
done

step "host: an aborted VM run (TERM, Ctrl-C), and an aborted make check in one, take their VM with them"
scripts/test-vm-abort.sh base
count "aborted VM run leaves no VM" $?

# The hardening checks first: direct-map split counters only move on 2 MiB
# entries nobody split yet, so they want a fresh VM.
vm_step "kselftests, fuzz and stress on the test kernel" \
	selftests/hardening.py selftests/execmem_rs.sh selftests/ctl_abi.py selftests/exec_policy.py \
	selftests/ctl_fuzz.py selftests/stress.sh
# A freshly loaded module: pack slots freed by earlier tests are reused
# last-freed first, which changes placement, so the byte-exact comparison
# with the host's replay (a fresh engine) wants a module nobody used yet.
vm_step "the kernel bench's module-trace replay on a fresh module" selftests/bench_replay.py
step "host: the kernel bench's module-trace replay maps what the host replay maps, phase by phase"
scripts/replay-compare.sh "$vmlog"
count "module-trace replay: kernel = host" $?
# kernel.modules_disabled=1 cannot be undone, not even to unload the module.
vm_step "exec refused once module loading is disabled" --no-unload \
	"selftests/exec_policy.py --modules-disabled"
# More memory than global_cap, so that the caps, not memory, refuse.
vm_step "resource bounds: session and global caps, another module still loads" --memory 2G \
	selftests/limits.py
vm_step "fault injection (failslab, fail_page_alloc, fail-nth)" --append slab_nomerge --injected-alloc-failures \
	selftests/fault_inject.py
# The kernel's own BPF JIT and kprobes served by execmem_rs, judged by the
# kernel's own test suites. The XDP dispatcher's image and kprobes' last
# insn page are kept for ever, so that run cannot unload the module.
vm_step "the kernel's BPF JIT served: test_bpf stock vs served, lifecycle" --memory 2G \
	"selftests/consumers.py bpf"
vm_step "kprobes served: the kprobes KUnit suite; what the kernel keeps pins the module" --no-unload \
	"selftests/consumers.py xdp" "selftests/consumers.py kprobes"

if [ -n "${KDIR:-}" ]; then
	echo
	echo "=== arm64, debug and kasan kernels: not run (KDIR=$KDIR given; those flavours are the project's own kernels)"
	skipped+=("arm64, debug and kasan kernels (KDIR= given)")
else
	# The same engine, ABI and tests on a second architecture: BRK fill,
	# BTI landing pads, packs sealed at birth (arm64's set_memory_*()
	# refuse PMD mappings), the linear alias taken away.
	step "arm64 kernel (ARCH=arm64, clang) and the module built for it with CLIPPY=1 (warnings fail)"
	rm -f out/arm64/execmem_rs.o
	make -s module-arm64 CLIPPY=1 2>&1 | tee "$log/arm64"
	rc=${PIPESTATUS[0]}
	if [ "$rc" = 0 ] && grep -q '^warning\|^error' "$log/arm64"; then rc=1; fi
	count "arm64 module build (clippy)" "$rc"
	step "host: an aborted arm64 VM run (TERM, Ctrl-C) takes its QEMU with it"
	scripts/test-vm-abort.sh arm64
	count "aborted arm64 VM run leaves no VM" $?
	vm_step "arm64: hardening checks, selftest (packs, linear alias, BTI stubs), ABI checks, exec policy, fuzz and stress under qemu-system-aarch64" \
		--flavour arm64 --timeout 900 selftests/hardening.py selftests/execmem_rs.sh selftests/ctl_abi.py \
		selftests/exec_policy.py selftests/ctl_fuzz.py "selftests/stress.sh 300000 2 1"
	vm_step "arm64: resource bounds (session and global caps, another module still loads)" \
		--flavour arm64 --memory 2G selftests/limits.py
	vm_step "arm64: fault injection (failslab, fail_page_alloc, fail-nth)" --flavour arm64 --memory 2G \
		--append slab_nomerge --injected-alloc-failures "selftests/fault_inject.py 30000 12"
	# The BPF hook is in generic code (kernel/bpf/core.c): arm64's JIT is
	# served as x86's is; kprobes through arm64's alloc_insn_page() (patch
	# 0009). kprobes keeps its last insn page: that run cannot unload.
	vm_step "arm64: the kernel's BPF JIT served: test_bpf stock vs served, lifecycle" \
		--flavour arm64 --memory 2G --timeout 1200 "selftests/consumers.py bpf"
	vm_step "arm64: kprobes served: the kprobes KUnit suite; what the kernel keeps pins the module" \
		--flavour arm64 --no-unload "selftests/consumers.py xdp" "selftests/consumers.py kprobes"
	# The same engine places the same way on both: the arm64 kernel's replay
	# maps what the (x86-64) host's replay maps, phase by phase.
	vm_step "arm64: the kernel bench's module-trace replay on a fresh module" --flavour arm64 \
		selftests/bench_replay.py
	step "host: the arm64 kernel's module-trace replay maps what the host replay maps"
	scripts/replay-compare.sh "$vmlog"
	count "module-trace replay: arm64 kernel = host" $?
	# The main job on arm64 (make demo ARCH=arm64): the module trace
	# through ctl, whose 1-byte-aligned fills arm64's patching cannot start.
	vm_step "arm64: the demo (make demo ARCH=arm64)" --flavour arm64 --demo

	step "debug kernel (KASAN, lockdep, kmemleak, DEBUG_VM, UBSAN) and its module build"
	make -s module-debug
	count "debug module build" $?
	# One boot for all of it (a debug boot costs about 90 s around its
	# tests: udev's settle under KASAN and lockdep, kmemleak's scans). The
	# kselftests, fuzz and stress first; fault injection (the runner
	# forgives allocation-failure reports inside its window only, so the
	# others are scanned in full); then test_bpf served only (the
	# stock-vs-served comparison is the base kernel's: here every program
	# must pass with no splat and no leak), BPF alongside stress, XDP and
	# kprobes last, since what the kernel keeps of them pins the module (no
	# unload). Fault injection, the lifecycle and the stress check unload
	# and reload the module after the kselftests, so its teardown runs on
	# what they and the JIT left, under KASAN and lockdep, and kmemleak
	# scans at the end either way.
	vm_step "the debug kernel: kselftests, fuzz and 300k-op stress, fault injection, the kernel's BPF JIT served, BPF alongside stress, XDP and kprobes (which pin the module)" \
		--flavour debug --memory 2G --timeout 1800 --no-unload \
		--append slab_nomerge --injected-alloc-failures \
		selftests/execmem_rs.sh "selftests/ctl_abi.py 5000" selftests/ctl_fuzz.py "selftests/stress.sh 300000 2 1" \
		"selftests/fault_inject.py 15000 12 8" \
		"selftests/consumers.py bpf-served" "selftests/consumers.py stress 300" \
		"selftests/consumers.py xdp" "selftests/consumers.py kprobes"

	step "kasan kernel (KASAN without KASAN_VMALLOC: packs need a module shadow) and its module build"
	make -s module-kasan
	count "kasan module build" $?
	vm_step "selftest, ABI checks and stress on the kasan kernel" --flavour kasan --memory 2G \
		--timeout 1200 selftests/execmem_rs.sh "selftests/ctl_abi.py 5000" "selftests/stress.sh 200000 2 3"
fi

echo
echo "check: $((SECONDS - t0))s in all"
for s in "${skipped[@]}"; do echo "check: not run, not counted: $s"; done
for f in "${failures[@]}"; do echo "check: failed: $f"; done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
