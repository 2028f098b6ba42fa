#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
#
# Fault injection (fault_inject.py [OPS [START_POINTS [INIT_STRIDE]]]: OPS
# stress ops per failslab run, default 100000 (the order-0 run is always
# 100000: a shorter one meets no order-0 failure); the first START_POINTS
# allocation points of a stress start failed in turn, default all; every
# INIT_STRIDE-th allocation point of the module's init failed, default 1:
# every one).
#
# failslab (kmalloc caches) and fail_page_alloc (order >= 9: the 2 MiB
# pages packs want) restricted, with the stack-trace filter, to allocations
# made while execmem_rs's code is on the stack. failslab is limited to the
# kmalloc caches (cache-filter; boot with slab_nomerge so no other cache
# shares them): execmem_rs allocates only from kmalloc, and failing
# vmalloc's own vmap_area cache trips a WARN_ON_ONCE in va_alloc() that is
# the kernel's, not ours; for the same reason no page allocated inside
# alloc_vmap_area() is failed (REJECT below). Runs the stress runner and
# ctl commands under it and checks that every failure surfaces as ENOMEM,
# no failed alloc keeps its bytes against the session's cap, nothing is
# corrupted, and stats return to zero. Then:
#  - fail_page_alloc down to order 0 (4 KiB vmalloc pages, page tables, the
#    direct-map splits under set_memory_* of 4 KiB areas) under a stress run;
#  - fail-nth: every allocation of every ctl command failed in turn, each
#    failure ENOMEM with the session's IDs unchanged (a failed command
#    changes nothing), the same for the bench file's trace commands (each
#    ENOMEM with the trace unchanged, or done whole) and for a write of the
#    longest line, every
#    allocation of a stress start failed in turn, each returning at once,
#    and every allocation of the module's init, each load failing with
#    ENOMEM (or loading, without its files if it was theirs) and leaving
#    nothing behind.
# The VM runner then unloads the module and scans dmesg for splats; with
# --injected-alloc-failures it forgives the kernel's allocation-failure
# reports, but only between the two lines this script writes to the
# kernel log when it starts and when it has ended (kmsg.INJECTION_ON and
# _OFF), so other tests may share its boot. KTAP.

import ctypes
import errno
import os
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import bpf  # noqa: E402
import kmsg  # noqa: E402
from execmem import Session, keyvalues, kv, module_columns, module_file, param, stress  # noqa: E402

D = "/sys/kernel/debug/execmem_rs"
FI = "/sys/kernel/debug"
MIB4 = 4 << 20


def text_range():
    lo, hi = None, None
    with open("/proc/kallsyms") as f:
        for line in f:
            if line.rstrip().endswith("[execmem_rs]") and line.split()[1] in "tT":
                a = int(line.split()[0], 16)
                lo = a if lo is None else min(lo, a)
                hi = a if hi is None else max(hi, a)
    return lo, hi + 4096


def kernel_fn_range(name):
    """[start, end) of the kernel's text symbol `name`: up to the next text
    symbol of the kernel image."""
    start, addrs = None, []
    with open("/proc/kallsyms") as f:
        for line in f:
            parts = line.split()
            if len(parts) != 3 or parts[1] not in "tT":
                continue
            a = int(parts[0], 16)
            addrs.append(a)
            if parts[2] == name:
                start = a
    if not start:
        raise SystemExit(f"fault_inject: no text symbol {name} in /proc/kallsyms")
    return start, min(a for a in addrs if a > start)


# vmalloc's own vmap_area bookkeeping (the preload and the GFP_NOWAIT node
# in va_clip(), both in alloc_vmap_area()): when both of its allocations
# fail, the kernel's WARN_ON_ONCE in va_alloc() (mm/vmalloc.c:1804) fires,
# a splat that is the kernel's reaction to two injected failures in its
# own code, not ours. Pages allocated there are never failed.
REJECT = kernel_fn_range("alloc_vmap_area")


def setattr_(attr, name, value):
    with open(f"{FI}/{attr}/{name}", "w") as f:
        f.write(f"{value}\n")


def kmalloc_caches(on):
    for c in os.listdir("/sys/kernel/slab"):
        if c.startswith("kmalloc-") and os.path.exists(f"/sys/kernel/slab/{c}/failslab"):
            with open(f"/sys/kernel/slab/{c}/failslab", "w") as f:
                f.write("1\n" if on else "0\n")


