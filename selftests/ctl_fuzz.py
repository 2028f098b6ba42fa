#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
#
# Fuzz execmem_rs's ctl ABI, deterministically by seed: malformed and
# adversarial lines (garbage, huge and negative numbers, overflowing
# offset+len, odd hex, other sessions' IDs, use after free, commands split
# across writes, very long lines) mixed with valid commands over two
# sessions. Every write must either succeed or fail with a documented errno
# and an "error: " reply; a well-formed command on an ID its session does
# not hold (another session's, or one it freed) must fail with ENOENT, one
# whose offset + length overflows with ERANGE (ENOENT if not its ID); and
# the module's live count must always equal what the successful commands
# left alive. KTAP out.
#
#   ctl_fuzz.py [LINES] [SEED]      (default 10000 lines, seed 1)

import errno
import os
import random
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import execmem  # noqa: E402
from execmem import RX, Ktap, ret_imm32, require_module, stats  # noqa: E402

TYPES = list(execmem.TYPES)
# EDQUOT, ENOSPC: the session and global caps (large allocations add up).
ERRNOS = {errno.EINVAL, errno.ENOENT, errno.ERANGE, errno.EPERM, errno.E2BIG, errno.ENOMEM,
          errno.EDQUOT, errno.ENOSPC}
RET_LEN = len(ret_imm32(0)) // 2    # bytes of a valid exec's function


def live():
    return stats()["total.live"]


class Session(execmem.Session):
    """A ctl session that remembers the IDs its successful allocs made."""

    def __init__(self):
        super().__init__()
        self.ids = {}          # id -> (type, size)
        self.freed = []        # IDs it freed: a session never reuses one


def number(rng):
    return rng.choice([
        "0", "1", "64", "512", "4096", "0x200000", "0x4000000", "0x4000001", "-1", "-0",
        "18446744073709551615", "18446744073709551616", "99999999999999999999999999",
        "0x", "0xg", "1e3", "+5", " ", "0x" + "f" * 17, str(rng.randrange(1 << 64)),
        str(rng.randrange(70000)), hex(rng.randrange(1 << 22)),
    ])


