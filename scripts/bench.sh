#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Run the execmem_rs benchmark: instruction counts per operation from
# callgrind (each allocator/workload twice: setup only, and setup + the
# measured phase; the difference divided by the op count), then the full
# table with wall-clock times, written to out/bench.csv.
#
# Usage: scripts/bench.sh [OUTDIR]   (default: out)
set -euo pipefail

cd "$(dirname "$0")/.."
OUT=${1:-out}
mkdir -p "$OUT"
command -v valgrind >/dev/null || { echo "bench: valgrind missing (scripts/deps.sh installs it)" >&2; exit 1; }

cargo build --release -q -j1 --bin bench
BIN=target/release/bench
INSTR=$OUT/instr.txt
: >"$INSTR"

ir() { # ARGS... -> total Ir of one callgrind run
	local f
	f=$(mktemp)
	valgrind --tool=callgrind --callgrind-out-file="$f" "$BIN" "$@" >/dev/null 2>&1
	awk '/^(summary|totals):/ {print $2; exit}' "$f"
	rm -f "$f"
}

for w in real bpf fill50 fill90; do
	for a in execmem_rs bpf_prog_pack rox_cache; do
		ops=$("$BIN" --only "$a/$w" | awk '/^ops /{print $4}')
		setup=$(ir --only "$a/$w" --setup-only)
		full=$(ir --only "$a/$w")
		per=$(awk -v f="$full" -v s="$setup" -v o="$ops" 'BEGIN{printf "%.1f", (f-s)/o}')
		echo "$a $w $per" | tee -a "$INSTR"
	done
done

"$BIN" --instr "$INSTR" --csv "$OUT/bench.csv" | tee "$OUT/bench.txt"
