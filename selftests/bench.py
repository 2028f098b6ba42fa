#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
#
# Runs execmem_rs's in-kernel benchmark (debugfs `bench`) in the VM: the
# kernel's own path (execmem_alloc + set_memory_rox [+ text_poke_copy] +
# execmem_free) against execmem_rs, same call, on three workloads: fixed
# 512 B text, the real Debian 6.12 module trace (data/modules-6.12.117.tsv,
# loaded into the module from the repo), and BPF-like sizes. Prints the
# tables; scripts/bench_vm.sh turns them into a CSV and a plot.
#
#   bench.py [N_FIXED] [N_BPF] [N_MODULES]    (default 1000 5000 all)

import os
import sys

D = "/sys/kernel/debug/execmem_rs"
TSV = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "modules-6.12.117.tsv")


def cmd(fd, line):
    os.write(fd, line.encode())
    out = b""
    while chunk := os.read(fd, 1 << 16):
        out += chunk
    return out.decode()


def vmstat(key):
    with open("/proc/vmstat") as f:
        return int(dict(l.split() for l in f)[key])


def main():
    n_fixed = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    n_bpf = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
    n_mod = int(sys.argv[3]) if len(sys.argv) > 3 else 100000
    fd = os.open(f"{D}/bench", os.O_RDWR)
    cmd(fd, "trace clear")
    with open(TSV) as f:
        rows = [l.rstrip("\n").split("\t") for l in f if not l.startswith("#")]
    col = {k: i for i, k in enumerate(rows[0])}
    for r in rows[1:]:
        cmd(fd, "trace add " + " ".join(r[col[k]] for k in ("text", "rodata", "ro_after_init", "data")))
    print(f"# {len(rows) - 1} modules of the trace loaded; "
          f"direct_map_level2_splits at start: {vmstat('direct_map_level2_splits')}")
    for run in (f"workload=fixed n={n_fixed} size=512 write=0",
                f"workload=fixed n={n_fixed} size=512 write=1",
                f"workload=trace n={n_mod} write=1",
                f"workload=bpf n={n_bpf} write=1"):
        print(f"== bench: run {run}", flush=True)
        print(cmd(fd, f"run {run}"), end="", flush=True)
    os.close(fd)


if __name__ == "__main__":
    main()
