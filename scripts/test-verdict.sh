#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Host test of the VM runner's verdict (selftests/verdict.sh) on canned
# consoles: a run where everything skips, or one script skips, must fail
# (review finding 19: such runs used to count as passed).
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
exit $failed
