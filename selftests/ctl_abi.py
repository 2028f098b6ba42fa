#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
#
# kselftest for execmem_rs's debugfs ABI: every ctl command and error, the
# permissions and mapping of every type, exec in every RX type, refill of
# freed ranges, session isolation and cleanup, stats, packs, and (x86-64) a
# scan of the kernel page tables for W+X pages. KTAP out; exit 4 (skip)
# when not root or the module is not loaded. Runs on x86-64 and arm64: the
# architecture's values come from lib/execmem.py.
#
# ctl_abi.py [IDS]: the list check's session holds IDS allocations (default
# 200 000, whose reply is above kmalloc's 4 MiB; the KASAN kernels, at about
# 1 ms per command, take 5 000).

import errno
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from execmem import (ARM64, D, FILL_COLUMN, RO, RW, RX, TYPES, Ktap, Session,  # noqa: E402
                     fill_hex, kv, require_module, ret_imm32, stats)

PT = "/sys/kernel/debug/page_tables/kernel"


def main():
    require_module()
    t = Ktap()

    # --- files and modes -------------------------------------------------------
    modes = {f: oct(os.stat(f"{D}/{f}").st_mode & 0o777) for f in
             ("types", "ctl", "stats", "packs", "selftest")}
    t.check("file_modes", modes == {"types": "0o400", "ctl": "0o600", "stats": "0o400",
                                    "packs": "0o400", "selftest": "0o400"}, str(modes))
    t.check("dir_mode", oct(os.stat(D).st_mode & 0o777) == "0o700")
    with open(f"{D}/types") as f:
        rows = [line.split() for line in f]
    t.check("types_table", rows[0] == "name class perms align granularity fill".split() and
            [r[0] for r in rows[1:]] == ["text", "data", "rodata", "ro_after_init", "bpf",
                                         "ftrace", "kprobes"] and
            all(r[5] == FILL_COLUMN[r[0]] and r[4] == "64" for r in rows[1:]),
            f"{len(rows) - 1} types")

    base = stats()
    s = Session()

    # --- every type: alloc, probe, info, write/read, exec or seal -------------------
    for i, ty in enumerate(TYPES):
        id_ = s.ok(f"alloc {ty} 512")
        p = kv(s.ok(f"probe {id_}"))
        w, x = ("0", "1") if ty in RX else ("0", "0") if ty in RO else ("1", "0")
        t.check(f"{ty}_probe_perms", p["writable"] == w and p["executable"] == x, str(p))
        t.check(f"{ty}_probe_2M", p["mapping"] == "2M" and p["pages"] == "1", str(p))
        info = kv(s.ok(f"info {id_}"))
        perms = "r-x" if ty in RX else "r--" if ty in RO else "rw-"
        t.check(f"{ty}_info", info["type"] == ty and info["size"] == "512" and
                info["mapping"] == "2M" and info["perms"] == perms and
                int(info["offset"]) % 64 == 0, str(info))
        t.check(f"{ty}_fresh_is_fill", s.ok(f"read {id_} 0 512") == fill_hex(ty, 512))
        code = ret_imm32(0x1000 + i)
        s.ok(f"write {id_} 0 {code}")
        t.check(f"{ty}_write_read", s.ok(f"read {id_} 0 {len(code) // 2}") == code)
        if ty in RX:
            t.check(f"{ty}_exec", s.ok(f"exec {id_} 0") == str(0x1000 + i))
        else:
            err, reply = s.cmd(f"exec {id_} 0")
            t.check(f"{ty}_exec_refused", err == errno.EPERM and reply.startswith("error: "),
                    f"{errno.errorcode.get(err)} {reply}")
        if ty in RO:
            s.ok(f"seal {id_}")
            # The reason comes from the handle that refused, not from a
            # guess on the errno.
            err, reply = s.cmd(f"write {id_} 0 00")
            t.check(f"{ty}_write_after_seal", err == errno.EPERM and "sealed" in reply, reply)
            err, reply = s.cmd(f"fill {id_} 0 1 0")
            t.check(f"{ty}_fill_after_seal", err == errno.EPERM and "sealed" in reply, reply)
            t.check(f"{ty}_sealed_perms", kv(s.ok(f"info {id_}"))["perms"] == "r--")
            t.check(f"{ty}_sealed_readable", s.ok(f"read {id_} 0 {len(code) // 2}") == code)
        else:
            err, _ = s.cmd(f"seal {id_}")
            t.check(f"{ty}_seal_refused", err == errno.EPERM)
        s.ok(f"free {id_}")

    # --- fill, and freed ranges come back as the fill pattern -------------------------
    # A written RO/RX range is parked on free and refilled by a worker, only
    # what was written; closing a session flushes. Then allocate until the
    # same place comes back.
    for ty in ("text", "rodata", "data"):
        s3 = Session()
        a = s3.ok(f"alloc {ty} 4096 4096")
        where = kv(s3.ok(f"info {a}"))
        s3.ok(f"fill {a} 100 200 0x5a")
        t.check(f"{ty}_fill", s3.ok(f"read {a} 99 202") ==
                fill_hex(ty, 1, 99) + "5a" * 200 + fill_hex(ty, 1, 300))
        cls = "rx" if ty in RX else "ro" if ty in RO else "rw"
        before = stats()[f"{cls}.poke_bytes"]
        s3.ok(f"free {a}")
        s3.close()
        st = stats()
        poked = st[f"{cls}.poke_bytes"] - before
        # Writable memory is zeroed with a memset, which no counter sees:
        # its refill is checked by reading the range back, below.
        if ty not in RW:
            t.check(f"{ty}_free_refills_what_was_written",
                    poked == 200 and st[f"{cls}.pending"] == 0,
                    f"{cls}.poke_bytes +{poked}, {cls}.pending {st[f'{cls}.pending']}")
        s4 = Session()
        for _ in range(600):
            b = s4.ok(f"alloc {ty} 4096 4096")
            got = kv(s4.ok(f"info {b}"))
            if (got["pack"], got["offset"]) == (where["pack"], where["offset"]):
                break
        same = (got["pack"], got["offset"]) == (where["pack"], where["offset"])
        t.check(f"{ty}_freed_range_refilled",
                same and s4.ok(f"read {b} 0 4096") == fill_hex(ty, 4096),
                f"pack {where['pack']} offset {where['offset']}" if same else "place never reused")
        s4.close()

    # --- byte-granular writes and fills, on every architecture -------------------------
    # The ABI is in bytes: arm64's text patching writes from word-aligned
    # addresses only, so an odd offset or length is the module's to handle
    # (it used to be EINVAL "outside the mapping" there).
    for ty in ("text", "rodata", "data"):
        s6 = Session()
        a = s6.ok(f"alloc {ty} 256")
        fill_err, fill_reply = s6.cmd(f"fill {a} 1 33 0x5a")
        write_err, write_reply = s6.cmd(f"write {a} 39 0102030405")
        want = fill_hex(ty, 1) + "5a" * 33 + fill_hex(ty, 5, 34) + "0102030405" + \
            fill_hex(ty, 20, 44)
        got = s6.ok(f"read {a} 0 64")
        t.check(f"{ty}_unaligned_fill_and_write", fill_err == 0 and write_err == 0 and
                got == want, f"fill: {fill_reply!r}, write: {write_reply!r}, read {got}")
        s6.close()

    # --- alignment ---------------------------------------------------------------
    a = s.ok("alloc text 100 4096")
    b = s.ok("alloc text 100 0x200000")
    t.check("align_4096", int(kv(s.ok(f"info {a}"))["offset"]) % 4096 == 0)
    t.check("align_2M", kv(s.ok(f"info {b}"))["offset"] == "0")
    big = s.ok("alloc text 0x300000")
    pb = kv(s.ok(f"probe {big}"))
    t.check("multi_pack_extent", pb["pages"] == str(0x300000 // 4096) and
            pb["executable"] == "1" and pb["writable"] == "0", str(pb))
    t.check("list", s.ok("list").split() == [a, b, big])

    # --- errors: errno, reply, and nothing changed -----------------------------------
    errors = [
        ("", errno.EINVAL), ("   ", errno.EINVAL), ("bogus 1", errno.EINVAL),
        ("alloc", errno.EINVAL), ("alloc text", errno.EINVAL), ("alloc nosuch 64", errno.EINVAL),
        ("alloc text 0", errno.EINVAL), ("alloc text -1", errno.EINVAL),
        ("alloc text 12abc", errno.EINVAL), ("alloc text 0x", errno.EINVAL),
        ("alloc text 99999999999999999999999", errno.EINVAL),
        ("alloc text 64 3", errno.EINVAL), ("alloc text 64 0", errno.EINVAL),
        ("alloc text 64 64 extra", errno.EINVAL),
        ("alloc text 0x4000001", errno.E2BIG), ("alloc data 0xffffffffffffffff", errno.E2BIG),
        ("free 999", errno.ENOENT), ("free x", errno.EINVAL), ("info 999", errno.ENOENT),
        ("probe 999", errno.ENOENT), ("read 999 0 1", errno.ENOENT),
        (f"read {a} 0 101", errno.ERANGE), (f"read {a} 100 1", errno.ERANGE),
        (f"read {a} 0xffffffffffffffff 2", errno.ERANGE), (f"read {a} 0 20000", errno.E2BIG),
        (f"write {a} 0 abc", errno.EINVAL), (f"write {a} 0 zz", errno.EINVAL),
        (f"write {a} 99 0000", errno.ERANGE), (f"write {a} 0 " + "00" * 16385, errno.E2BIG),
        (f"fill {a} 0 101 1", errno.ERANGE), (f"fill {a} 0 1 256", errno.EINVAL),
        (f"exec {a} 100", errno.ERANGE), ("alloc text 64\nalloc text 64", errno.EINVAL),
        (b"alloc text 64\x00", errno.EINVAL),
    ]
    # Let the refill worker finish what earlier frees parked: from here on
    # nothing may change.
    s.ok("trim")
    before = stats()
    for line, want in errors:
        err, reply = s.cmd(line)
        name = line if isinstance(line, str) else repr(line)
        t.check(f"error {name[:40]!r}", err == want and reply.startswith("error: "),
                f"got {errno.errorcode.get(err, err)}, want {errno.errorcode[want]}: {reply}")
    after = stats()
    t.check("errors_change_nothing", before == after and s.ok("list").split() == [a, b, big])

    # --- sessions: isolation, close frees, rmmod refused while open -------------------
    s2 = Session()
    err, _ = s2.cmd(f"info {a}")
    t.check("sessions_isolated", err == errno.ENOENT and s2.ok("list") == "")
    s2.ok("alloc data 100")
    r = subprocess.run(["rmmod", "execmem_rs"], capture_output=True, text=True)
    t.check("rmmod_refused_while_session_open", r.returncode != 0, r.stderr.strip())
    s2.close()
    t.check("stats_live_counts", stats()["total.live"] == base["total.live"] + 3)

    # --- no W+X page anywhere in the kernel's page tables -----------------------------
    # x86-64 only: the arm64 test kernel has no CONFIG_PTDUMP_DEBUGFS, so no
    # page_tables file to scan (nor a W+X check at boot to compare with);
    # there the module's own selftest checks every pack's permissions and
    # its pages' linear-map alias (the `selftest` file, execmem_rs.sh).
    if not ARM64 and os.path.exists(PT):
        with open(PT) as f:
            lines = f.readlines()
        rw = [l for l in lines if re.search(r"\bRW\b", l)]
        x = [l for l in lines if re.search(r"\sx\s", l)]
        wx = [l for l in rw if l in x]
        # Writable and executable ranges both seen: the file was read and
        # its format is the one matched.
        t.check("no_wx_pages", rw and x and not wx,
                wx[0].strip() if wx else f"page_tables/kernel: {len(lines)} lines, "
                f"{len(rw)} writable, {len(x)} executable, none both")
    elif not ARM64:
        t.check("no_wx_pages", False, f"{PT} missing (CONFIG_PTDUMP_DEBUGFS)")

    with open(f"{D}/packs") as f:
        packs = f.read()
    t.check("packs_picture", re.search(r"^pack rx\.\d+ class=rx mapping=2M .*\n  \[[.:#]{64}\]$",
                                       packs, re.M) is not None and
            re.search(r"0x[0-9a-f]{8,}|ffff", packs) is None, "no addresses printed")

    s.close()

    # --- overflow: when the packs' free space is only fragmented, a request
    # that fits no hole gets a page-granular extent of its own, not a pack.
    s5 = Session()
    chunks = []
    for _ in range(256):
        chunks.append(s5.ok("alloc text 0x10000"))
        st = stats()
        if len(chunks) >= 64 and sum(st[f"{ty}.live_bytes"] for ty in RX) == st["rx.backing_bytes"]:
            break
    for c in chunks[1::2]:
        s5.ok(f"free {c}")
    before = stats()
    o = s5.ok("alloc text 0x18000")
    after = stats()
    t.check("overflow_extent_not_pack",
            after["rx.packs"] == before["rx.packs"] and
            after["rx.overflow_extents"] == before["rx.overflow_extents"] + 1 and
            after["rx.overflow_pages"] == before["rx.overflow_pages"] + 24 and
            after["rx.backing_bytes"] == before["rx.backing_bytes"] + 0x18000,
            " ".join(f"{k}={before[k]}->{after[k]}" for k in
                     ("rx.packs", "rx.overflow_extents", "rx.overflow_pages", "rx.backing_bytes")))
    p = kv(s5.ok(f"probe {o}"))
    t.check("overflow_probe", p == {"pages": "24", "mapping": "4K", "writable": "0",
                                    "executable": "1"}, str(p))
    t.check("overflow_fresh_is_fill", all(s5.ok(f"read {o} {off} 0x4000") ==
                                          fill_hex("text", 0x4000, off)
                                          for off in range(0, 0x18000, 0x4000)))
    # The extent's last 16 bytes (arm64's function is 16 bytes long).
    s5.ok(f"write {o} 0x17ff0 {ret_imm32(0x5150)}")
    t.check("overflow_exec", s5.ok(f"exec {o} 0x17ff0") == str(0x5150))
    with open(f"{D}/packs") as f:
        t.check("overflow_in_packs", re.search(r"^pack rx\.\d+ class=rx mapping=4K size=98304 "
                                               r"used=98304 live=1 .* overflow( |$)",
                                               f.read(), re.M) is not None)
    s5.ok(f"free {o}")
    t.check("overflow_freed_unmapped", stats()["rx.overflow_extents"] == before["rx.overflow_extents"])
    s5.close()

    # A reply larger than kmalloc gives (4 MiB): `list` of 200 000 IDs
    # reserves 21 bytes each.
    s6, n = Session(), int(sys.argv[1]) if len(sys.argv) > 1 else 200000
    for _ in range(n):
        os.write(s6.fd, b"alloc data 1")
        os.read(s6.fd, 64)
    err, reply = s6.cmd("list")
    ids = reply.split()
    t.check(f"list_of_{n}_ids", err == 0 and len(ids) == n and len(set(ids)) == n,
            f"{errno.errorcode.get(err, err)}, {len(ids)} IDs {reply[:40]!r}")
    s6.close()

    end = stats()
    t.check("close_frees_everything", end["total.live"] == 0 and end["total.live_bytes"] == 0 and
            end["total.allocs"] == end["total.frees"],
            f"live={end['total.live']} allocs={end['total.allocs']} frees={end['total.frees']}")
    t.finish()


if __name__ == "__main__":
    main()
