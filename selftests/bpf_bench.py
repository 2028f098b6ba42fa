#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
#
# The real JIT, served vs stock, in one (freshly booted) VM: load N live
# socket filters (10..400 instructions from a fixed seed, fds kept open, as
# in Aaron Lu's direct-map experiment) through bpf(BPF_PROG_LOAD), on the
# kernel's own bpf_prog_pack path and served by execmem_rs, and print per
# run: load latency p50/p99, direct-map level-2/level-3 split deltas, the
# DirectMap4k delta, page-table entries mapping BPF text, and packs. Which
# goes first alternates with the seed (an odd seed: stock first), and each
# run starts only once the previous one's programs are freed (the kernel
# frees them from a kworker after an RCU grace period), so that neither
# pays for the other's frees. execmem_rs's huge packs split no direct-map
# entry, so they leave the stock run's split count as it would be.
#
# Load latency varies by +-30 % between boots under TCG (the verifier and
# the JIT dominate it), so a last pass compares it where drift cancels: N
# more loads alternating stock and served, one by one, in the same VM, of
# N / 2 program sizes each loaded once on each side (a load's cost grows
# with its program: the two sides must load the same programs), with the
# median of the per-program differences; then the same pass with stock on
# both sides, a control that shows how far the ratio of two p50s moves
# when nothing differs. Under run_vm.sh --icount the times read are
# instruction counts (1 ns each).
# execmem_rs's own text_poke calls on the served loads' path are counted
# too (the deterministic side: 0 expected, the JIT's own copy is the
# kernel's).
#
#   bpf_bench.py N [SEED]
#   bpf_bench.py --check-schedule   (host, make check: both sides of the
#                                    comparison load the same programs)

import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import bpf  # noqa: E402
from execmem import D, meminfo, splits, stats  # noqa: E402


def stock_ptes():
    """Pages of the kernel's own BPF packs: vmalloc areas made by
    execmem_alloc() for bpf_prog_pack (/proc/vmallocinfo names the caller
    alloc_new_pack, or execmem_alloc where it is not inlined; no other
    module is loaded during the run), 4 KiB each."""
    pages = packs = 0
    with open("/proc/vmallocinfo") as f:
        for line in f:
            if re.search(r" (alloc_new_pack|execmem_alloc|execmem_vmalloc)\+", line):
                m = re.search(r"pages=(\d+)", line)
                if m:
                    pages += int(m.group(1))
                    packs += 1
    return pages, packs


def served_ptes():
    """execmem_rs's rx packs: one PMD entry per 2 MiB-mapped pack, one PTE
    per page otherwise."""
    ptes = packs = 0
    with open(f"{D}/packs") as f:
        for line in f:
            m = re.match(r"pack rx\.\d+ class=rx mapping=(2M|4K) size=(\d+)", line)
            if m:
                packs += 1
                ptes += int(m.group(2)) // (2 << 20) if m.group(1) == "2M" else int(m.group(2)) // 4096
    return ptes, packs


