#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
#
# kselftest: the kernel's own users of executable memory served by
# execmem_rs, judged by the kernel's own test suites.
#
#   consumers.py bpf       lib/test_bpf.ko with the JIT on, stock then served
#                          (summary lines identical, >= M served
#                          allocations); the serve parameter switches in
#                          sysfs (a bad value EINVAL); lifecycle: 100 programs served,
#                          serve off, rmmod refused, programs closed, rmmod
#                          succeeds, reload
#   consumers.py bpf-served
#                          the same, without the stock run: every summary
#                          line "0 FAILED", every program JIT'ed and served
#                          (for the debug kernel, where a test_bpf run takes
#                          minutes and the base kernel already compared)
#   consumers.py kprobes   lib/test_kprobes.ko (KUnit) served: every case
#                          passes; serve off; rmmod stays refused, because
#                          kprobes keeps its last insn page for ever (run
#                          with the VM runner's --no-unload)
#   consumers.py xdp       an XDP program run with repeat > 1 served: the
#                          kernel's XDP dispatcher allocates its image once
#                          and never frees it, so with serve off and the
#                          program closed, rmmod stays refused (--no-unload)
#   consumers.py stress N  N BPF programs loaded, run and closed while the
#                          stress runner runs: every result right; then
#                          rmmod (nothing live, a clean exit) and insmod
#
# Needs $EXECMEM_RS_KDIR (the test kernel's tree, for its test modules) and
# $EXECMEM_RS_KO (this module, to reload it).

import errno
import os
import re
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import bpf  # noqa: E402
import kmsg  # noqa: E402
from execmem import (D, REFILL_BOUND_NS, Ktap, Session, keyvalues, module_file, param,  # noqa: E402
                     require_module, stats, stress)

KDIR = os.environ.get("EXECMEM_RS_KDIR", "")
KO = os.environ.get("EXECMEM_RS_KO", "")


def refill_bound_ns():
    """The bound on freed code's lifetime: REFILL_BOUND_NS on the test
    kernel, ten times that on the debug kernel (KASAN and lockdep make a
    text_poke_set() of a small program take ~19 ms there)."""
    debug = os.path.exists("/sys/kernel/debug/kmemleak")
    return REFILL_BOUND_NS * (10 if debug else 1)


def serve(what=None):
    if what is not None:
        with open(f"{D}/serve", "w") as f:
            f.write(what)
    return keyvalues(f"{D}/serve")


def insmod(path, *args):
    return subprocess.run(["insmod", path, *args], capture_output=True, text=True)


def rmmod(name):
    return subprocess.run(["rmmod", name], capture_output=True, text=True)


def run_suite(module):
    """insmod the kernel's test module lib/MODULE.ko (its tests run in its
    init), rmmod it; (insmod result, the kernel log of the run)."""
    m = kmsg.mark()
    r = insmod(os.path.join(KDIR, "lib", f"{module}.ko"))
    log = kmsg.since(m)
    rmmod(module)
    return r, log


def wait_for(cond, secs=20):
    t0 = time.monotonic()
    while not cond() and time.monotonic() - t0 < secs:
        time.sleep(0.05)
    return cond()


def summaries_pass(lines):
    """test_bpf.ko prints three summary lines; each must say 0 FAILED."""
    return len(lines) == 3 and all(" 0 FAILED" in l for l in lines)


def test_bpf(t, stock_too=True):
    """The kernel's BPF test suite, stock then served (or served only)."""
    with open("/proc/sys/net/core/bpf_jit_enable", "w") as f:
        f.write("1\n")
    runs = {}
    for mode in ("none", "bpf") if stock_too else ("bpf",):
        serve(mode)
        before = stats()["bpf.kernel_allocs"]
        r, log = run_suite("test_bpf")
        lines = re.findall(r"(test_\w+: Summary: .*)", log)
        runs[mode] = (lines, stats()["bpf.kernel_allocs"] - before, r)
        for line in lines:
            print(f"# {'served' if mode == 'bpf' else 'stock '}: {line}")
    serve("none")
    served = runs["bpf"]
    if stock_too:
        stock = runs["none"]
        t.check("test_bpf_stock_passes", summaries_pass(stock[0]),
                f"{len(stock[0])} summaries, insmod rc {stock[2].returncode}")
        t.check("test_bpf_served_same_summaries", served[0] == stock[0] and len(served[0]) == 3,
                f"{served[0]}")
    else:
        t.check("test_bpf_served_passes", summaries_pass(served[0]),
                f"{len(served[0])} summaries, insmod rc {served[2].returncode}")
    m = re.search(r"\[(\d+)/(\d+) JIT'ed\]", " ".join(served[0]))
    jited = int(m.group(1)) if m and m.group(1) == m.group(2) else -1
    t.check("test_bpf_ran_from_execmem_rs", jited > 0 and served[1] >= jited,
            f"{served[1]} bpf allocations from the kernel, {jited} programs JIT'ed")
    if stock_too:
        t.check("test_bpf_stock_run_not_served", stock[1] == 0, f"{stock[1]}")


