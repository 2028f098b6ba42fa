#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
#
# Turns the tables of debugfs `bench` (as printed by selftests/bench.py)
# into a CSV and a PNG: p50 per operation, execmem_rs vs the kernel's path.
#   plot_bench.py VM-BENCH.TXT OUT.CSV OUT.PNG

import csv
import re
import sys


def parse(path):
    rows, foot, wl = [], [], None
    for line in open(path):
        m = re.match(r"workload=(\w+) allocations=(\d+) write=(\d)", line)
        if m:
            wl = f"{m[1]}{'+write' if m[3] == '1' else ''} ({m[2]})"
            continue
        m = re.match(r"(baseline|execmem_rs)\s+(\S+)\s+(\d+)\s+(\d+)\s+(\d+)"
                     r"(?:\s+(\d+)\s+(\d+)\s+(\d+))?$", line.strip())
        if m and wl:
            rows.append({"workload": wl, "allocator": m[1], "op": m[2], "count": int(m[3]),
                         "p50_ns": int(m[4]), "p99_ns": int(m[5]),
                         "max_pokes": int(m[6] or 0), "max_bytes": int(m[7] or 0),
                         "poked": int(m[8] or 0)})
            continue
        m = re.match(r"(baseline|execmem_rs)\s+(pages=.*)", line.strip())
        if m and wl:
            kv = dict(re.findall(r"(\w+)=(\([^)]*\)|\S+)", m[2]))
            foot.append({"workload": wl, "allocator": m[1], "pages": int(kv["pages"]),
                         "packs": int(kv["packs"]), "ptes": int(kv["ptes"]),
                         "splits": int(kv["direct_map_level2_splits"]),
                         "splits_after_alloc": kv.get("splits_after_alloc", ""),
                         "splits_after_free": kv.get("splits_after_free", ""),
                         "splits_after_release": kv.get("splits_after_release", "")})
    return rows, foot


def main():
    src, out_csv, out_png = sys.argv[1:4]
    rows, foot = parse(src)
    with open(out_csv, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["workload", "allocator", "op", "count", "p50_ns", "p99_ns", "max_pokes",
                    "max_poke_bytes", "poked_calls", "pages", "packs", "ptes",
                    "direct_map_level2_splits", "splits_after_alloc", "splits_after_free",
                    "splits_after_release"])
        for r in rows:
            fp = next((x for x in foot if x["workload"] == r["workload"] and
                       x["allocator"] == r["allocator"]), {})
            w.writerow([r["workload"], r["allocator"], r["op"], r["count"], r["p50_ns"], r["p99_ns"],
                        r["max_pokes"], r["max_bytes"], r["poked"],
                        fp.get("pages"), fp.get("packs"), fp.get("ptes"), fp.get("splits"),
                        fp.get("splits_after_alloc"), fp.get("splits_after_free"),
                        fp.get("splits_after_release")])
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    combos = [r for r in rows if r["op"] in ("alloc+free", "alloc+write+free")]
    labels = sorted({r["workload"] for r in combos}, key=lambda x: [c["workload"] for c in combos].index(x))
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    x = range(len(labels))
    for i, alloc in enumerate(("baseline", "execmem_rs")):
        vals = [next((r["p50_ns"] / 1000 for r in combos if r["workload"] == l and r["allocator"] == alloc), 0)
                for l in labels]
        ax.bar([k + i * 0.4 for k in x], vals, 0.4,
               label="kernel execmem path" if alloc == "baseline" else "execmem_rs")
        for k, v in zip(x, vals):
            ax.text(k + i * 0.4, v, f"{v:.1f}", ha="center", va="bottom", fontsize=7)
    ax.set_xticks([k + 0.2 for k in x], labels, fontsize=7, rotation=10)
    ax.set_ylabel("p50 per allocation, alloc..free (µs, TCG)")
    ax.set_yscale("log")
    ax.legend(fontsize=8, loc="lower left")
    ax.set_title("time per allocation (same VM run)")
    for i, alloc in enumerate(("baseline", "execmem_rs")):
        vals = [next((f["ptes"] for f in foot if f["workload"] == l and f["allocator"] == alloc), 0)
                for l in labels]
        ax2.bar([k + i * 0.4 for k in x], vals, 0.4)
        for k, v in zip(x, vals):
            ax2.text(k + i * 0.4, v, str(v), ha="center", va="bottom", fontsize=7)
    ax2.set_xticks([k + 0.2 for k in x], labels, fontsize=7, rotation=10)
    ax2.set_yscale("log")
    ax2.set_ylabel("page-table entries at peak")
    ax2.set_title("mappings (4 KiB PTE vs 2 MiB PMD)")
    fig.suptitle("execmem_rs vs execmem_alloc+set_memory_rox(+text_poke_copy)+execmem_free")
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)


if __name__ == "__main__":
    main()
