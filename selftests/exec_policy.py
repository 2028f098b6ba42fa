#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
#
# kselftest: running code written through execmem_rs needs what loading a
# module needs (review finding 1). Without CAP_SYS_MODULE (capsh), exec
# and a stress run over code types are refused with EPERM; with it they
# work. With --modules-disabled the script first sets
# kernel.modules_disabled=1, which cannot be undone: run it in a VM of its
# own (the module then cannot be unloaded either).
#
#   exec_policy.py [--modules-disabled]

import errno
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
from execmem import D, Ktap, Session, require_module, ret_imm32  # noqa: E402


def try_exec():
    """(exec errno, reply, stress errno) in this process."""
    with Session() as s:
        a = s.ok("alloc text 64")
        s.ok(f"write {a} 0 {ret_imm32(77)}")
        err, reply = s.cmd(f"exec {a} 0")
    fd = os.open(f"{D}/stress", os.O_RDWR)
    serr = 0
    try:
        os.write(fd, b"threads=1 ops=10 types=text")
    except OSError as e:
        serr = e.errno
    os.close(fd)
    return err, reply, serr


def main():
    if "--child" in sys.argv:
        err, reply, serr = try_exec()
        print(f"{err} {serr} {reply}")
        return
    require_module()
    t = Ktap()
    if "--modules-disabled" in sys.argv:
        with open("/proc/sys/kernel/modules_disabled", "w") as f:
            f.write("1\n")
        err, reply, serr = try_exec()
        t.check("1_exec_refused_modules_disabled", err == errno.EPERM and "modules_disabled" in reply,
                f"{errno.errorcode.get(err, err)} {reply}")
        t.check("1_stress_refused_modules_disabled", serr == errno.EPERM,
                errno.errorcode.get(serr, str(serr)))
        t.finish()
    err, reply, serr = try_exec()
    t.check("1_exec_allowed_with_cap_sys_module", err == 0 and reply == "77", f"{err} {reply}")
    t.check("1_stress_allowed_with_cap_sys_module", serr == 0, str(serr))
    r = subprocess.run(["capsh", "--drop=cap_sys_module", "--", "-c",
                        f"exec python3 {os.path.abspath(__file__)} --child"],
                       capture_output=True, text=True)
    words = r.stdout.split(None, 2)
    got = (int(words[0]), int(words[1]), words[2] if len(words) > 2 else "") \
        if len(words) >= 2 else (-1, -1, r.stderr.strip())
    t.check("1_exec_refused_without_cap_sys_module",
            got[0] == errno.EPERM and "CAP_SYS_MODULE" in got[2], f"{got}")
    t.check("1_stress_refused_without_cap_sys_module", got[1] == errno.EPERM, f"{got}")
    t.finish()


if __name__ == "__main__":
    main()