def line(rng, me, other):
    """The next command(s) of `me`: bytes, a list of the parts of one
    command split across writes, or (bytes, the errno it must fail with)."""
    ids = list(me.ids) or [1]
    some_id = str(rng.choice(ids))
    # IDs count per session: one of the other's may be one of ours too.
    foreign = [i for i in other.ids if i not in me.ids]
    other_id = str(rng.choice(foreign or [424242]))
    kind = rng.randrange(16)
    if kind == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 80)))
    if kind == 1:
        return b"alloc " + rng.choice(TYPES).encode() + b" " + ("9" * rng.randrange(1, 3000)).encode()
    if kind == 2:
        return ("write %s 0 %s" % (some_id, "ab" * rng.randrange(1, 40000))).encode()
    if kind == 3:
        return ("write %s %s %s" % (some_id, number(rng), "abc")).encode()
    if kind == 4:
        return ("read %s %s %s" % (some_id, number(rng), number(rng))).encode()
    if kind == 5:
        return ("fill %s %s %s %s" % (some_id, number(rng), number(rng), number(rng))).encode()
    if kind == 6:
        cmd = rng.choice(["free %s", "info %s", "probe %s", "seal %s", "exec %s 0"]) % other_id
        return cmd.encode(), errno.ENOENT
    if kind == 7 and me.freed:
        cmd = rng.choice(["read %s 0 1", "write %s 0 90", "fill %s 0 1 204", "exec %s 0"])
        return (cmd % rng.choice(me.freed)).encode(), errno.ENOENT
    if kind == 8:
        full = "alloc %s %s" % (rng.choice(TYPES), rng.randrange(1, 5000))
        cut = rng.randrange(1, len(full))
        return [full[:cut].encode(), full[cut:].encode()]
    if kind == 9:
        return ("alloc %s %s %s" % (rng.choice(TYPES + ["Text", "txt"]), number(rng), number(rng))).encode()
    if kind == 10:
        return rng.choice([b"", b"\n", b"\n\n", b"list extra", b"list\nlist", b"alloc text 64\x00",
                           b"exec", b"seal", b"free", b"\xff\xfe", b"alloc\ttext\t64"])
    if kind == 11:
        # offset + length overflows: ERANGE on an ID of ours, else ENOENT.
        cmd = rng.choice(["read %s 0xffffffffffffffff 2", "write %s 0xfffffffffffffffe abcd",
                          "fill %s 0xffffffffffffffff 2 204"]) % some_id
        return cmd.encode(), errno.ERANGE if int(some_id) in me.ids else errno.ENOENT
    # Valid traffic keeps IDs around for the adversarial lines, but no more
    # than 256 per session: a long run must not exhaust the VM's memory.
    if len(me.ids) > 256:
        return ("free %s" % some_id).encode()
    if kind in (12, 13) or not me.ids:
        return ("alloc %s %d" % (rng.choice(TYPES), rng.choice([1, 64, 100, 512, 4096, 70000]))).encode()
    if kind == 14:
        return ("free %s" % some_id).encode()
    return ("write %s 0 %s" % (some_id, "cc" * rng.randrange(0, 8) + "90")).encode()


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    require_module()
    t = Ktap()
    rng = random.Random(seed)
    sessions = [Session(), Session()]
    base = live()
    bad = []
    sent = execs = refused = 0
    while sent < n:
        me = rng.choice(sessions)
        other = sessions[1] if me is sessions[0] else sessions[0]
        data, must = line(rng, me, other), None
        if isinstance(data, tuple):
            data, must = data
        for part in (data if isinstance(data, list) else [data]):
            sent += 1
            err, reply = me.cmd(part)
            text = part.decode(errors="replace")
            refused += bool(err)
            if must is not None and err != must:
                bad.append(f"{text[:60]!r}: errno {err} reply {reply[:60]!r}, want errno {must}")
            elif err and (err not in ERRNOS or not reply.startswith("error: ")):
                bad.append(f"{text[:60]!r}: errno {err} reply {reply[:60]!r}")
            elif not err:
                words = text.split()
                if words[:1] == ["alloc"]:
                    me.ids[int(reply)] = (words[1], int(words[2], 16 if words[2][:2] in ('0x', '0X') else 10))
                elif words[:1] == ["free"]:
                    me.ids.pop(int(words[1], 0), None)
                    me.freed.append(words[1])
        # A valid exec now and then: write a function into a code ID of this
        # session and call it; it must return what it was written to.
        code = [i for i, (ty, size) in me.ids.items() if ty in RX and size >= RET_LEN]
        if code and rng.randrange(25) == 0:
            i, imm = rng.choice(code), rng.randrange(1 << 32)
            sent += 2
            execs += 1
            err, reply = me.cmd(f"write {i} 0 {ret_imm32(imm)}".encode())
            if not err:
                err, reply = me.cmd(f"exec {i} 0".encode())
            if err or reply.strip() != str(imm):
                bad.append(f"valid exec of {i}: errno {err} reply {reply[:40]!r}, want {imm}")
        if sent % 500 < 2:
            want = base + sum(len(s.ids) for s in sessions)
            got = live()
            if got != want:
                bad.append(f"after {sent} lines: total.live {got}, want {want}")
    t.check("fuzz_lines_sent", execs > 0, f"{sent} lines, {execs} valid execs, seed {seed}")
    # Malformed lines were sent and refused: the check saw errors at all.
    t.check("fuzz_clean_errors", refused > 0 and not bad,
            f"{refused} refused, {len(bad)} bad" + (f": {bad[0]}" if bad else ""))
    want = base + sum(len(s.ids) for s in sessions)
    got = live()
    t.check("fuzz_live_accounting", got == want, f"total.live {got}, want {want}")
    for s in sessions:
        s.close()
    end = live()
    t.check("fuzz_close_frees_all", end == base, f"total.live {end}")
    t.finish()


if __name__ == "__main__":
    main()