def inject(start, end, on, min_order=9, percent=None):
    kmalloc_caches(on)
    for attr, extra in (("failslab", {"ignore-gfp-wait": "N", "cache-filter": "Y"}),
                        ("fail_page_alloc", {"ignore-gfp-wait": "N", "ignore-gfp-highmem": "N",
                                             "min-order": min_order})):
        if on:
            for k, v in extra.items():
                setattr_(attr, k, v)
            setattr_(attr, "require-start", start)
            setattr_(attr, "require-end", end)
            setattr_(attr, "reject-start", REJECT[0])
            setattr_(attr, "reject-end", REJECT[1])
            setattr_(attr, "stacktrace-depth", 32)
            setattr_(attr, "verbose", 0)
            setattr_(attr, "interval", 1)
            setattr_(attr, "times", -1)
        setattr_(attr, "probability", (percent or (20 if attr == "failslab" else 50)) if on else 0)


def open_retry(path, errs):
    """open(2) of our files allocates too, so it may fail with ENOMEM."""
    for _ in range(100):
        try:
            return os.open(path, os.O_RDWR)
        except OSError as e:
            errs.append(e.errno)
    raise OSError(errno.ENOMEM, "open kept failing")


def stats():
    with open(f"{D}/stats") as f:
        return {k: int(v) for k, v in (line.split() for line in f)}


def arm_nth(n, start, end):
    """Fail the n-th allocation this thread makes with execmem_rs's code on
    the stack (0: disarm); returns what is left of the count."""
    for attr in ("failslab", "fail_page_alloc"):
        setattr_(attr, "require-start", start)
        setattr_(attr, "require-end", end)
        setattr_(attr, "stacktrace-depth", 32)
        setattr_(attr, "ignore-gfp-wait", "N")
        setattr_(attr, "verbose", 0)
    setattr_("fail_page_alloc", "min-order", 0)
    setattr_("failslab", "cache-filter", "N")
    with open("/proc/thread-self/fail-nth", "w") as f:
        f.write(f"{n}\n")


def nth_left():
    with open("/proc/thread-self/fail-nth") as f:
        left = int(f.read())
    with open("/proc/thread-self/fail-nth", "w") as f:
        f.write("0\n")
    return left


def ctl_failures_change_nothing(check, start, end):
    """9: every allocation of every ctl command, failed one at a time
    (fail-nth): each failure is ENOMEM and `list` stays the same set."""
    s = Session()
    keep = s.ok("alloc text 64")
    victim = s.ok("alloc rodata 64")
    cmds = ["alloc text 100", "alloc rodata 5000", "alloc data 0x300000", "alloc text 0x200000 0x200000",
            f"write {keep} 0 90", f"read {keep} 0 64", f"info {keep}", f"probe {keep}",
            "list", "seal {victim}", "free {victim}"]
    failures, bad = 0, []
    for c in cmds:
        for n in range(1, 100):
            line = c.format(victim=victim)
            before = set(s.ok("list").split())
            arm_nth(n, start, end)
            err, reply = s.cmd(line)
            left = nth_left()
            after = set(s.ok("list").split())
            if left:
                # The n-th allocation never came: the command ran whole.
                if err:
                    bad.append(f"{line!r} failed uninjected: {errno.errorcode.get(err, err)}")
                for i in after - before:
                    s.ok(f"free {i}")
                break
            if err:
                failures += 1
                if err != errno.ENOMEM or after != before:
                    bad.append(f"{line!r} nth={n}: {errno.errorcode.get(err, err)} {reply!r}, "
                               f"IDs {sorted(before)} -> {sorted(after)}")
            else:
                # The failure landed on an allocation that is allowed to
                # fail without failing the command (one with a fallback:
                # kvmalloc's retry, and on the debug kernel kmemleak's and
                # KASAN's own metadata): the command took effect. seal and
                # free cannot run twice: the next n gets a new victim.
                for i in after - before:
                    s.ok(f"free {i}")
                if c.split()[0] in ("seal", "free"):
                    if c.startswith("seal"):
                        s.ok(f"free {victim}")
                    victim = s.ok("alloc rodata 64")
    s.close()
    check("9_ctl_enomem_changes_nothing", failures > 0 and not bad,
          f"{failures} injected failures over {len(cmds)} commands" + (f"; {bad[0]}" if bad else ""))