def serve_parameter(t):
    """The module parameter serve is the switch, also without debugfs:
    written in sysfs it starts and stops serving at once, reads back as
    written, shows in the debugfs file, and refuses a bad value."""
    def write(value):
        try:
            param("serve", value)
            return 0
        except OSError as e:
            return e.errno

    def read():
        return param("serve")

    base, live = int(serve()["bpf.allocs"]), int(serve()["bpf.live"])
    err = write("bpf")
    on = bpf.load(60)
    served = int(serve()["bpf.allocs"]) - base
    shown = (read(), open(f"{D}/serve").readline().strip())
    bad = write("bpf,ftrace")
    kept = read()
    empty_param = write("")
    kept_param = read()
    # The debugfs file names what it serves: an empty line is no value.
    with Session("serve") as s:
        empty, _ = s.cmd(b"\n")
    kept_empty = read()
    off_err = write("none")
    off = bpf.load(70)
    after = int(serve()["bpf.allocs"]) - base
    ok = bpf.run(on[0]) == on[1] and bpf.run(off[0]) == off[1]
    for fd, _ in (on, off):
        os.close(fd)
    # Freed from a kworker after an RCU grace period: gone before the
    # lifecycle counts.
    wait_for(lambda: int(serve()["bpf.live"]) == live)
    t.check("serve_parameter_switches",
            err == 0 and served >= 1 and off_err == 0 and after == served and ok,
            f"write bpf: {errno.errorcode.get(err, err)}, {served} served load(s); write none: "
            f"{errno.errorcode.get(off_err, off_err)}, {after - served} served after it")
    t.check("serve_parameter_reads_back", shown == ("bpf", "serve bpf") and read() == "none",
            f"after bpf: {shown}; after none: {read()!r}")
    t.check("serve_parameter_refuses_bad_value", bad == errno.EINVAL and kept == "bpf",
            f"bpf,ftrace: {errno.errorcode.get(bad, bad)}, still {kept!r}")
    t.check("serve_parameter_refuses_empty_value", empty_param == errno.EINVAL and kept_param == "bpf",
            f"sysfs serve <- '\\n': {errno.errorcode.get(empty_param, empty_param)}, still {kept_param!r}")
    t.check("serve_file_refuses_empty_line", empty == errno.EINVAL and kept_empty == "bpf",
            f"debugfs serve <- '\\n': {errno.errorcode.get(empty, empty)}, still {kept_empty!r}")


