# SPDX-License-Identifier: GPL-2.0
#
# The VM runner's judgement of a run's console output (sourced by
# selftests/run_vm.sh, and by scripts/test-verdict.sh, which feeds it
# canned consoles). Sets pass, nfail and skip from the KTAP lines, and
# returns non-zero if any test failed, any test or whole script skipped
# ("1..0 # SKIP", exit 4: a skip is not a pass), a script exited non-zero
# ("vm: NAME exit R"), or nothing passed at all. unsplat drops from a
# dmesg what the kernel reports of the failures a fault-injection run
# injected, inside that run's window; splats finds kernel splats in a
# dmesg; from_boot says whether a dmesg still starts at boot (nothing
# cleared or wrapped out of it, so the scan saw the whole run).
#
#   judge CONSOLE
#   unsplat DMESG >SCAN
#   splats SCAN >FOUND
#   from_boot DMESG
judge() {
	local console=$1
	skip=$(( $(grep -c '^ok [0-9].* # SKIP' "$console") + $(grep -c '^1\.\.0 # SKIP' "$console") ))
	pass=$(( $(grep -c '^ok [0-9]' "$console") - $(grep -c '^ok [0-9].* # SKIP' "$console") ))
	nfail=$(grep -c '^not ok [0-9]' "$console")
	local bad_exit
	bad_exit=$(grep -c '^vm: .* exit [1-9][0-9]*$' "$console")
	[ "$nfail" = 0 ] && [ "$skip" = 0 ] && [ "$bad_exit" = 0 ] && [ "$pass" -gt 0 ]
}

# "Call trace:" and "Internal error:" are arm64's spellings (dump_backtrace, die).
SPLATS='BUG:|WARNING:|Oops|KASAN:|UBSAN:|panicked|general protection|unreferenced object|possible circular locking|Call Trace:|Call trace:|Internal error:|Kernel panic'

# The kernel's allocation-failure reports (warn_alloc: "page allocation
# failure", "vmalloc error"), each from its header line through the end of
# its stack: x86's "</TASK>", or the "Mem-Info:" that follows the stack
# on either architecture (arm64's "Call trace:" has no end marker),
# dropped only between the lines a fault-injection run writes to the
# kernel log when it starts and when it has ended (INJECTION_ON and
# INJECTION_OFF in selftests/lib/kmsg.py), so the other tests of the boot
# are scanned in full. Anything else stays, a WARN inside an injected run
# included.
REPORTS='page allocation failure|vmalloc error'
unsplat() {
	awk -v reports="$REPORTS" '/execmem_rs-test: injection on$/ { on = 1 }
	     /execmem_rs-test: injection off$/ { on = 0 }
	     on && $0 ~ reports { skip = 1 }
	     !skip { print }
	     skip && /<\/TASK>|Mem-Info:/ { skip = 0 }' "$1"
}

# Prints the lines of a dmesg that are kernel splats; true if any.
splats() {
	grep -E "$SPLATS" "$1"
}

# True if a dmesg holds the boot banner: the ring buffer still starts at
# boot (a test that cleared it, or a run that wrapped it, would hide a
# splat from the scan).
from_boot() {
	grep -q '^\[ *0\.[0-9]*\] Linux version ' "$1"
}