def bench_failures_change_nothing(check, start, end):
    """9: every allocation of the bench file's trace commands failed in
    turn: a command either fails with ENOMEM and leaves the trace as it was,
    or takes effect whole (the failure met a fallback), as a run of the
    trace shows (the sections it allocates)."""
    rows = [" ".join(cols) for _, cols in module_columns(2)]
    b = Session("bench")

    def sections():
        err, reply = b.cmd("run workload=trace n=100000 write=0")
        if err == errno.EINVAL and "no trace" in reply:
            return 0
        if err:
            raise RuntimeError(f"bench run failed: {errno.errorcode.get(err)} {reply}")
        return int(kv(reply.splitlines()[0])["allocations"])

    def start_over():
        b.ok("trace clear")
        b.ok(f"trace add {rows[0]}")

    injected, enomem, bad = 0, 0, []
    try:
        start_over()
        b.ok(f"trace add {rows[1]}")
        both = sections()
        for line, done in (("trace clear", 0), (f"trace add {rows[1]}", both)):
            for n in range(1, 100):
                start_over()
                before = sections()
                arm_nth(n, start, end)
                err, reply = b.cmd(line)
                left = nth_left()
                after = sections()
                if left:
                    # The n-th allocation never came: the command ran whole.
                    if (err, after) != (0, done):
                        bad.append(f"{line[:20]!r} uninjected: {errno.errorcode.get(err, 'ok')} {reply!r}, "
                                   f"the trace's sections {before} -> {after} (done: {done})")
                    break
                injected += 1
                enomem += err == errno.ENOMEM
                if (err, after) not in ((errno.ENOMEM, before), (0, done)):
                    bad.append(f"{line[:20]!r} nth={n}: {errno.errorcode.get(err, 'ok')} {reply!r}, "
                               f"the trace's sections {before} -> {after} (done: {done})")
        b.ok("trace clear")
    finally:
        b.close()
    check("9_bench_enomem_changes_nothing", injected > 0 and not bad,
          f"{injected} injected failures over 2 commands, {enomem} ENOMEM" + (f"; {bad[0]}" if bad else ""))


def long_write_failures(check, start, end):
    """9: a write(2) of the longest line (one the parser refuses), every
    allocation of it failed in turn until the n-th never comes: each
    failure is ENOMEM with 'error: out of memory', or taken by a fallback
    (the parser's refusal), and a reply is whole or, when its own memory
    failed, empty; never a piece of one."""
    s = Session()
    line = b"x" * 65536
    refused = (errno.EINVAL, "error: unknown command")
    injected, bad, last = 0, [], None
    for n in range(1, 100):
        arm_nth(n, start, end)
        err, reply = s.cmd(line)
        left = nth_left()
        if left:
            last = (err, reply)
            break
        injected += 1
        # An empty reply (its own memory failed) still fails the write
        # with one of the two errnos.
        whole = (err, reply) in ((errno.ENOMEM, "error: out of memory"), refused)
        if not whole and (reply or err not in (errno.ENOMEM, errno.EINVAL)):
            bad.append(f"nth={n}: {errno.errorcode.get(err, err)} {reply!r}")
    s.close()
    check("9_long_write_enomem", injected > 0 and last == refused and not bad,
          f"{injected} injected failures, then {last!r}" + (f"; {bad[0]}" if bad else ""))


# finit_module(2): x86-64's number, or the generic table's (arm64).
SYS_FINIT_MODULE = {"x86_64": 313, "aarch64": 273}[os.uname().machine]