def lifecycle(t):
    """100 programs served; serve off; rmmod refused until they are closed."""
    serve("bpf")
    base = int(serve()["bpf.live"])
    progs = [bpf.load(n) for n in bpf.sizes(100, seed=3)]
    ok = all(bpf.run(fd) == ret for fd, ret in progs)
    live = int(serve()["bpf.live"]) - base
    t.check("lifecycle_100_programs_served", ok and live >= 100, f"bpf.live +{live}")
    serve("none")
    extra = bpf.load(50)
    t.check("lifecycle_serve_off_stops_new", int(serve()["bpf.live"]) - base == live and
            bpf.run(extra[0]) == extra[1], f"bpf.live {serve()['bpf.live']}")
    os.close(extra[0])
    r = rmmod("execmem_rs")
    t.check("lifecycle_rmmod_refused_while_served", r.returncode != 0, r.stderr.strip())
    t.check("lifecycle_programs_still_run", all(bpf.run(fd) == ret for fd, ret in progs))
    before = stats()
    for fd, _ in progs:
        os.close(fd)
    # BPF frees after an RCU grace period, from a kworker.
    gone = wait_for(lambda: int(serve()["bpf.live"]) == 0)
    st = stats()
    t.check("lifecycle_all_freed", gone and st["bpf.live"] == 0, f"bpf.live {st['bpf.live']}")
    # Each freed image is trap-filled by one text_poke_set() on the freeing
    # thread, as bpf_prog_pack_free() does (nothing parked for the refill
    # worker), within the bound on freed code's lifetime.
    pokes = ((st["rx.pokes"] - st["rx.refill_pokes"])
             - (before["rx.pokes"] - before["rx.refill_pokes"]))
    rel, bound = int(serve()["bpf.release_max_ns"]), refill_bound_ns()
    t.check("lifecycle_freed_code_refilled_at_free",
            pokes >= 100 and st["rx.refill_pokes"] == before["rx.refill_pokes"]
            and st["rx.pending"] == 0 and rel <= bound,
            f"{pokes} pokes on the freeing threads, {st['rx.refill_pokes'] - before['rx.refill_pokes']} "
            f"by the worker, longest free-to-refill {rel / 1e6:.2f} ms (bound {bound / 1e6:.0f} ms)")
    unload(t, "lifecycle")
    # A bad serve= is the kernel's to refuse (the parameter's own parser).
    m = kmsg.mark()
    r = insmod(KO, "serve=bpf,bogus")
    log = kmsg.since(m)
    t.check("lifecycle_bad_serve_refused", r.returncode != 0 and
            "`bpf,bogus' invalid for parameter `serve'" in log and not os.path.isdir(D),
            f"insmod rc {r.returncode}: {r.stderr.strip()}; {log.strip()[-80:]}")
    r = insmod(KO)
    t.check("lifecycle_reload", r.returncode == 0 and os.path.isdir(D), r.stderr.strip())


def unload(t, name):
    """rmmod once the kernel holds nothing of ours: it must succeed, and the
    module's exit must find no live allocation."""
    m = kmsg.mark()
    r = rmmod("execmem_rs")
    t.check(f"{name}_rmmod_succeeds", r.returncode == 0, r.stderr.strip() or "unloaded")
    log = kmsg.since(m)
    t.check(f"{name}_unload_clean", "unloaded: 0 live allocations" in log)


def refcnt():
    """The module's reference count: one per live allocation the kernel
    holds, plus open files (none between the tests' reads)."""
    with open("/sys/module/execmem_rs/refcnt") as f:
        return int(f.read())


def kprobes(t):
    """The kprobes KUnit suite, served."""
    serve("kprobes")
    before = stats()["kprobes.kernel_allocs"]
    live0, ref0 = int(serve()["kprobes.live"]), refcnt()
    r, log = run_suite("test_kprobes")
    m = re.search(r"# kprobes_test: pass:(\d+) fail:(\d+) skip:(\d+) total:(\d+)", log)
    print(f"# {m.group(0) if m else 'no kprobes_test summary'}")
    allocs = stats()["kprobes.kernel_allocs"] - before
    t.check("test_kprobes_served_passes", r.returncode == 0 and m is not None and
            m.group(2) == "0" and m.group(1) == m.group(4) and m.group(3) == "0",
            m.group(0) if m else log[-200:])
    t.check("test_kprobes_ran_from_execmem_rs", allocs > 0, f"{allocs} kprobes allocations")
    # Every page is live or freed, nothing waits for a refill. Pages
    # kprobes frees (under text_mutex) go to the provider's work item, but
    # the suite frees none: kprobes keeps each insn cache's last page, and
    # the suite never fills one (0 in every run so far), so this is the
    # accounting, not that path.
    sv = serve()
    freed, rel = int(sv["kprobes.frees"]), int(sv["kprobes.release_max_ns"])
    t.check("test_kprobes_served_accounting",
            wait_for(lambda: int(serve()["kprobes.live"]) + freed == int(serve()["kprobes.allocs"]))
            and rel <= refill_bound_ns() and stats()["rx.pending"] == 0,
            f"{freed} pages freed" + (f", longest free-to-refill {rel / 1e6:.2f} ms" if freed else
                                      " (the free path is the selftest's kprobes probe)"))
    serve("none")
    # One reference per live page: measured here, as the XDP dispatcher's
    # image (consumers.py xdp, run before in the same VM) pins the module
    # too.
    live, pins = int(serve()["kprobes.live"]) - live0, refcnt() - ref0
    r = rmmod("execmem_rs")
    t.check("kprobes_page_pins_module", r.returncode != 0 and live > 0 and pins == live,
            f"rmmod: {r.stderr.strip() or 'unloaded'}; kprobes.live +{live}, module references +{pins}")


