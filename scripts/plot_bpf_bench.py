#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
#
# Turns selftests/bpf_bench.py's lines (collected by scripts/bench_bpf.sh)
# into a CSV, a per-N summary (medians over the repetitions) and a PNG.
# Each line carries the guest's clock: "wall" (time, under TCG) or "icount"
# (QEMU -icount shift=0: 1 ns per instruction executed, so a latency is an
# instruction count).
#   plot_bpf_bench.py BPF-BENCH.TXT OUT.CSV OUT.PNG

import csv
import statistics
import sys

KEYS = ["clock", "mode", "n", "rep", "p50_us", "p99_us", "l2_splits", "l3_splits", "directmap4k_kb",
        "ptes", "packs", "our_pokes", "results_ok"]
# The interleaved latency pass and its stock/stock control: one row per
# side, mode "stock-interleaved"/"served-interleaved" or
# "stock-control"/"served-control", latency columns only.


def parse(path):
    rows = []
    for line in open(path):
        kv = dict(w.split("=", 1) for w in line.split()[1:])
        kv.setdefault("clock", "wall")
        if line.startswith("bpf-bench "):
            rows.append({k: (kv[k] if k in ("mode", "clock") else float(kv[k])) for k in KEYS})
        elif line.startswith(("bpf-bench-pair ", "bpf-bench-control ")):
            kind = "interleaved" if line.startswith("bpf-bench-pair ") else "control"
            for side in ("stock", "served"):
                row = {k: "" for k in KEYS}
                row.update(clock=kv["clock"], mode=f"{side}-{kind}", n=float(kv["n"]),
                           rep=float(kv["rep"]),
                           p50_us=float(kv[f"{side}_p50_us"]), p99_us=float(kv[f"{side}_p99_us"]))
                # Not a CSV column: the median per-program difference
                # (served - stock).
                row["delta_p50_us"] = float(kv.get("delta_p50_us", "nan"))
                rows.append(row)
    return rows


def pairs(rows, clock, kind="interleaved"):
    """Per N: medians over repetitions of the interleaved p50/p99, the
    per-run served/stock p50 ratios and per-program differences, on one
    clock (kind "control": the stock/stock pass)."""
    out = {}
    rows = [r for r in rows if r["clock"] == clock]
    for n in sorted({r["n"] for r in rows}):
        st = {r["rep"]: r for r in rows if r["n"] == n and r["mode"] == f"stock-{kind}"}
        sv = {r["rep"]: r for r in rows if r["n"] == n and r["mode"] == f"served-{kind}"}
        reps = sorted(set(st) & set(sv))
        if reps:
            out[n] = {
                "reps": len(reps),
                "stock_p50": statistics.median(st[k]["p50_us"] for k in reps),
                "served_p50": statistics.median(sv[k]["p50_us"] for k in reps),
                "stock_p99": statistics.median(st[k]["p99_us"] for k in reps),
                "served_p99": statistics.median(sv[k]["p99_us"] for k in reps),
                "ratios": [sv[k]["p50_us"] / st[k]["p50_us"] for k in reps],
                "deltas": [sv[k]["delta_p50_us"] for k in reps],
            }
    return out


def summary(rows):
    """Per N and side: medians over the wall-clock runs' repetitions."""
    out = []
    rows = [r for r in rows if r["clock"] == "wall"]
    for n in sorted({r["n"] for r in rows}):
        for mode in ("stock", "served"):
            rs = [r for r in rows if r["n"] == n and r["mode"] == mode]
            if rs:
                med = {k: statistics.median(r[k] for r in rs) for k in KEYS
                       if k not in ("clock", "mode", "rep") and all(r[k] != "" for r in rs)}
                med.update(mode=mode, reps=len(rs),
                           l2_range=f"{min(r['l2_splits'] for r in rs):g}-{max(r['l2_splits'] for r in rs):g}")
                out.append(med)
    return out


def main():
    src, out_csv, out_png = sys.argv[1:4]
    rows = parse(src)
    with open(out_csv, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(KEYS)
        for r in rows:
            w.writerow([r[k] for k in KEYS])
    summ = summary(rows)
    for s in summ:
        print(f"n={s['n']:g} {s['mode']:<6} reps={s['reps']} p50_us={s['p50_us']:.1f} "
              f"p99_us={s['p99_us']:.1f} l2_splits={s['l2_splits']:g} (range {s['l2_range']}) "
              f"l3_splits={s['l3_splits']:g} directmap4k_kb={s['directmap4k_kb']:g} "
              f"ptes={s['ptes']:g} packs={s['packs']:g} our_pokes={s.get('our_pokes', 0):g}")
    pair = {clock: pairs(rows, clock) for clock in ("wall", "icount")}
    control = {clock: pairs(rows, clock, "control") for clock in ("wall", "icount")}
    for clock, unit, what in (("wall", "us", "us"), ("icount", "kinsn", "k instructions")):
        for n, p in pair[clock].items():
            print(f"n={n:g} interleaved clock={clock} reps={p['reps']} p50_{unit} "
                  f"stock={p['stock_p50']:.1f} served={p['served_p50']:.1f} p99_{unit} "
                  f"stock={p['stock_p99']:.1f} served={p['served_p99']:.1f} served/stock p50 per run: "
                  + " ".join(f"{x:.3f}" for x in p["ratios"])
                  + f" (median {statistics.median(p['ratios']):.3f}); per-program difference "
                  + " ".join(f"{x:+.1f}" for x in p["deltas"])
                  + f" {what}")
            c = control[clock].get(n)
            if c:
                print(f"n={n:g} control clock={clock} (stock on both sides) p50 ratio per run: "
                      + " ".join(f"{x:.3f}" for x in c["ratios"])
                      + f" (median {statistics.median(c['ratios']):.3f}); per-program difference "
                      + " ".join(f"{x:+.1f}" for x in c["deltas"]) + f" {what}")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    ns = sorted({s["n"] for s in summ})
    fig, axes = plt.subplots(1, 4, figsize=(17, 4))
    for ax, key, title, log in ((axes[0], "wall", "load p50 (us, TCG, interleaved)", False),
                                (axes[1], "icount", "load p50 (k instructions, icount)", False),
                                (axes[2], "l2_splits", "direct-map 2 MiB splits", False),
                                (axes[3], "ptes", "page-table entries for BPF text", True)):
        for i, mode in enumerate(("stock", "served")):
            if key in pair:
                vals = [round(pair[key][n][f"{mode}_p50"]) if n in pair[key] else 0 for n in ns]
            else:
                vals = [next((s[key] for s in summ if s["n"] == n and s["mode"] == mode), 0)
                        for n in ns]
            ax.bar([k + i * 0.4 for k in range(len(ns))], vals, 0.4,
                   label="bpf_prog_pack (stock)" if mode == "stock" else "execmem_rs (served)")
            for k, v in enumerate(vals):
                ax.text(k + i * 0.4, v, f"{v:g}", ha="center", va="bottom", fontsize=7)
        ax.set_xticks([k + 0.2 for k in range(len(ns))], [f"N={n:g}" for n in ns])
        ax.set_title(title, fontsize=9)
        if log:
            ax.set_yscale("log")
    axes[0].legend(fontsize=7)
    fig.suptitle("live BPF socket filters through bpf(BPF_PROG_LOAD), medians of fresh boots")
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)


if __name__ == "__main__":
    main()
