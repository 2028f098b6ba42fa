#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
#
# Runs execmem_rs's in-kernel benchmark (debugfs `bench`) in the VM: the
# kernel's own path (execmem_alloc + set_memory_rox [+ text_poke_copy] +
# execmem_free) against execmem_rs, same call, on four workloads: fixed
# 512 B text, the real Debian 6.12 module trace (data/modules-6.12.117.tsv,
# loaded into the module from the repo) loaded once, the same trace
# replayed with churn as the host benchmark replays it (backing/requested
# per class at the end of every phase), and BPF-like sizes. Prints the
# tables; scripts/bench_vm.sh turns them into a CSV and a plot.
#
#   bench.py [N_FIXED] [N_BPF] [N_MODULES]    (default 1000 5000 all)

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from execmem import Session, module_columns, vmstat  # noqa: E402


def main():
    n_fixed = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    n_bpf = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
    n_mod = int(sys.argv[3]) if len(sys.argv) > 3 else 100000
    trace = module_columns()
    with Session("bench") as bench:
        bench.ok("trace clear")
        for _, cols in trace:
            bench.ok("trace add " + " ".join(cols))
        print(f"# {len(trace)} modules of the trace loaded; "
              f"direct_map_level2_splits at start: {vmstat('direct_map_level2_splits') or 'n/a'}")
        for run in (f"workload=fixed n={n_fixed} size=512 write=0",
                    f"workload=fixed n={n_fixed} size=512 write=1",
                    f"workload=trace n={n_mod} write=1",
                    f"workload=real n={n_mod} rounds=5 seed=0 write=1",
                    f"workload=bpf n={n_bpf} write=1"):
            print(f"== bench: run {run}", flush=True)
            print(bench.ok(f"run {run}"), flush=True)


if __name__ == "__main__":
    main()
