#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Test of the VM runner itself: an aborted run leaves no VM behind.
#
#   scripts/test-vm-abort.sh [base|arm64]
#
# Starts selftests/run_vm.sh on a guest that would run for ten minutes
# and aborts the runner: a TERM to the runner alone (what a parent that
# stops it sends) and an INT to its whole process group (a Ctrl-C of
# `make check`) once QEMU runs, and a TERM as soon as the guest script is
# written, before any VM (arm64: while the initramfs is packed). Each time
# the runner must end by that signal within 30 s, and with it every
# process of the run (QEMU, virtme-ng). The run's processes are found by
# the scratch directory the runner is given as TMPDIR (one per case),
# which their command lines name. Then (base only) the same for make
# check's own steps (scripts/check-steps.sh): a Ctrl-C in a VM step, and
# a TERM to make check alone. make check must end by that signal within
# 30 s, go no further, and leave no VM. Needs the flavour's kernel and
# module (make module, make module-arm64).
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

# abort_case NAME SIGNAL GROUP WHEN: start a run, wait for WHEN (up: its
# QEMU runs; early: its guest script is written, before any VM), send
# SIGNAL to the runner (to its process group if GROUP is 1). The runner
# must end within 30 s, by that signal (so that a calling shell stops
# too), and nothing of its run may be left when it has ended.
abort_case() {
	local name=$1 sig=$2 group=$3 when=$4 dir pid i
	dir=$(mktemp -d "$tmp/case.XXXXXX")
	# In a process group of its own (job control, on only to start it), as
	# a shell's foreground job is: a group signal reaches the runner, not us.
	# With the signals' default handling, as a shell started from a
	# terminal has it: one started in the background (nohup, a CI job)
	# passes INT ignored on, and an ignored signal cannot be trapped.
	set -m
	TMPDIR=$dir env --default-signal=INT,TERM,HUP \
		"$here/selftests/run_vm.sh" --flavour "$flavour" --timeout 600 -- sleep 600 \
		>"$dir/log" 2>&1 &
	pid=$!
	set +m
	for ((i = 0; i < 1200; i++)); do
		if [ "$when" = up ]; then
			pgrep -f "qemu-system.*$dir/execmem_rs-vm" >/dev/null && break
		else
			compgen -G "$dir/execmem_rs-vm.*/body.sh" >/dev/null && break
		fi
		sleep 0.05
	done
	if [ "$i" = 1200 ]; then
		echo "not ok - $name: the run never reached '$when' within 60 s"; tail -n 5 "$dir/log"
		bad=1; kill -KILL -- "-$pid" 2>/dev/null; pkill -KILL -f "$dir"; wait "$pid" 2>/dev/null; return
	fi
	[ "$when" != up ] || sleep 2
	stop_and_judge "$name" "the runner" "$sig" "$group" "$pid" "$dir"
}

# stop_and_judge NAME WHO SIGNAL GROUP PID DIR [NEVER]: sends SIGNAL to
# PID (to its process group if GROUP is 1) and waits up to 30 s for it to
# end. It must end by SIGNAL, leave no process of the run (their command
# lines name DIR), and, if NEVER is given, not have logged a line matching
# it (DIR/log).
stop_and_judge() {
	local name=$1 who=$2 sig=$3 group=$4 pid=$5 dir=$6 never=${7:-} i rc want runner procs went=
	if [ "$group" = 1 ]; then kill "-$sig" -- "-$pid"; else kill "-$sig" "$pid"; fi
	for ((i = 0; i < 300; i++)); do
		running "$pid" || break
		sleep 0.1
	done
	# QEMU's and virtme-ng's command lines name the runner's directory.
	procs=$(pgrep -af "$dir/execmem_rs-vm" | cut -c1-60 | paste -sd'|')
	runner=$(running "$pid" && echo alive)
	[ -z "$runner" ] || kill -KILL -- "-$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	rc=$?
	want=$((128 + $(kill -l "$sig")))
	[ -z "$never" ] || ! grep -q "$never" "$dir/log" || went="logged '$never' after the signal, "
	if [ -z "$runner$procs$went" ] && [ "$rc" = "$want" ]; then
		echo "ok - $name: $who ended by SIG$sig, and its VM with it"
	else
		echo "not ok - $name: ${runner:+$who still running 30 s later, }${went}$who's status $rc" \
			"(want $want), the run's processes when it ended: ${procs:-none}"
		bad=1
	fi
	pkill -KILL -f "$dir" 2>/dev/null
	sleep 1
}

# check_case NAME SIGNAL GROUP: make check's steps (scripts/check-steps.sh)
# in a driver: a VM step, then a line saying it went on. Once the step's
# QEMU runs, SIGNAL goes to the driver (to its group if GROUP is 1). The
# driver must end by it within 30 s, go no further than the step it was
# in, and leave nothing of the run.
check_case() {
	local name=$1 sig=$2 group=$3 dir pid i
	dir=$(mktemp -d "$tmp/case.XXXXXX")
	cat >"$dir/driver.sh" <<-DRIVER
		set -uo pipefail
		cd "$here"
		. scripts/check-steps.sh
		steps_begin
		vm_step "in front" --flavour "$flavour" --timeout 600 -- sleep 600
		echo "check: went on after the step"
	DRIVER
	set -m
	TMPDIR=$dir env --default-signal=INT,TERM,HUP bash "$dir/driver.sh" >"$dir/log" 2>&1 &
	pid=$!
	set +m
	for ((i = 0; i < 1200; i++)); do
		! pgrep -f "qemu-system.*$dir/execmem_rs-vm" >/dev/null || break
		sleep 0.05
	done
	if [ "$i" = 1200 ]; then
		echo "not ok - $name: the VM never ran within 60 s"; tail -n 5 "$dir/log"
		bad=1; kill -KILL -- "-$pid" 2>/dev/null; pkill -KILL -f "$dir"; wait "$pid" 2>/dev/null; return
	fi
	sleep 2
	stop_and_judge "$name" "make check" "$sig" "$group" "$pid" "$dir" "went on after the step"
}

abort_case "TERM to the runner ($flavour)" TERM 0 up
abort_case "Ctrl-C: INT to the runner's process group ($flavour)" INT 1 up
abort_case "TERM to the runner before its VM starts ($flavour)" TERM 0 early
if [ "$flavour" = base ]; then
	check_case "Ctrl-C of make check in a VM step" INT 1
	check_case "TERM to make check in a VM step" TERM 0
fi
exit $bad