def finit_module(path, params=b""):
    """Loads the module at `path` from this thread (fail-nth is per task,
    so not through insmod); 0 or the errno."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        r = libc.syscall(SYS_FINIT_MODULE, fd, ctypes.c_char_p(params), 0)
        return 0 if r == 0 else ctypes.get_errno()
    finally:
        os.close(fd)


def module_window(lo, hi):
    """Addresses where the module's code lands when it loads again: the
    side of the kernel image its text is on now (the kernel's own code, on
    every stack, must stay out of the stack filter's range)."""
    stext = etext = None
    with open("/proc/kallsyms") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[2] in ("_stext", "_etext"):
                if parts[2] == "_stext":
                    stext = int(parts[0], 16)
                else:
                    etext = int(parts[0], 16)
    if lo >= etext:
        return etext, (1 << 64) - 1
    if hi <= stext:
        return 0, stext
    raise SystemExit(f"fault_inject: module text {lo:#x}-{hi:#x} inside the kernel's")


def module_loaded():
    return os.path.isdir("/sys/module/execmem_rs")


def unload(bad):
    """rmmod; a failure goes to `bad`."""
    r = subprocess.run(["rmmod", "execmem_rs"], capture_output=True, text=True)
    if r.returncode:
        bad.append(f"rmmod: {r.stderr.strip()}")


def reload(ko, bad):
    """Disarms fail-nth and loads the module if it is not loaded (the
    later checks and the VM runner's unload expect it); a failure goes to
    `bad`."""
    nth_left()
    if not module_loaded():
        err = finit_module(ko)
        if err:
            bad.append(f"reload: {errno.errorcode.get(err, err)}")


def init_failures_unwind(check, start, end, stride):
    """9: every (stride-th) allocation of the module's init failed in turn (fail-nth,
    module code on the stack): each load fails with ENOMEM and leaves
    nothing behind, or succeeds (a fallback took the failure, or it hit
    the debugfs files, whose failure is not the module's: it then loads
    without them), until the n-th allocation never comes; the module then
    loads whole. Each load is unloaded before the next; whatever happens,
    the module is loaded again at the end (the later checks and the VM
    runner's unload expect it)."""
    ko, why = module_file()
    if not ko:
        check("9_init_failures_unwind", False, why)
        return [], None
    lo, hi = module_window(start, end)
    failures, loaded, nofiles, bad, last, past = 0, 0, [], [], None, None
    try:
        r = subprocess.run(["rmmod", "execmem_rs"], capture_output=True, text=True)
        for n in range(1, 500 * stride, stride):
            if r.returncode != 0:
                bad.append(f"rmmod: {r.stderr.strip()}")
                break
            arm_nth(n, lo, hi)
            err = finit_module(ko)
            left = nth_left()
            if left:
                last, past = err, n
                break
            if err == 0:
                loaded += 1
                if not os.path.isdir(D):
                    nofiles.append(n)
                r = subprocess.run(["rmmod", "execmem_rs"], capture_output=True, text=True)
            elif err == errno.ENOMEM and not module_loaded():
                failures += 1
            else:
                bad.append(f"nth={n}: {errno.errorcode.get(err, err)}, "
                           f"module {'present' if module_loaded() else 'gone'}")
                break
    finally:
        reload(ko, bad)
    check("9_init_failures_unwind", failures > 0 and last == 0 and os.path.isdir(D) and not bad,
          f"every {stride}: {failures} loads failed with ENOMEM, {loaded} loaded anyway ({len(nofiles)} without "
          f"debugfs), then a whole load: {last}" + (f"; {bad[0]}" if bad else ""))
    return nofiles, past


FILES = ("types", "ctl", "stats", "packs", "serve", "selftest", "stress", "bench")


class Opener(threading.Thread):
    """Opens each debugfs file of the module as soon as it appears, and
    holds it open until stopped."""

    def __init__(self):
        super().__init__(daemon=True)
        self.fds = {}
        self.stop = False

    def run(self):
        while not self.stop and len(self.fds) < len(FILES):
            for name in FILES:
                if name not in self.fds:
                    try:
                        self.fds[name] = os.open(f"{D}/{name}", os.O_RDONLY)
                    except OSError:
                        pass


def files_opened_during_failed_setup(check, start, end, points, stride, past):
    """9b: a file opened while init was still making the others, which a
    later failure then removed (the module loads without debugfs), is
    released after init through operations that must still be there (the
    debugfs proxy reads them after the removal; they were freed with the
    files: KASAN's use-after-free on the debug kernel). Loads at the points
    where 9 loaded without debugfs and those 9's stride skipped after them,
    with another thread opening the files, until one was caught open (30
    loads at most); each is closed, then the module unloads. A skipped
    point may fail the load elsewhere (ENOMEM) or come after the files:
    it is then passed over. The files are init's last allocations, so the
    3 strides before `past` (the first point 9 found init never reached)
    are tried too, after those: on the debug kernel, KASAN's and kmemleak's own
    allocations move with each build, and a stride of 8 once met no point
    that loaded without debugfs."""
    ko, why = module_file()
    if not ko:
        check("9b_file_opened_during_failed_setup_released", False, why)
        return
    lo, hi = module_window(start, end)
    # Latest first: more files were made before the failure, so the window
    # in which one can be opened is longer (with 9's stride 8 on the debug
    # kernel, its points alone were seen to need 18 loads).
    known = sorted({p + k for p in points for k in range(max(stride, 1))}, reverse=True)
    tail = range(past - 1, max(past - 3 * max(stride, 1), 1) - 1, -1) if past else []
    tries = known + [n for n in tail if n not in known]
    caught, loads, passed, bad = [], 0, 0, []
    try:
        unload(bad)
        while tries and loads < max(30, len(tries)) and not caught and not bad:
            n = tries[loads % len(tries)]
            loads += 1
            opener = Opener()
            opener.start()
            arm_nth(n, lo, hi)
            err = finit_module(ko)
            nth_left()
            opener.stop = True
            opener.join()
            if err == errno.ENOMEM and n not in points and not module_loaded():
                passed += 1
            elif err:
                bad.append(f"nth={n}: {errno.errorcode.get(err, err)}")
            elif not os.path.isdir(D):
                caught += [f"{name}@{n}" for name in opener.fds]
            for fd in opener.fds.values():
                os.close(fd)
            if not err:
                unload(bad)
    finally:
        reload(ko, bad)
    check("9b_file_opened_during_failed_setup_released", len(caught) > 0 and not bad,
          f"{loads} loads at {len(tries)} points ({passed} failed elsewhere); "
          f"open when their setup failed: {caught[:6]}" + (f"; {bad[0]}" if bad else ""))


def served_bpf_failures_poke_nothing(check, start, end):
    """20: a BPF program loaded while every allocation under execmem_rs
    fails (failslab and fail_page_alloc at 100 %, module code on the
    stack) into a freshly loaded module, whose provider's first book entry
    must allocate (kmalloc, then kvmalloc's vmalloc fallback): the provider
    returns NULL (the JIT uses its stock path, the program loads and runs),
    and its failed call pokes nothing: the memory it gave back was never
    handed out, so never written (a refill of it would be a
    text_poke_set() over the whole image, on the JIT's path). A ctl
    session's text allocation made first keeps the rx pack mapped, so that
    a block given back is refilled or parked, not unmapped with its pack."""
    ko, why = module_file()
    if not ko:
        check("20_served_bpf_failure_pokes_nothing", False, why)
        return
    st = lambda: keyvalues(f"{D}/serve")  # noqa: E731
    pokes = lambda: int(keyvalues(f"{D}/stats")["rx.pokes"])  # noqa: E731
    df = dp = 0
    bad = []
    try:
        r = subprocess.run(["rmmod", "execmem_rs"], capture_output=True, text=True)
        err = 0 if r.returncode else finit_module(ko, b"serve=bpf")
        if r.returncode or err:
            bad.append(f"reload: {r.stderr.strip() or errno.errorcode.get(err, err)}")
        else:
            keep = Session()
            keep.ok("alloc text 64")
            # Where the module's code is now: a reload may place it
            # elsewhere than the first load the caller's range is from.
            start, end = text_range()
            f0, p0 = int(st()["bpf.failures"]), pokes()
            inject(start, end, True, min_order=0, percent=100)
            try:
                fd, want = bpf.load(300)
            except OSError as e:
                fd, err = None, e.errno
            finally:
                inject(start, end, False)
            dp, df = pokes() - p0, int(st()["bpf.failures"]) - f0
            keep.close()
            if fd is None:
                bad.append(f"load failed: {errno.errorcode.get(err, err)}")
            else:
                got = bpf.run(fd)
                os.close(fd)
                if got != want:
                    bad.append(f"ran {got}, want {want}")
            # The kernel frees a program after an RCU grace period, in a
            # kworker: until then its image (stock here) is the kernel's.
            time.sleep(0.2)
            r = subprocess.run(["rmmod", "execmem_rs"], capture_output=True, text=True)
            if r.returncode:
                bad.append(f"rmmod: {r.stderr.strip()}")
    finally:
        reload(ko, bad)
    check("20_served_bpf_failure_pokes_nothing", df == 1 and dp == 0 and not bad,
          f"provider calls failed: {df}, pokes by them: {dp}" + (f"; {bad[0]}" if bad else ""))


class Alarm(Exception):
    """SIGALRM: raised from the handler, so that the interrupted write(2)
    ends with it. A handler that returns would make Python retry the write
    (PEP 475): a new 20M-op stress start, with no alarm left to stop it."""


def on_alarm(*_):
    raise Alarm()


def timed_write(fd, data, secs):
    """write(2) stopped by SIGALRM after `secs`: (its errno, 0 if it
    succeeded or EINTR if the alarm ended it; whether the alarm fired)."""
    old = signal.signal(signal.SIGALRM, on_alarm)
    try:
        try:
            signal.alarm(secs)
            os.write(fd, data)
            return 0, False
        except OSError as e:
            return e.errno, False
        finally:
            signal.alarm(0)
    except Alarm:
        return errno.EINTR, True
    finally:
        signal.signal(signal.SIGALRM, old)


def stress_seed():
    """The seed of the last stress run that started (its report's)."""
    with open(f"{D}/stress") as f:
        for line in f:
            k, _, v = line.partition(" ")
            if k == "seed":
                return int(v)
    return None


def stress_start_failures(check, start, end, limit):
    """14: every allocation of a stress start (the first `limit` of them if
    given), failed one at a time: a start that failed returns ENOMEM at once,
    with no thread left running unstopped, i.e. before the alarm."""
    fd = os.open(f"{D}/stress", os.O_RDWR)
    # How many allocations a start makes: count them on a tiny run.
    arm_nth(100000, start, end)
    os.write(fd, b"threads=4 ops=8 types=data")
    points = 100000 - nth_left()
    tried = min(points, limit) if limit else points
    slow, errs, failed, ran = [], set(), 0, 0
    for n in range(1, tried + 1):
        arm_nth(n, start, end)
        # A start whose injected failure was absorbed (on the debug kernel:
        # KASAN's and kmemleak's own metadata fall back) runs until the
        # alarm stops it, and leaves its report (with this seed). A start
        # that failed leaves none, and must have returned by itself: if
        # the alarm ended it, its threads ran on unstopped (a second of a
        # 20M-op run) until the signal stopped them.
        seed = 1000 + n
        err, fired = timed_write(fd, f"threads=4 ops=20000000 types=data seed={seed}".encode(), 1)
        nth_left()
        if stress_seed() == seed:
            ran += 1
            continue
        failed += 1
        errs.add(err)
        if fired:
            slow.append(n)
    os.close(fd)
    # At least one start must have failed: else nothing was shown.
    check("14_stress_start_failure_returns_at_once", points > 0 and failed > 0 and not slow and
          errs == {errno.ENOMEM},
          f"{tried} of {points} allocation points: {failed} failed (errnos {sorted(errs)}), "
          f"{ran} absorbed and ran; ended by the alarm: {slow[:5]}")


def main():
    print("KTAP version 1")
    if os.geteuid() != 0 or not os.path.isdir(D) or not os.path.isdir(f"{FI}/failslab"):
        print("1..0 # SKIP needs root, execmem_rs and CONFIG_FAILSLAB")
        sys.exit(4)
    n = 0
    failed = 0

    def check(name, ok, detail=""):
        nonlocal n, failed
        n += 1
        failed += not ok
        print(f"{'ok' if ok else 'not ok'} {n} {name}" + (f" # {detail}" if detail else ""),
              flush=True)

    ops = int(sys.argv[1]) if len(sys.argv) > 1 else 100000
    # On the debug kernel a start makes many more allocations (KASAN's and
    # kmemleak's own), each failed one costing a 1 s run: try the first N.
    start_points = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    start, end = text_range()
    base = stats()
    # The stress runner starts with injection off (starting threads
    # allocates a lot), then injection is switched on while its kernel
    # threads run, and off again when it is done.
    reports, write_errs = [], []
    for attempt in range(3):
        result = {}

        def run_stress():
            report, err = stress(f"threads=2 ops={ops} seed={attempt + 1} max_size=0x400000")
            result.update({"report": report} if not err else {"errno": err})

        th = threading.Thread(target=run_stress)
        th.start()
        time.sleep(0.3)
        inject(start, end, True)
        th.join()
        inject(start, end, False)
        if "errno" in result:
            write_errs.append(result["errno"])
            # Only the reply failed if the run itself completed: its report
            # is in the file.
            with open(f"{D}/stress") as f:
                last = dict(l.split() for l in f.read().splitlines() if " " in l)
            if last.get("seed") == str(attempt + 1):
                result["report"] = last
        if "report" in result:
            reports.append(result["report"])

    # ctl under injection: every failure is ENOMEM, successes are real.
    ctl_errs, ctl_ok = [], 0
    inject(start, end, True)
    try:
        fd = open_retry(f"{D}/ctl", ctl_errs)
        for i in range(300):
            # Every 10th is a 3 MiB extent: a fresh huge-page vmalloc.
            size = 3 << 20 if i % 10 == 0 else 64 + 4096 * (i % 7)
            try:
                os.write(fd, f"alloc {['text', 'rodata', 'data'][i % 3]} {size}".encode())
                ctl_ok += 1
            except OSError as e:
                ctl_errs.append(e.errno)
            try:
                while os.read(fd, 4096):
                    pass
            except OSError as e:
                ctl_errs.append(e.errno)
    finally:
        inject(start, end, False)
    # No failed alloc kept its bytes against the session's cap: with the
    # cap at what the session holds plus 4 MiB, 4 MiB more fits, one byte
    # more does not.
    # (A throw-away build without cmd_alloc's refund failed this: 4 MiB
    # more was EDQUOT.)
    cap = param("session_cap")
    s = Session(fd=fd)
    try:
        held = sum(int(kv(s.ok(f"info {i}"))["size"]) for i in s.ok("list").split())
        param("session_cap", held + MIB4)
        cap_fill, cap_over = s.cmd(f"alloc data {MIB4}")[0], s.cmd("alloc data 1")[0]
    finally:
        param("session_cap", cap)
        s.close()

    enomem = sum(int(r["errors.enomem"]) for r in reports)
    other = sum(int(r[k]) for r in reports for k in r
                if k.startswith("errors.") and k != "errors.enomem")
    for r in reports:
        print(f"# stress seed {r['seed']}: ops {r['ops']} allocs {r['allocs']} "
              f"errors.enomem {r['errors.enomem']} corruptions {r['corruptions']}")
    corrupt = sum(int(r["corruptions"]) for r in reports)
    check("stress_completed_under_injection", len(reports) == 3,
          f"{len(reports)} runs, {len(write_errs)} refused to start")
    check("stress_write_errors_are_enomem", all(e == errno.ENOMEM for e in write_errs),
          str(sorted(set(write_errs))))
    check("stress_failures_surface_as_enomem", enomem > 0 and other == 0,
          f"errors.enomem {enomem}, other errors {other}")
    check("stress_no_corruption", len(reports) == 3 and corrupt == 0,
          f"corruptions {corrupt} in {len(reports)} runs")
    # Injection must have reached ctl at all: all() of nothing is true.
    check("ctl_failures_are_enomem", ctl_errs and all(e == errno.ENOMEM for e in ctl_errs),
          f"{ctl_ok} ok, {len(ctl_errs)} failed: {sorted(set(ctl_errs))}")
    check("ctl_failures_keep_no_bytes", cap_fill == 0 and cap_over == errno.EDQUOT,
          f"holding {held} bytes with the cap 4 MiB above: 4 MiB more "
          f"{errno.errorcode.get(cap_fill, 'ok')}, 1 byte more {errno.errorcode.get(cap_over, 'ok')}")
    end_stats = stats()
    check("stats_back_to_zero", end_stats["total.live"] == 0 and end_stats["total.live_bytes"] == 0 and
          end_stats["total.allocs"] - base["total.allocs"] == end_stats["total.frees"] - base["total.frees"],
          f"live {end_stats['total.live']}")
    fb = end_stats["total.fallback_packs"] - base["total.fallback_packs"]
    print(f"# huge page failures made {fb} pack(s) fall back to 4 KiB pages")
    # Order-0 pages too (4 KiB vmalloc areas, page tables, the direct-map
    # splits under set_memory_* of 4 KiB areas): a stress run with code and
    # overflow-prone sizes under fail_page_alloc min-order 0.
    # Injection starts once the run is allocating (a fixed sleep let a
    # quick run finish before any failure was injected), and the run is
    # long enough to meet many.
    # (Injected while the classes still grow, after 20 allocations, it once
    # met 63 failures on the debug kernel instead of 1-116, and then also
    # failed vmalloc's own vmap_area slab refills and tripped the kernel's
    # WARN_ON_ONCE in va_alloc(); those pages are now never failed, see
    # REJECT, but a late start stays: the run measures our stack, not the
    # classes' first growth.)
    # Past the classes' growth an order-0 page is rare on our stack (4 in
    # 31 096 allocations on the base kernel, once none; 1 on arm64): up to
    # five runs, until one meets a failure, every run clean. A failure is
    # met when a request fails with ENOMEM, or when a map fails and the
    # engine places the request in other free space instead (counted in
    # total.map_failures): either way nothing else may go wrong.
    enomem0 = other = corrupt0 = 0
    runs = []
    maps0 = stats()["total.map_failures"]
    for seed in (9, 10, 11, 12, 13):
        result = {}
        allocs0 = stats()["total.allocs"]

        def run_small():
            report, err = stress(f"threads=2 ops=100000 seed={seed} max_size=0x20000")
            result.update({"report": report} if not err else {"errno": err})

        th = threading.Thread(target=run_small)
        th.start()
        t0 = time.monotonic()
        while stats()["total.allocs"] < allocs0 + 1000 and th.is_alive() and time.monotonic() - t0 < 10:
            time.sleep(0.01)
        inject(start, end, True, min_order=0)
        th.join()
        inject(start, end, False)
        r = result.get("report", {})
        print(f"# order-0 run, seed {seed}: errors.enomem {r.get('errors.enomem')}, "
              f"allocs {r.get('allocs')} {result.get('errno', '')}")
        runs.append(seed)
        other += sum(int(v) for k, v in r.items() if k.startswith("errors.") and k != "errors.enomem")
        corrupt0 += int(r.get("corruptions", 1))
        enomem0 += int(r.get("errors.enomem", 0))
        map_failures = stats()["total.map_failures"] - maps0
        if enomem0 or map_failures:
            break
    check("19_order0_failures_are_enomem_or_absorbed",
          corrupt0 == 0 and other == 0 and (enomem0 > 0 or map_failures > 0),
          f"{len(runs)} run(s): enomem {enomem0} map failures {map_failures} "
          f"other {other} corruptions {corrupt0}")
    ctl_failures_change_nothing(check, start, end)
    bench_failures_change_nothing(check, start, end)
    long_write_failures(check, start, end)
    stress_start_failures(check, start, end, start_points)
    stride = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    nofiles, past = init_failures_unwind(check, start, end, stride)
    files_opened_during_failed_setup(check, start, end, nofiles, stride, past)
    served_bpf_failures_poke_nothing(check, start, end)

    # After injection, the allocator works normally again.
    try:
        fd = os.open(f"{D}/ctl", os.O_RDWR)
        try:
            os.write(fd, b"alloc text 64")
            ok = os.read(fd, 64).strip().isdigit()
        finally:
            os.close(fd)
    except OSError:
        ok = False
    check("works_after_injection", ok)
    print(f"1..{n}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    # The VM runner forgives allocation-failure reports only inside this
    # window, so the other tests of the boot are scanned in full.
    kmsg.write(kmsg.INJECTION_ON)
    try:
        main()
    finally:
        # Every injection off, whatever ended the run, so that what runs
        # after it in the same boot meets none (switching off needs no
        # range).
        if os.path.isdir(f"{FI}/failslab"):
            inject(None, None, False)
        # A failure met just before injection went off may still be
        # starting its report on another CPU: let it into the window.
        time.sleep(1)
        kmsg.write(kmsg.INJECTION_OFF)
