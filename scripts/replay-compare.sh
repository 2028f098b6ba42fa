#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# One workload on the host and in the kernel: the module-trace replay that
# selftests/bench_replay.py ran through the kernel bench (its "# replay"
# and "# phase=" lines in a VM console log) is replayed by the host
# benchmark with the same modules, rounds and seed; execmem_rs must have
# requested and mapped the same bytes per class at the end of every phase.
#
# Usage: scripts/replay-compare.sh CONSOLE-LOG
set -euo pipefail

cd "$(dirname "$0")/.."
log=$1
params=$(sed -n 's/^# replay \(n=[0-9]* rounds=[0-9]* seed=[0-9]*\)$/\1/p' "$log" | tail -n1)
if [ -z "$params" ]; then
	echo "replay-compare: no '# replay' line in $log (did bench_replay.py run?)"
	exit 1
fi
eval "$params" # n, rounds, seed
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tsv=data/modules-6.12.117.tsv
awk -v n="$n" '/^#|^module\t/ || k++ < n' "$tsv" >"$tmp/tsv"
cargo build --release -q -j2 --bin bench
BENCH_SEED=$seed BENCH_ROUNDS=$rounds target/release/bench --only execmem_rs/real \
	--tsv "$tmp/tsv" --csv /dev/null --phases "$tmp/host" >/dev/null
sed -n 's/^# \(phase=[0-9]* class=[a-z]* requested=[0-9]*\) .*\(execmem_rs=[0-9]*\) .*/\1 \2/p' "$log" >"$tmp/kernel"
echo "replay-compare: $params; kernel $(wc -l <"$tmp/kernel") phase lines, host $(wc -l <"$tmp/host")"
if [ ! -s "$tmp/kernel" ] || ! diff -u "$tmp/host" "$tmp/kernel"; then
	echo "replay-compare: the kernel's replay differs from the host's (- host, + kernel)"
	exit 1
fi
echo "replay-compare: same bytes requested and mapped at every phase"
