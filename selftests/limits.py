#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
#
# kselftest for execmem_rs's resource bounds (review finding 10): one
# session stops at session_cap (EDQUOT), all sessions together at
# global_cap (ENOSPC), never at the OOM killer, and the module range keeps
# room for the kernel: another module still loads. Run in a VM with more
# memory than global_cap, so that the caps, not memory, are what refuses.
#
#   limits.py [MODULE.ko]   a module to insmod while execmem_rs is full
#                           (default: the test kernel's lib/test_kprobes.ko)

import errno
import os
import subprocess
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from execmem import PARAMS, Ktap, Session, param, require_module, stats  # noqa: E402

MIB = 1 << 20


def concurrent_session_cap(t, default):
    """Concurrent allocations in one session (pwrite(2) takes no file
    position lock) stop at session_cap together: with the cap at 64 MiB,
    one of four 48 MiB allocations fits."""
    param("session_cap", 64 * MIB)
    try:
        with Session() as s:
            go = threading.Barrier(4)
            done = []

            def alloc():
                go.wait()
                try:
                    os.pwrite(s.fd, f"alloc data {48 * MIB}".encode(), 0)
                    done.append(0)
                except OSError as e:
                    done.append(e.errno)

            threads = [threading.Thread(target=alloc) for _ in range(4)]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            held = stats()["data.live_bytes"]
    finally:
        param("session_cap", default)
    refused = sorted(errno.errorcode.get(e, e) for e in done if e)
    t.check("10_session_cap_concurrent", done.count(0) == 1 and held == 48 * MIB and
            refused == ["EDQUOT"] * 3,
            f"{done.count(0)} of 4 allocated, {held // MIB} MiB held, refused {refused}")


def main():
    require_module()
    t = Ktap()
    kdir = os.environ.get("EXECMEM_RS_KDIR", "")
    ko = sys.argv[1] if len(sys.argv) > 1 else \
        (os.path.join(kdir, "lib", "test_kprobes.ko") if kdir else "")
    caps = {p: int(param(p)) for p in ("global_cap", "session_cap")} \
        if os.path.isdir(PARAMS) else {}
    t.check("10_parameters", caps.get("global_cap", 0) > 0 and caps.get("session_cap", 0) > 0,
            str(caps))
    if not caps:
        t.finish()
    concurrent_session_cap(t, caps["session_cap"])
    maps0 = stats()["rw.map_failures"]
    sessions, errs = [], []
    try:
        for _ in range(caps["global_cap"] // caps["session_cap"] + 4):
            s = Session()
            sessions.append(s)
            held = 0
            while True:
                err, reply = s.cmd("alloc data 0x1000000")
                if err:
                    errs.append((err, held, reply))
                    break
                held += 16 * MIB
            if err != errno.EDQUOT:
                break
        st = stats()
        quota = [h for e, h, _ in errs if e == errno.EDQUOT]
        t.check("10_session_cap_edquot", quota and all(h <= caps["session_cap"] and
                                                       h + 16 * MIB > caps["session_cap"]
                                                       for h in quota),
                f"{len(quota)} session(s) refused at {quota[:1]} bytes")
        last = errs[-1] if errs else (0, 0, "")
        t.check("10_global_cap_enospc", last[0] == errno.ENOSPC and
                st["total.mapped_bytes"] <= caps["global_cap"],
                f"last refusal {errno.errorcode.get(last[0], last[0])} ({last[2]}); "
                f"mapped {st['total.mapped_bytes'] // MIB} MiB of {caps['global_cap'] // MIB}")
        # The refused request's pack was never mapped: stats counts it.
        t.check("10_global_cap_counted", st["rw.map_failures"] > maps0,
                f"rw.map_failures {maps0} -> {st['rw.map_failures']}")
        if ko:
            r = subprocess.run(["insmod", ko], capture_output=True, text=True)
            t.check("10_another_module_loads", r.returncode == 0,
                    f"insmod {os.path.basename(ko)}: {r.stderr.strip() or 'ok'}")
            if r.returncode == 0:
                name = os.path.basename(ko)[:-3]
                subprocess.run(["rmmod", name], capture_output=True)
        else:
            t.check("10_another_module_loads", False, "no module given")
    finally:
        for s in sessions:
            s.close()
    t.check("10_all_given_back", stats()["total.live"] == 0)
    t.finish()


if __name__ == "__main__":
    main()
