# SPDX-License-Identifier: GPL-2.0
#
# Sourced by the VM runners (run_vm.sh, run_vm_arm64.sh): a VM bounded in
# time that does not outlive its runner.
#
# `timeout` moves itself and what it runs (virtme-ng, QEMU) into a process
# group of its own. A Ctrl-C of `make check` (an INT to the terminal's
# process group) therefore never reached the VM, and the runner, waiting
# for its foreground pipeline, could not act on it: runner and VM ran on
# until the timeout (scripts/test-vm-abort.sh). So the VM runs in the
# background, its runner waits for it, and the runner's INT, TERM and HUP
# stop it first: a TERM to `timeout`, which passes it on to its whole
# group (and KILLs 10 s later what is left).

# bounded SECONDS PIDFILE CMD...: CMD under timeout, its PID in PIDFILE
# while it runs; its status (124 or 137 on timeout). For the first stage of
# a pipeline the runner runs in the background (bounded_wait).
bounded() {
	local secs=$1 pidfile=$2 rc
	shift 2
	timeout --kill-after=10 "$secs" "$@" &
	echo $! >"$pidfile"
	wait $!
	rc=$?
	rm -f "$pidfile"
	return $rc
}

# bounded_wait PIDFILE CMD...: run CMD (a function whose pipeline starts
# with `bounded ... PIDFILE`) in the background and wait for it; its
# status. An INT, TERM or HUP meanwhile stops the VM, waits for CMD to end,
# and ends this shell by the same signal (so that a calling shell sees the
# Ctrl-C and stops too).
bounded_wait() {
	local pidfile=$1 sig
	shift
	for sig in INT TERM HUP; do
		# shellcheck disable=SC2064 # expanded now, on purpose
		trap "bounded_stop '$pidfile' $sig" "$sig"
	done
	"$@" &
	wait $!
	local rc=$?
	trap - INT TERM HUP
	return $rc
}

# bounded_stop PIDFILE SIGNAL: the handler behind bounded_wait.
bounded_stop() {
	local pid
	pid=$(cat "$1" 2>/dev/null)
	[ -z "$pid" ] || kill -TERM "$pid" 2>/dev/null
	wait
	echo "vm: stopped by SIG$2" >&2
	trap - "$2"
	kill "-$2" $$
}
