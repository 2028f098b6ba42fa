# SPDX-License-Identifier: GPL-2.0
#
# Sourced by scripts/check.sh (and scripts/test-vm-abort.sh, which stops
# them): make check's steps, how they are counted, and the steps that run
# in the background beside the others.

# steps_begin: the tallies, a scratch directory ($log), and the stop: a
# make check ended early (a TERM, a Ctrl-C, a failure of its own) takes
# its steps with it: those running in the background (lane_start), then
# the one in front (the runner's own abort path stops its VM).
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
	lane_stop
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

# lane_start FUNCTION: runs FUNCTION's steps in the background, beside the
# steps that follow, until lane_join. A VM under TCG keeps about one of the
# two cores busy (a base kernel run: 43 s of CPU in 35 s), so two VMs side
# by side take about the time of the longer one. Its output goes to a
# file, printed by lane_join; its tallies are added there. One at a time.
lane_pid=
lane_start() {
	lane_at=$((SECONDS - t0))
	(
		# Its tallies are its own; a TERM (lane_stop) ends it once the
		# step it is in has ended.
		trap 'exit 143' TERM
		passed=0 failed=0 failures=() vmlog=$log/lane-vm
		"$1"
		echo "$passed $failed" >"$log/lane.tally"
		printf '%s\n' "${failures[@]}" >"$log/lane.failures"
	) >"$log/lane.out" 2>&1 </dev/null &
	lane_pid=$!
	echo "check: $1: runs in the background from here; its output follows when it has ended"
}

# lane_join: waits for the background steps, prints their output and adds
# their tallies.
lane_join() {
	local p f t
	wait "$lane_pid"
	lane_pid=
	step "the steps run in the background since [${lane_at}s]:"
	cat "$log/lane.out"
	if read -r p f <"$log/lane.tally"; then
		passed=$((passed + p)); failed=$((failed + f))
		while read -r t; do [ -z "$t" ] || failures+=("$t"); done <"$log/lane.failures"
	else
		count "the background steps ended with their tallies" 1
	fi
}

# lane_stop: ends the background steps: a TERM to the processes of the
# step they are in (the runner's abort path), then to the lane, waited for.
lane_stop() {
	[ -n "$lane_pid" ] || return 0
	pkill -TERM -P "$lane_pid"
	kill -TERM "$lane_pid"
	wait "$lane_pid"
} 2>/dev/null
