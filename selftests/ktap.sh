# SPDX-License-Identifier: GPL-2.0
#
# Minimal KTAP output for the execmem_rs selftests (sourced). Results are
# numbered as they come; ktap_finish prints the plan and exits with
# kselftest's convention: 0 all passed, 1 any failed, 4 none passed.
# A suite whose checks are fixed declares how many (ktap_plan N): a check
# that never reported (a shell error in its condition only aborts that
# command) then fails the suite instead of vanishing from it.

KSFT_PASS=0
KSFT_FAIL=1
KSFT_SKIP=4
ktap_n=0
ktap_pass=0
ktap_fail=0
ktap_skip=0
ktap_planned=

ktap_header() {
	echo "KTAP version 1"
}

# ktap_plan N: the suite reports exactly N results.
ktap_plan() {
	ktap_planned=$1
}

ktap_ok() {
	ktap_n=$((ktap_n + 1)); ktap_pass=$((ktap_pass + 1))
	echo "ok $ktap_n $*"
}

ktap_not_ok() {
	ktap_n=$((ktap_n + 1)); ktap_fail=$((ktap_fail + 1))
	echo "not ok $ktap_n $*"
}

ktap_skip_test() {
	ktap_n=$((ktap_n + 1)); ktap_skip=$((ktap_skip + 1))
	echo "ok $ktap_n $1 # SKIP ${2:-}"
}

# ktap_check NAME COND-STATUS [DETAIL]: ok when the status is 0.
ktap_check() {
	local name=$1 status=$2 detail=${3:-}
	if [ "$status" -eq 0 ]; then
		ktap_ok "$name${detail:+ # $detail}"
	else
		ktap_not_ok "$name${detail:+ # $detail}"
	fi
}

# ktap_expect NAME GOT WANT: ok when the strings are equal.
ktap_expect() {
	if [ "$2" = "$3" ]; then
		ktap_ok "$1"
	else
		ktap_not_ok "$1 # got '$2', want '$3'"
	fi
}

ktap_finish() {
	if [ -n "$ktap_planned" ] && [ "$ktap_n" != "$ktap_planned" ]; then
		ktap_not_ok "plan_complete # $ktap_n result(s), $ktap_planned planned: a check did not report"
	fi
	echo "1..$ktap_n"
	echo "# totals: pass:$ktap_pass fail:$ktap_fail skip:$ktap_skip"
	if [ "$ktap_fail" -gt 0 ]; then exit $KSFT_FAIL; fi
	if [ "$ktap_pass" -eq 0 ]; then exit $KSFT_SKIP; fi
	exit $KSFT_PASS
}

# ktap_skip_all REASON: the whole suite cannot run here.
ktap_skip_all() {
	ktap_header
	echo "1..0 # SKIP $1"
	exit $KSFT_SKIP
}
