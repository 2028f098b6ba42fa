#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# kselftest for execmem_rs: drives /sys/kernel/debug/execmem_rs/ and checks
# what the module reports. Needs root and the module loaded; skips (4)
# otherwise.

here=$(cd "$(dirname "$0")" && pwd)
. "$here/ktap.sh"

D=/sys/kernel/debug/execmem_rs

[ "$(id -u)" = 0 ] || ktap_skip_all "must be run as root"
mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug 2>/dev/null
[ -d "$D" ] || ktap_skip_all "execmem_rs is not loaded ($D missing)"

ktap_header

# --- file modes ---------------------------------------------------------------
ktap_expect "debugfs_dir_mode" "$(stat -c %a "$D")" 700
ktap_expect "selftest_mode" "$(stat -c %a "$D/selftest")" 400

# --- the in-kernel end-to-end probe ---------------------------------------------
probe=$(cat "$D/selftest"); rc=$?
ktap_check "selftest_read" $rc "read returned $rc"
n=0
while IFS= read -r line; do
	case "$line" in
	"ok "*)     n=$((n + 1)); ktap_ok "probe: ${line#ok * }" ;;
	"not ok "*) n=$((n + 1)); ktap_not_ok "probe: ${line#not ok * }" ;;
	esac
done <<<"$probe"
plan=$(sed -n 's/^1\.\.\([0-9]*\)$/\1/p' <<<"$probe")
ktap_expect "probe_plan_complete" "$n" "${plan:-missing}"

ktap_finish
