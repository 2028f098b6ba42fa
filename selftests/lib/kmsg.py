# SPDX-License-Identifier: GPL-2.0
#
# The kernel log of one step of a test, read without clearing the ring
# buffer: the VM runner scans the whole buffer for splats at the end of the
# run (selftests/run_vm.sh), so a test that cleared it would hide whatever
# came before.

import itertools
import os
import subprocess

_marks = itertools.count()

# The lines that open and close a fault-injection run in the kernel log:
# the VM runner forgives the kernel's allocation-failure reports only
# between them (selftests/verdict.sh's unsplat matches these words).
INJECTION_ON = "execmem_rs-test: injection on"
INJECTION_OFF = "execmem_rs-test: injection off"


def write(line):
    """Writes `line` to the kernel log, a line of its own."""
    with open("/dev/kmsg", "w") as f:
        f.write(line + "\n")


def mark():
    """Writes a line of its own to the kernel log; returns it, for since()."""
    line = f"execmem_rs-test: mark {os.getpid()}.{next(_marks)}"
    write(line)
    return line


def since(line):
    """The kernel log after the last occurrence of a mark()'s line. The
    mark must still be there: without it, lines of an earlier step could
    be taken for this one's."""
    log = subprocess.run(["dmesg"], capture_output=True, text=True).stdout
    _, found, tail = log.rpartition(line + "\n")
    if not found:
        raise RuntimeError(f"kernel log: mark {line!r} not found (dropped, or the buffer wrapped)")
    return tail
