#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# kselftest: one run of execmem_rs's in-kernel stress runner over all types.
#   stress.sh [OPS] [THREADS] [SEED]    (default 200000 ops, 2 threads, seed 1)
# Passes when the run completes with 0 corruptions and 0 errors, and stats
# are back to zero afterwards.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/ktap.sh"
D=/sys/kernel/debug/execmem_rs
ops=${1:-200000} threads=${2:-2} seed=${3:-1}

[ "$(id -u)" = 0 ] || ktap_skip_all "must be run as root"
[ -d "$D" ] || ktap_skip_all "execmem_rs is not loaded"
ktap_header
ktap_plan 7

stat_of() { awk -v k="$1" '$1 == k { print $2 }' "$D/stats"; }
allocs0=$(stat_of total.allocs) frees0=$(stat_of total.frees)
echo "threads=$threads ops=$ops seed=$seed types=all max_size=65536" >"$D/stress"
ktap_check "stress_run" $? "threads=$threads ops=$ops seed=$seed"
report=$(cat "$D/stress")
echo "$report" | sed 's/^/# /'
val() { awk -v k="$1" '$1 == k { print $2 }' <<<"$report"; }
ktap_expect "stress_all_ops_done" "$(val ops)" "$ops"
ktap_expect "stress_no_corruptions" "$(val corruptions)" 0
# The runner's own counts, against the allocator's: every allocation it
# reports went through the allocator and was freed there.
a=$(val allocs) f=$(val frees)
allocs1=$(stat_of total.allocs) frees1=$(stat_of total.frees)
da=$(( ${allocs1:-0} - ${allocs0:-0} )) df=$(( ${frees1:-0} - ${frees0:-0} ))
ktap_check "stress_allocs_equal_frees" $(( ${a:-0} > 0 && a == f && da == a && df == a ? 0 : 1 )) \
	"runner allocs $a frees $f; stats allocs +$da frees +$df"
errs=$(awk '$1 ~ /^errors\./ { s += $2 } END { print s + 0 }' <<<"$report")
ktap_expect "stress_no_errors" "$errs" 0
execs=$(val execs) seals=$(val seals)
ktap_check "stress_exercised_exec_and_seal" $(( ${execs:-0} > 0 && ${seals:-0} > 0 ? 0 : 1 )) \
	"execs ${execs:-none} seals ${seals:-none}"
live=$(awk '$1 == "total.live" { print $2 }' "$D/stats")
ktap_expect "stress_stats_back_to_zero" "$live" 0
ns=$(val elapsed_ns)
echo "# $ops ops in $(( ${ns:-0} / 1000000 )) ms"
ktap_finish
