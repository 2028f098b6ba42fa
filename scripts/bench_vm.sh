#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The in-kernel benchmark end to end: build, boot the base test kernel, run
# selftests/bench.py (execmem_rs vs the kernel's execmem path, same call),
# then write Documentation/bench/vm-bench.{txt,csv,png}
# (vm-bench-arm64.* with ARCH=arm64: the arm64 kernel under
# qemu-system-aarch64, against arm64's own execmem path).
#
#   [ARCH=arm64] scripts/bench_vm.sh [N_FIXED] [N_BPF] [N_MODULES]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
. scripts/env.sh
flavour=base name=vm-bench
[ "${ARCH:-}" != arm64 ] || flavour=arm64 name=vm-bench-arm64
make -s module ARCH="${ARCH:-}"
out=Documentation/bench
mkdir -p "$out"
selftests/run_vm.sh --flavour "$flavour" --memory 2G --timeout 1800 -- selftests/bench.py "$@" |
	tee "$out/$name.txt"
# matplotlib (PyPI) for the plot, in the project's venv.
"$TOOLS/venv/bin/python" -c 'import matplotlib' 2>/dev/null ||
	"$TOOLS/venv/bin/pip" install -q "matplotlib==3.9.2"
"$TOOLS/venv/bin/python" scripts/plot_bench.py "$out/$name.txt" "$out/$name.csv" "$out/$name.png"
