# SPDX-License-Identifier: GPL-2.0
#
# The VM runner's judgement of a run's console output (sourced by
# selftests/run_vm.sh, and by scripts/test-verdict.sh, which feeds it
# canned consoles). Sets pass, nfail and skip from the KTAP lines, and
# returns non-zero if any test failed, any test or whole script skipped
# ("1..0 # SKIP", exit 4: a skip is not a pass), a script exited non-zero
# ("vm: NAME exit R"), or nothing passed at all.
#
#   judge CONSOLE
judge() {
	local console=$1
	skip=$(( $(grep -c '^ok [0-9].* # SKIP' "$console") + $(grep -c '^1\.\.0 # SKIP' "$console") ))
	pass=$(( $(grep -c '^ok [0-9]' "$console") - $(grep -c '^ok [0-9].* # SKIP' "$console") ))
	nfail=$(grep -c '^not ok [0-9]' "$console")
	local bad_exit
	bad_exit=$(grep -c '^vm: .* exit [1-9][0-9]*$' "$console")
	[ "$nfail" = 0 ] && [ "$skip" = 0 ] && [ "$bad_exit" = 0 ] && [ "$pass" -gt 0 ]
}
