#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
#
# kselftest for the in-kernel bench's module-trace replay (debugfs `bench`,
# workload=real): the rows of data/modules-6.12.117.tsv go in as they are
# and are parsed by the shared workload code; the replay (load every
# module, then churn rounds, the host benchmark's ModuleChurn) reports
# backing/requested per class at the end of every phase. Checks the
# phases, that the requested bytes are the trace's core sections (the
# churn reloads what it unloaded), that both allocators map at least that,
# that bad input is refused with a reason and that the largest run
# allowed succeeds; prints the phase lines for
# scripts/replay-compare.sh, which checks that the host replay maps the
# same bytes at every phase (run it on a freshly loaded module: pack slots
# freed by earlier users are reused last-freed first, which changes
# placement). KTAP out.

import errno
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from execmem import Ktap, Session, module_columns, require_module  # noqa: E402

N = 300
ROUNDS = 2
SEED = 3
# Core (kept until unload) size columns of a row, by class: text | rodata +
# ro_after_init | data (init_text and init_data are freed after init).
CORE = {"rx": (0,), "ro": (2, 3), "rw": (4,)}


def main():
    require_module()
    t = Ktap()
    rows = module_columns(N)
    with Session("bench") as b:
        b.ok("trace clear")
        err, reply = b.cmd("run workload=real n=10")
        t.check("real_needs_a_trace", err == errno.EINVAL and "no trace" in reply, reply)
        for _, cols in rows:
            b.ok("trace add " + " ".join(cols))
        bad = rows[0][1][:]
        err, reply = b.cmd("trace add " + " ".join(bad[:11]))
        t.check("trace_add_11_columns", err == errno.EINVAL and "6 sizes" in reply, reply)
        bad[7] = "48"
        err, reply = b.cmd("trace add " + " ".join(bad))
        t.check("trace_add_bad_alignment", err == errno.EINVAL and "power of two" in reply, reply)
        err, reply = b.cmd("run workload=real rounds=21")
        t.check("rounds_bound", err == errno.EINVAL and "rounds" in reply, reply)

        # scripts/replay-compare.sh replays the same on the host and
        # compares what it maps at every phase with the "# phase=" lines.
        print(f"# replay n={N} rounds={ROUNDS} seed={SEED}")
        out = b.ok(f"run workload=real n={N} rounds={ROUNDS} seed={SEED} write=1")
        head = out.splitlines()[0]
        phases = [dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
                  for line in out.splitlines() if line.startswith("phase=")]
        # Two "ratio" keys per line: keep both.
        ratios = [re.findall(r"ratio=([0-9.]+)", line) for line in out.splitlines()
                  if line.startswith("phase=")]
        t.check("real_header", head.startswith("workload=real allocations="), head)
        seen = sorted({(int(p["phase"]), p["class"]) for p in phases})
        t.check("every_phase_and_class",
                seen == [(ph, c) for ph in range(ROUNDS + 1) for c in ("ro", "rw", "rx")],
                str(seen))
        want = {c: sum(int(cols[i]) for _, cols in rows for i in idx) for c, idx in CORE.items()}
        got = {(int(p["phase"]), p["class"]): int(p["requested"]) for p in phases}
        t.check("requested_is_the_core_sections",
                all(got.get((ph, c)) == want[c] for ph in range(ROUNDS + 1) for c in CORE),
                f"want {want} got {got}")
        # Both map at least what was asked (at 300 modules execmem_rs maps
        # more than the kernel's path: a class of 5-9 MB rounds up to 2 MiB
        # packs; the host replay shows the same, scripts/replay-compare.sh).
        t.check("backing_covers_requested",
                phases and ratios and all(int(p["execmem_rs"]) >= int(p["requested"]) and
                    int(p["baseline"]) >= int(p["requested"]) for p in phases) and
                all(len(r) == 2 for r in ratios),
                "\n".join(line for line in out.splitlines() if line.startswith("phase=")))
        for line in out.splitlines():
            if line.startswith("phase="):
                print("# " + line)
        # The largest run allowed: its per-run vectors (steps, live
        # handles, timings) are above kmalloc's limit and must not WARN
        # (they did, a splat the VM runner catches).
        err, reply = b.cmd("run workload=fixed n=100000 size=64")
        t.check("largest_run", err == 0 and "allocations=100000" in reply,
                reply.splitlines()[0] if reply else "")
    t.finish()


if __name__ == "__main__":
    main()