def run(mode, n, seed):
    with open(f"{D}/serve", "w") as f:
        f.write("bpf" if mode == "served" else "none")
    s0, dm0 = splits(), meminfo("DirectMap4k")
    p0 = stock_ptes()[0]
    k0 = our_pokes()
    lat, fds = [], []
    for size in bpf.sizes(n, seed):
        t0 = time.monotonic_ns()
        fd, ret = bpf.load(size)
        lat.append(time.monotonic_ns() - t0)
        fds.append((fd, ret))
    ok = all(bpf.run(fd) == ret for fd, ret in fds[:: max(1, n // 64)])
    s1, dm1 = splits(), meminfo("DirectMap4k")
    k1 = our_pokes()
    ptes, packs = (stock_ptes()[0] - p0, stock_ptes()[1]) if mode == "stock" else served_ptes()
    lat.sort()
    print(f"bpf-bench mode={mode} n={n} p50_us={lat[n // 2] / 1000:.1f} "
          f"p99_us={lat[n * 99 // 100] / 1000:.1f} l2_splits={s1[0] - s0[0]} "
          f"l3_splits={s1[1] - s0[1]} directmap4k_kb={dm1 - dm0} ptes={ptes} packs={packs} "
          f"our_pokes={k1 - k0} results_ok={int(ok)}", flush=True)
    for fd, _ in fds:
        os.close(fd)
    with open(f"{D}/serve", "w") as f:
        f.write("none")
    settle(mode, p0)


def our_pokes():
    """text_poke calls execmem_rs made on callers' paths (not its refill
    worker's), all classes."""
    st = stats()
    return sum(st[f"{c}.pokes"] - st[f"{c}.refill_pokes"] for c in ("rx", "ro"))


def schedule(n, seed):
    """The interleaved pass's n loads in order, as (side, program size):
    n / 2 sizes, each loaded once on each side, which side goes first
    alternating (a load's cost grows with its program, so the two sides
    must load the same programs)."""
    loads = []
    for i, size in enumerate(bpf.sizes(n // 2, seed + 1000)):
        for side in ("stock", "served") if i % 2 == 0 else ("served", "stock"):
            loads.append((side, size))
    return loads


def check_schedule():
    """Host check (make check): the interleaved pass loads the same
    programs on both sides, in adjacent pairs of one program (what the
    per-program differences pair up), each side first in half of them."""
    bad = 0
    cases = [(n, seed) for n in (2, 6, 512, 1024, 2048) for seed in (1, 2, 3)]
    for k, (n, seed) in enumerate(cases, 1):
        loads = schedule(n, seed)
        sizes = {side: sorted(s for d, s in loads if d == side) for side in ("stock", "served")}
        firsts = [loads[i][0] for i in range(0, len(loads), 2)]
        paired = all(loads[i][1] == loads[i + 1][1] and loads[i][0] != loads[i + 1][0]
                     for i in range(0, len(loads) - 1, 2))
        ok = (len(loads) == n and sizes["stock"] == sizes["served"] and paired
              and abs(firsts.count("stock") - firsts.count("served")) <= 1)
        bad += not ok
        print(f"{'ok' if ok else 'not ok'} {k} schedule n={n} seed={seed}: "
              f"{len(sizes['stock'])} stock and {len(sizes['served'])} served loads, "
              f"same programs: {sizes['stock'] == sizes['served']}")
    return bad == 0


def interleaved(n, seed, control=False):
    """The n loads of schedule(), stock and served alternating over the
    same programs; prints latency p50/p99 of each side and the median
    of the per-program differences (served - stock). With control, both
    sides are stock (an A/A run): what the same comparison reads when
    nothing differs, the noise floor of its ratio."""
    lat = {"stock": [], "served": []}
    serve = {"stock": "none", "served": "none" if control else "bpf"}
    fds = []
    p0 = stock_ptes()[0]
    for side, size in schedule(n, seed):
        with open(f"{D}/serve", "w") as f:
            f.write(serve[side])
        t0 = time.monotonic_ns()
        fd, _ = bpf.load(size)
        lat[side].append(time.monotonic_ns() - t0)
        fds.append(fd)
    for fd in fds:
        os.close(fd)
    with open(f"{D}/serve", "w") as f:
        f.write("none")
    # The next pass starts once both sides' programs are freed.
    settle("stock", p0)
    settle("served", 0)
    d = sorted(b - a for a, b in zip(lat["stock"], lat["served"]))
    q = {m: sorted(v) for m, v in lat.items()}
    p = {m: (v[len(v) // 2] / 1000, v[len(v) * 99 // 100] / 1000) for m, v in q.items()}
    tag = "bpf-bench-control" if control else "bpf-bench-pair"
    print(f"{tag} n={n} stock_p50_us={p['stock'][0]:.1f} served_p50_us={p['served'][0]:.1f} "
          f"stock_p99_us={p['stock'][1]:.1f} served_p99_us={p['served'][1]:.1f} "
          f"p50_ratio={p['served'][0] / p['stock'][0]:.3f} delta_p50_us={d[len(d) // 2] / 1000:.2f}",
          flush=True)


def settle(mode, p0):
    """Waits (up to 20 s) until the run's programs are freed: the stock
    pack pages gone, or nothing served live."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < 20:
        if mode == "stock":
            done = stock_ptes()[0] <= p0
        else:
            with open(f"{D}/serve") as f:
                done = re.search(r"^bpf\.live 0$", f.read(), re.M) is not None
        if done:
            break
        time.sleep(0.1)
    time.sleep(1)


def main():
    if sys.argv[1:] == ["--check-schedule"]:
        sys.exit(0 if check_schedule() else 1)
    n = int(sys.argv[1])
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    bpf.allow_fds(n)
    with open("/proc/sys/net/core/bpf_jit_enable", "w") as f:
        f.write("1\n")
    for mode in ("stock", "served") if seed % 2 else ("served", "stock"):
        run(mode, n, seed)
    interleaved(n, seed)
    interleaved(n, seed, control=True)


if __name__ == "__main__":
    main()
