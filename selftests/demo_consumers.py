#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
#
# The second half of the demo: the kernel's own BPF JIT served by
# execmem_rs. Loads 1000 real socket filters through bpf(BPF_PROG_LOAD) and
# runs each once, then the kernel's lib/test_bpf.ko, all with serve=bpf, and
# shows the summary lines, what the kernel holds and the rx packs it landed
# in; then closes everything.

import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import bpf  # noqa: E402
import kmsg  # noqa: E402
from execmem import D, keyvalues  # noqa: E402


def serve(what):
    with open(f"{D}/serve", "w") as f:
        f.write(what)


def main():
    kdir = os.environ.get("EXECMEM_RS_KDIR", "")
    serve("bpf")
    bpf.allow_fds(1000)
    t0 = time.monotonic()
    progs = [bpf.load(n) for n in bpf.sizes(1000, seed=11)]
    secs = time.monotonic() - t0
    right = sum(bpf.run(fd) == ret for fd, ret in progs)
    print(f"== 1000 BPF socket filters loaded through bpf() in {secs:.2f} s, "
          f"{right} returned what they compute")
    print(f"== cat {D}/serve")
    with open(f"{D}/serve") as f:
        print(f.read(), end="")
    print(f"== cat {D}/packs   (the rx packs: BPF images next to each other)")
    with open(f"{D}/packs") as f:
        blocks = [b for b in f.read().split("\npack ") if b.removeprefix("pack ").startswith("rx.")]
    for b in blocks[:4]:
        print(("pack " + b.removeprefix("pack ")).rstrip("\n"))
    ko = os.path.join(kdir, "lib", "test_bpf.ko")
    print(f"== insmod {os.path.basename(ko)}   (the kernel's BPF test suite, JIT'ed into execmem_rs)")
    before = int(keyvalues(f"{D}/serve")["bpf.allocs"])
    m = kmsg.mark()
    subprocess.run(["insmod", ko], check=False)
    log = kmsg.since(m)
    subprocess.run(["rmmod", "test_bpf"], check=False)
    summaries = re.findall(r"(test_\w+: Summary: .*)", log)
    for line in summaries:
        print(line)
    served = int(keyvalues(f"{D}/serve")["bpf.allocs"]) - before
    print(f"== {served} BPF images of the suite came from execmem_rs")
    for fd, _ in progs:
        os.close(fd)
    serve("none")
    t0 = time.monotonic()
    while keyvalues(f"{D}/serve")["bpf.live"] != "0" and time.monotonic() - t0 < 20:
        time.sleep(0.1)
    print(f"== programs closed: bpf.live {keyvalues(f'{D}/serve')['bpf.live']}")
    ok = right == 1000 and len(summaries) == 3 and all(" 0 FAILED" in s for s in summaries)
    return 0 if ok and served > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
