#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# How much the real-workload result depends on the churn's random choices:
# replay it with N seeds (BENCH_SEED; seed 0 is the default run of
# scripts/bench.sh) and print execmem_rs's backing/requested per class at
# the end of every phase (all modules loaded, then each churn round), with
# the two lower bounds beside it (every allocation rounded to 64 B; that
# rounded up to whole 2 MiB packs), then the final and peak ratio and
# page-table entries per class, and how many results are within the 1.02
# target.
#
# Usage: scripts/bench_seeds.sh [N]   (default 8)
set -euo pipefail

cd "$(dirname "$0")/.."
n=${1:-8}
cargo build --release -q -j2 --bin bench
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for ((seed = 0; seed < n; seed++)); do
	BENCH_SEED=$seed target/release/bench --csv /dev/null >"$out/$seed"
done
echo "backing/requested at the end of each phase (granule / packs: the lower bounds)"
printf '%-5s %-7s %-19s %-19s %-19s\n' seed phase rx ro rw
for ((seed = 0; seed < n; seed++)); do
	awk -v s="$seed" '$1 == "phase" && $4 == "execmem" {
		k = $2; r[k] = r[k] sprintf(" %.3f %.3f %.3f  ", $7, $8, $9)
		if (!(k in seen)) { seen[k] = 1; order[++m] = k } }
		END { for (i = 1; i <= m; i++) printf "%-5s %-7s%s\n", s, order[i], r[order[i]] }' "$out/$seed"
done | tee "$out/phases"
awk '{ for (i = 3; i <= NF; i += 3) { n++; if ($i <= 1.02) ok++; else if ($(i + 2) > 1.02) bound++ } }
	END { printf "%d of %d phase x class results within 1.02 (%d above it where the packs bound is too)\n", ok, n, bound }' "$out/phases"
echo
printf '%-5s %-5s %8s %8s %6s %6s\n' seed class final peak ptes peak
for ((seed = 0; seed < n; seed++)); do
	awk -v s="$seed" '/^== workload/ { w = $3 } w == "real" && $1 == "execmem_rs" {
		printf "%-5s %-5s %8s %8s %6s %6s\n", s, $2, $5, $7, $10, $11 }' "$out/$seed"
done | tee "$out/rows"
awk '$2 != "all" { n++; if ($3 <= 1.02) ok++ }
	END { printf "%d of %d class results within 1.02 at the end\n", ok, n }' "$out/rows"
