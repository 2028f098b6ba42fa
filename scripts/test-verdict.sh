#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Host test of the VM runner's verdict (selftests/verdict.sh) on canned
# consoles: a run where everything skips, or one script skips, must fail
# (review finding 19: such runs used to count as passed); and of its splat
# scan on canned dmesg: a fault-injection run's allocation-failure reports
# (x86 and arm64 stacks) are not splats, anything else in it still is.
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/selftests/verdict.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=0
expect() { # expect NAME WANT(pass|fail) CONSOLE-TEXT
	printf '%s\n' "$3" >"$tmp/c"
	if judge "$tmp/c"; then got=pass; else got=fail; fi
	if [ "$got" = "$2" ]; then echo "ok - $1"; else echo "not ok - $1 (judged $got)"; failed=1; fi
}
expect "all pass" pass $'KTAP version 1\nok 1 a\nok 2 b\n1..2\nvm: t.py exit 0'
expect "one failure" fail $'ok 1 a\nnot ok 2 b\nvm: t.py exit 1'
expect "every test skipped" fail $'KTAP version 1\n1..0 # SKIP not root\nvm: t.py exit 4'
expect "one script skipped, others pass" fail $'ok 1 a\nvm: a.py exit 0\n1..0 # SKIP no module\nvm: b.py exit 4'
expect "one test skipped" fail $'ok 1 a\nok 2 b # SKIP why\nvm: t.py exit 0'
expect "script crashed after passing" fail $'ok 1 a\nvm: t.py exit 134'
expect "no results at all" fail $'vm: t.py exit 0'
# suite NAME WANT(pass|fail) BODY [STATUS]: a bash suite on
# selftests/ktap.sh (one command per line, as in a script file), its output
# and exit status judged as the runner judges a guest's; and its exit
# status alone, if STATUS is given (what selftests/Makefile's run_tests
# judges it by).
suite() {
	{ echo ". '$here/selftests/ktap.sh'"; tr ';' '\n' <<<"$3"; } >"$tmp/t.sh"
	bash "$tmp/t.sh" >"$tmp/c" 2>/dev/null
	local rc=$?
	echo "vm: t.sh exit $rc" >>"$tmp/c"
	if judge "$tmp/c"; then got=pass; else got=fail; fi
	if [ -n "${4:-}" ] && [ "$rc" != "$4" ]; then got="$got, exit $rc (want $4)"; fi
	if [ "$got" = "$2" ]; then echo "ok - $1"; else echo "not ok - $1 (judged $got)"; failed=1; fi
}
suite "bash suite, every planned check reported" pass 'ktap_plan 2; ktap_ok a; ktap_check b 0; ktap_finish'
# A missing value makes the condition a syntax error, which aborts only
# that command: the check printed nothing (stress.sh, review of stop 23).
suite "bash suite, a check vanished" fail \
	'ktap_plan 2; ktap_ok a; ktap_check b $(( $(true) > 0 ? 0 : 1 )); ktap_finish'
# The runner fails a console without a pass whatever the status; a caller
# that reads only the status needs ktap.sh's KSFT_SKIP (4).
suite "bash suite, no result at all" fail 'ktap_finish' 4
# scan NAME WANT(clean|splat) INJECTED(0|1) DMESG-TEXT
scan() {
	printf '%s\n' "$4" >"$tmp/d"
	if [ "$3" = 1 ]; then unsplat "$tmp/d" >"$tmp/s"; else cp "$tmp/d" "$tmp/s"; fi
	if splats "$tmp/s" >/dev/null; then got=splat; else got=clean; fi
	if [ "$got" = "$2" ]; then echo "ok - $1"; else echo "not ok - $1 (found $got)"; failed=1; fi
}
x86=$'stress: page allocation failure: order:0, mode:0x400cc0(GFP_KERNEL_ACCOUNT), nodemask=(null)
CPU: 1 UID: 0 PID: 93 Comm: stress Not tainted 6.12.117
Call Trace:
 <TASK>
 dump_stack_lvl+0x5d/0x80
 warn_alloc+0x164/0x190
 </TASK>
Mem-Info:
active_anon:1 inactive_anon:2'
arm64=$'vmalloc error: size 2097152, page order 9, failed to allocate pages, mode:0xcc0(GFP_KERNEL), nodemask=(null)
CPU: 0 UID: 0 PID: 88 Comm: stress Not tainted 6.12.117
Hardware name: linux,dummy-virt (DT)
Call trace:
 dump_backtrace+0x98/0x118
 warn_alloc+0x110/0x1a8
Mem-Info:
active_anon:1 inactive_anon:2'
warn=$'WARNING: CPU: 1 PID: 93 at mm/vmalloc.c:1804 alloc_vmap_area+0x8e1/0xab0
Call Trace:
 <TASK>
 </TASK>'
# What a fault-injection run writes to the kernel log when it starts and
# ends (selftests/lib/kmsg.py): reports are forgiven only between the two.
on='[   30.1] execmem_rs-test: injection on'
off='[   95.2] execmem_rs-test: injection off'
scan "injected run, x86 report" clean 1 "$on"$'\n'"$x86"$'\n'"$off"
scan "injected run, arm64 report" clean 1 "$on"$'\n'"$arm64"$'\n'"$off"
scan "injected run, a WARN after a report" splat 1 "$on"$'\n'"$arm64"$'\n'"$warn"$'\n'"$off"
scan "injected run, a WARN before a report" splat 1 "$on"$'\n'"$warn"$'\n'"$x86"$'\n'"$off"
# The other tests of the boot are scanned in full.
scan "injected run, a report before the run" splat 1 "$x86"$'\n'"$on"$'\n'"$arm64"$'\n'"$off"
scan "injected run, a report after the run" splat 1 "$on"$'\n'"$arm64"$'\n'"$off"$'\n'"$x86"
scan "injected run, a report with no run at all" splat 1 "$x86"
scan "no injection, x86 report" splat 0 "$x86"
scan "no injection, arm64 report" splat 0 "$arm64"
# boot NAME WANT(yes|no) DMESG-TEXT: does the dmesg still start at boot?
boot() {
	printf '%s\n' "$3" >"$tmp/d"
	if from_boot "$tmp/d"; then got=yes; else got=no; fi
	if [ "$got" = "$2" ]; then echo "ok - $1"; else echo "not ok - $1 (found $got)"; failed=1; fi
}
banner='[    0.000000] Linux version 6.12.117 (root@build) (Debian clang version 19) #1 SMP'
boot "the whole run" yes "$banner"$'\n[   42.1] test_bpf: Summary: 1049 PASSED'
boot "cleared by a test (dmesg -C)" no $'[   42.1] test_bpf: Summary: 1049 PASSED'
boot "a test that only names the banner" no $'[   12.3] execmem_rs-test: grep "Linux version"'
exit $failed
