#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
#
# The demo of the README's main command, run inside the VM: "load" the real
# Debian 6.12 modules (all 4230 by default) through execmem_rs (one allocation per module and
# memory type, sizes from data/modules-6.12.117.tsv, the first 64 bytes of
# each written as a loader would), unload and reload a random 30 %, then
# show what it cost: stats, the packs picture, and what per-allocation
# page-rounded vmalloc (the kernel's path today) would have needed.

import os
import random
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from execmem import D, TRACE_TYPES, TSV, Session, modules_trace  # noqa: E402

PAGE = 4096


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100000
    rows = modules_trace(n)
    ctl = Session()
    loaded = {}

    def load(row):
        name, sizes = row
        ids = []
        for ty in TRACE_TYPES:
            size = sizes[ty]
            if size:
                id_ = ctl.ok(f"alloc {ty} {size}")
                ctl.ok(f"fill {id_} 0 {min(size, 64)} 0x90")
                ids.append((id_, size))
        loaded[name] = ids

    for row in rows:
        load(row)
    rng = random.Random(42)
    churn = rng.sample(rows, len(rows) * 3 // 10)
    for row in churn:
        for id_, _ in loaded.pop(row[0]):
            ctl.ok(f"free {id_}")
    for row in churn:
        load(row)

    sizes = [s for ids in loaded.values() for _, s in ids]
    with open(f"{D}/stats") as f:
        st = dict(line.split() for line in f)
    print(f"== loaded {len(loaded)} modules ({len(sizes)} allocations, {len(churn)} unloaded and "
          f"reloaded once) from {os.path.basename(TSV)}")
    print(f"== cat {D}/stats (non-zero)")
    for k, v in st.items():
        if v != "0":
            print(f"{k} {v}")
    print(f"== cat {D}/packs   (the first 3 packs of each class)")
    with open(f"{D}/packs") as f:
        blocks = f.read().split("\npack ")
    shown = {}
    for b in blocks:
        cls = b.removeprefix("pack ").split(".")[0]
        shown[cls] = shown.get(cls, 0) + 1
        if shown[cls] <= 3:
            print(("pack " + b.removeprefix("pack ")).rstrip("\n"))
    for cls, k in shown.items():
        if k > 3:
            print(f"... {k - 3} more {cls} packs")
    req = sum(sizes)
    pages = sum((s + PAGE - 1) // PAGE for s in sizes)
    backing = int(st["total.backing_bytes"])
    over = int(st["total.overflow_pages"])
    # One PMD entry per 2 MiB of packs and extents (when all are mapped
    # 2M), one PTE per overflow page.
    pmds = (backing - over * PAGE) // (2 << 20)
    print("== summary")
    print(f"requested bytes             {req}")
    print(f"execmem_rs backing bytes    {backing} in {st['total.packs']} packs "
          f"({st['total.huge_packs']} mapped 2M) and {st['total.overflow_extents']} overflow "
          f"extents ({over} pages): ratio {backing / req:.3f}, {pmds + over} page-table entries")
    print(f"per-allocation vmalloc      {pages * PAGE} bytes in {pages} pages (+{len(sizes)} guard "
          f"pages): ratio {pages * PAGE / req:.3f}, {pages} page-table entries")
    ctl.close()
    with open(f"{D}/stats") as f:
        live = dict(line.split() for line in f)["total.live"]
    print(f"== closed the session: total.live {live}")
    return 0 if live == "0" else 1


if __name__ == "__main__":
    sys.exit(main())