def xdp_dispatcher(t):
    """The XDP dispatcher's image: served once, kept for ever."""
    serve("bpf")
    base, ref0 = stats(), refcnt()
    fd, ret = bpf.load(4, prog_type=bpf.BPF_PROG_TYPE_XDP)
    # repeat > 1 attaches the program to the XDP dispatcher for the run
    # (net/bpf/test_run.c), which allocates its image on first use
    # (kernel/bpf/dispatcher.c: bpf_dispatcher_change_prog()).
    got = bpf.run(fd, repeat=2)
    os.close(fd)
    kept = wait_for(lambda: stats()["bpf.live"] - base["bpf.live"] == 1)
    st = stats()
    allocs = st["bpf.kernel_allocs"] - base["bpf.kernel_allocs"]
    t.check("xdp_dispatcher_served_and_kept", got == ret and kept and allocs == 2,
            f"r0 {got} (want {ret}); {allocs} bpf allocations from the kernel, "
            f"{st['bpf.live'] - base['bpf.live']} live after the program closed")
    serve("none")
    live, pins = stats()["bpf.live"], refcnt() - ref0
    r = rmmod("execmem_rs")
    t.check("xdp_dispatcher_pins_module", r.returncode != 0 and pins == 1 and live > 0,
            f"rmmod: {r.stderr.strip() or 'unloaded'}; bpf.live {live}, module references +{pins}")


def stress_with_bpf(t, n):
    """BPF programs loaded, run and closed while the stress runner runs."""
    serve("bpf")
    # The count since load includes earlier runs' (bpf-served runs first):
    # what this run's programs took is the difference.
    before = stats()["bpf.kernel_allocs"]
    result = {}

    def run_stress():
        report, err = stress("threads=2 ops=300000 seed=5 max_size=0x10000")
        result.update({"report": report} if not err else {"errno": err})

    th = threading.Thread(target=run_stress)
    th.start()
    wrong = done = 0
    for size in bpf.sizes(n, seed=7):
        fd, ret = bpf.load(size)
        wrong += bpf.run(fd) != ret
        os.close(fd)
        done += 1
    th.join()
    serve("none")
    r = result.get("report", {})
    t.check("stress_bpf_results_right", wrong == 0 and done == n, f"{done} programs, {wrong} wrong")
    t.check("stress_clean_alongside", r.get("corruptions") == "0" and
            sum(int(v) for k, v in r.items() if k.startswith("errors.")) == 0,
            f"{r.get('ops')} ops, corruptions {r.get('corruptions')} {result.get('errno', '')}")
    served = stats()["bpf.kernel_allocs"] - before
    t.check("stress_bpf_served", served >= n, f"{served} kernel allocations for {n} programs")
    # The module's exit after all of it (and after test_bpf's images, when
    # bpf-served ran before in this boot), so that a teardown that trips
    # over what they left shows here (KASAN, lockdep, kmemleak), not only
    # in the lifecycle's unload, which comes before them; then it is back
    # for what follows.
    gone = wait_for(lambda: int(serve()["bpf.live"]) == 0)
    t.check("stress_all_freed", gone, f"bpf.live {serve()['bpf.live']}")
    ko, why = module_file()
    if not ko:
        # Unloaded, it could not come back for what follows in this boot.
        t.check("stress_reload", False, why)
        return
    unload(t, "stress")
    r = insmod(KO)
    t.check("stress_reload", r.returncode == 0 and os.path.isdir(D), r.stderr.strip())


def main():
    require_module()
    t = Ktap()
    what = sys.argv[1] if len(sys.argv) > 1 else "bpf"
    if not KDIR or not os.path.exists(f"{D}/serve"):
        t.check("setup", False, f"KDIR {KDIR!r}, serve file {os.path.exists(f'{D}/serve')}")
        t.finish()
    if what in ("bpf", "bpf-served"):
        # The lifecycle first: its bound on freed code's lifetime is read
        # from counters that test_bpf's huge images (hundreds of KB, each
        # filled by one long text_poke_set(), as the stock path does) would
        # dominate.
        serve_parameter(t)
        lifecycle(t)
        test_bpf(t, stock_too=what == "bpf")
    elif what == "kprobes":
        kprobes(t)
    elif what == "xdp":
        xdp_dispatcher(t)
    elif what == "stress":
        stress_with_bpf(t, int(sys.argv[2]) if len(sys.argv) > 2 else 500)
    t.finish()


if __name__ == "__main__":
    main()
