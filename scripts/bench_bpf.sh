#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The real BPF JIT, served by execmem_rs vs the kernel's own bpf_prog_pack
# path: N = 512, 1024, 2048 live socket filters, each N in REPS freshly
# booted VMs (2 GiB: the direct map is all 2 MiB pages, so the level-2
# split counter sees every split; a fresh boot, because a split is never
# undone), stock and served in each, then both interleaved load by load for
# the latency comparison (selftests/bpf_bench.py); then the same runs with
# the guest's clock counting instructions (run_vm.sh --icount), where a
# latency is what the load executed, whatever the host's load and TCG's
# own costs. Writes Documentation/bench/bpf-bench.{txt,csv,png}.
#
#   scripts/bench_bpf.sh [REPS]      (default 3)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
. scripts/env.sh
reps=${1:-3}
make -s module
out=Documentation/bench
mkdir -p "$out"
: >"$out/bpf-bench.txt"
for clock in wall icount; do
	opt=()
	[ "$clock" = wall ] || opt=(--icount)
	for n in 512 1024 2048; do
		for rep in $(seq "$reps"); do
			selftests/run_vm.sh "${opt[@]}" --memory 2G --timeout 900 -- \
				selftests/bpf_bench.py "$n" "$rep" | grep "^bpf-bench" |
				sed "s/\$/ rep=$rep clock=$clock/" | tee -a "$out/bpf-bench.txt"
		done
	done
done
"$TOOLS/venv/bin/python" -c 'import matplotlib' 2>/dev/null ||
	"$TOOLS/venv/bin/pip" install -q "matplotlib==3.9.2"
"$TOOLS/venv/bin/python" scripts/plot_bpf_bench.py "$out/bpf-bench.txt" "$out/bpf-bench.csv" \
	"$out/bpf-bench.png"
