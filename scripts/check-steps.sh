# SPDX-License-Identifier: GPL-2.0
#
# Sourced by scripts/check.sh (and scripts/test-vm-abort.sh, which stops
# them): make check's steps and how they are counted.

# steps_begin: the tallies, a scratch directory ($log), and the stop: a
# make check ended early (a TERM, a Ctrl-C, a failure of its own) takes
# the step it is in with it (the runner's own abort path stops its VM).
steps_begin() {
	passed=0 failed=0 failures=() skipped=() t0=$SECONDS
	log=$(mktemp -d "${TMPDIR:-/tmp}/execmem_rs-check.XXXXXX")
	vmlog=$log/vm
	trap steps_end EXIT
}

# steps_end: make check's exit. Its children at this point are a step it
# was stopped in: each gets a TERM and is waited for (30 s at most; the
# runner's abort path stops its VM first), so that nothing of make check
# outlives it.
steps_end() {
	local i
	pkill -TERM -P $$
	for ((i = 0; i < 300; i++)); do
		pgrep -P $$ >/dev/null || break
		sleep 0.1
	done
	rm -rf "$log"
}

step() { echo; echo "=== [$((SECONDS - t0))s] $*"; }

count() { # count NAME STATUS: one pass or one failure
	if [ "$2" = 0 ]; then passed=$((passed + 1)); echo "check: $1: ok"
	else failed=$((failed + 1)); failures+=("$1"); echo "check: $1: FAILED"; fi
}

# vm_step NAME RUNNER-ARGS...: one VM run; its KTAP results count one by one,
# the run itself (boot, load, unload, no splat, no leak) counts once more.
vm_step() {
	local name=$1
	shift
	step "VM: $name"
	# tee ignores a Ctrl-C: it passes on the runner's last lines, and the
	# runner, once it has stopped its VM, ends by SIGINT, not by a write
	# to a pipe nobody reads.
	selftests/run_vm.sh "$@" 2>&1 | (trap '' INT; exec tee "$vmlog")
	local rc=${PIPESTATUS[0]} line p f
	# A Ctrl-C stops make check here. (bash would go on: it stops on a
	# Ctrl-C only if the pipeline's last process ended by it, and tee
	# cannot, see above.)
	if [ "$rc" = $((128 + 2)) ]; then
		trap - INT
		kill -INT "$BASHPID"
	fi
	line=$(grep '^vm: [0-9]*s; ' "$vmlog" | tail -n1)
	p=$(sed -n 's/.*; \([0-9]*\) passed, \([0-9]*\) failed.*/\1/p' <<<"$line")
	f=$(sed -n 's/.*; \([0-9]*\) passed, \([0-9]*\) failed.*/\2/p' <<<"$line")
	passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0}))
	# Name each failed KTAP test, so that the tail of the log says what failed.
	while read -r t; do failures+=("$name: $t"); done < <(grep -E '^not ok ' "$vmlog" | grep -v '# SKIP')
	count "VM run: $name (boot, load, unload, no splat)" "$rc"
}
