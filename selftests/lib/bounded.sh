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
# stop it first: a TERM to timeout's group, waited out (timeout KILLs
# what is left 10 s later), before the runner ends.

# bounded SECONDS PIDFILE CMD...: CMD under timeout, its PID (the group's)
# in PIDFILE while it runs; its status (124 or 137 on timeout). For the
# first stage of a pipeline the runner runs in the background
# (bounded_wait). Nothing starts once a stop was asked (PIDFILE.stop), and
# a stop asked while it started is carried out here.
bounded() {
	local secs=$1 pidfile=$2 rc
	shift 2
	[ ! -e "$pidfile.stop" ] || return 143
	timeout --kill-after=10 "$secs" "$@" &
	echo $! >"$pidfile"
	[ ! -e "$pidfile.stop" ] || bounded_term $!
	wait $!
	rc=$?
	rm -f "$pidfile"
	return $rc
}

# bounded_wait PIDFILE CMD...: run CMD (a function whose pipeline starts
# with `bounded ... PIDFILE`) in the background and wait for it; its
# status. An INT, TERM or HUP meanwhile stops the VM, waits until CMD and
# the VM's process group are gone, and ends this shell by the same signal
# (so that a calling shell sees the Ctrl-C and stops too).
bounded_job=
bounded_wait() {
	local pidfile=$1 sig rc
	shift
	for sig in INT TERM HUP; do
		# shellcheck disable=SC2064 # expanded now, on purpose
		trap "bounded_stop '$pidfile' $sig" "$sig"
	done
	"$@" &
	bounded_job=$!
	wait $bounded_job
	rc=$?
	trap - INT TERM HUP
	bounded_job=
	return $rc
}

# bounded_term PID: TERM to timeout (PID) and to its group, which it
# makes only once it runs: it passes the signal on to the VM.
bounded_term() {
	kill -TERM "$1" 2>/dev/null
	kill -TERM -- "-$1" 2>/dev/null
}

# bounded_stop PIDFILE SIGNAL: the handler behind bounded_wait. The VM may
# not have started yet (the pidfile is written once it has): the stop flag
# (in the run's own directory) keeps it from starting, and the pidfile is
# looked for until the job ends.
bounded_stop() {
	local pid='' i
	touch "$1.stop"
	for ((i = 0; i < 300; i++)); do
		[ -n "$pid" ] || pid=$(cat "$1" 2>/dev/null)
		if [ -n "$pid" ]; then
			bounded_term "$pid"
			# The group outlives its leader (QEMU under vng): until both
			# are gone.
			kill -0 "$pid" 2>/dev/null || kill -0 -- "-$pid" 2>/dev/null || break
		elif [ -z "$bounded_job" ] || ! kill -0 "$bounded_job" 2>/dev/null; then
			break
		fi
		sleep 0.1
	done
	[ -z "$pid" ] || kill -KILL -- "-$pid" 2>/dev/null
	wait
	echo "vm: stopped by SIG$2" >&2
	trap - "$2"
	kill "-$2" $$
}
