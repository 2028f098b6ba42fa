#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Test of the VM runner itself: an aborted run leaves no VM behind.
#
#   scripts/test-vm-abort.sh [base|arm64]
#
# Starts selftests/run_vm.sh on a guest that would run for ten minutes,
# waits for its QEMU, then aborts the runner twice: a TERM to the runner
# alone (what a parent that stops it sends) and an INT to its whole
# process group (a Ctrl-C of `make check`). Each time the runner must
# end, and with it every process of the run (QEMU, virtme-ng), within
# 30 s. The run's processes are found by the scratch directory the
# runner is given as TMPDIR, which their command lines name. Needs the
# flavour's kernel and module (make module, make module-arm64).
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
flavour=${1:-base}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/execmem_rs-abort.XXXXXX")
bad=0
# Whatever a failed case left running goes with the scratch directory.
cleanup() {
	pkill -KILL -f "$tmp" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

# running PID: PID runs (a zombie does not).
running() {
	local st
	st=$(ps -o stat= -p "$1" 2>/dev/null)
	[ -n "$st" ] && [ "${st#Z}" = "$st" ]
}

# abort_case NAME SIGNAL GROUP: start a run, wait for its QEMU, send
# SIGNAL to the runner (to its process group if GROUP is 1).
abort_case() {
	local name=$1 sig=$2 group=$3 pid i
	# With the signals' default handling, as a shell started from a
	# terminal has it: one started in the background (nohup, a CI job)
	# passes INT ignored on, and an ignored signal cannot be trapped.
	# In a process group of its own (job control, on only to start it), as
	# a shell's foreground job is: a group signal reaches the runner, not us.
	set -m
	TMPDIR=$tmp env --default-signal=INT,TERM,HUP \
		"$here/selftests/run_vm.sh" --flavour "$flavour" --timeout 600 -- sleep 600 \
		>"$tmp/$name.log" 2>&1 &
	pid=$!
	set +m
	for ((i = 0; i < 120; i++)); do
		pgrep -f "qemu-system.*$tmp/execmem_rs-vm" >/dev/null && break
		sleep 0.5
	done
	if ! pgrep -f "qemu-system.*$tmp/execmem_rs-vm" >/dev/null; then
		echo "not ok - $name: no QEMU came up within 60 s"; tail -n 5 "$tmp/$name.log"
		bad=1; kill -KILL -- "-$pid" 2>/dev/null; return
	fi
	sleep 2
	if [ "$group" = 1 ]; then kill "-$sig" -- "-$pid"; else kill "-$sig" "$pid"; fi
	local runner procs
	for ((i = 0; i < 60; i++)); do
		runner=$(running "$pid" && echo alive)
		# QEMU's and virtme-ng's command lines name the runner's directory.
		procs=$(pgrep -af "$tmp/execmem_rs-vm" | cut -c1-60 | paste -sd'|')
		[ -n "$runner$procs" ] || break
		sleep 0.5
	done
	if [ -z "$runner$procs" ]; then
		echo "ok - $name: the runner and its VM ended"
	else
		echo "not ok - $name: 30 s later, runner ${runner:-gone}, the run's processes: ${procs:-none}"
		bad=1
	fi
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	pkill -KILL -f "$tmp" 2>/dev/null
	sleep 1
}

abort_case "TERM to the runner ($flavour)" TERM 0
abort_case "Ctrl-C: INT to the runner's process group ($flavour)" INT 1
exit $bad
