#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Tallies a `cargo test --no-fail-fast` log for make check:
#   cargo-tally.sh LOG      prints "PASSED FAILED", then one line per failure
# A failure is a failed test (named), or a test binary that started and
# printed no "test result" line (it crashed or was killed: one failure per
# such binary, named, whatever the others reported, plus the failed tests
# it named before, which no result line counted): as many failures as
# lines after the first.
set -uo pipefail
awk '
# end: the binary that ran last printed its result, or is lost.
function end() {
	if (cur != "" && !seen) { lost[++nl] = cur; uncounted += named }
}
/^ +(Running|Doc-tests) / {
	end()
	cur = $0; sub(/^ +/, "", cur); seen = 0; named = 0
}
/^test result: / {
	seen = 1
	for (i = 1; i < NF; i++) {
		if ($(i + 1) ~ /^passed;/) p += $i
		if ($(i + 1) ~ /^failed;/) f += $i
	}
}
/^test .* \.\.\. FAILED$/ { t = $0; sub(/^test /, "", t); sub(/ \.\.\. FAILED$/, "", t); names[++nn] = t; named++ }
END {
	end()
	print p + 0, f + nl + uncounted
	for (i = 1; i <= nn; i++) print names[i]
	for (i = 1; i <= nl; i++) print "no result from " lost[i] " (crashed or killed)"
}' "$1"
