# SPDX-License-Identifier: GPL-2.0
#
# The one Python client of execmem_rs's debugfs ABI, for every test, the
# benchmark driver and the demo: sessions on `ctl`, the `key value` files,
# KTAP output, and the code snippets the tests write.

import errno
import os
import sys

D = "/sys/kernel/debug/execmem_rs"
# The tests' bound on a parked range's wait for its refill (execmem_rs.rst):
# the worker refills a range as soon as it gets a CPU, ~2 ms in a quiet VM,
# but wall-clock tails are noisy under TCG (11 ms seen on a loaded host), so
# the tests allow 50 ms: still a third of the ~160 ms a range waited when
# frees were refilled in batches of 32 (50 frees, 5 ms apart).
REFILL_BOUND_NS = 50_000_000
PARAMS = "/sys/module/execmem_rs/parameters"
KSFT_PASS, KSFT_FAIL, KSFT_SKIP = 0, 1, 4
RX = ("text", "bpf", "ftrace", "kprobes")
RO = ("rodata", "ro_after_init")
RW = ("data",)
TYPES = ("text", "data", "rodata", "ro_after_init", "bpf", "ftrace", "kprobes")

# What differs between the architectures, in this one place (the tests stay
# arch-neutral):
# - the trap freed and fresh code is filled with: x86-64's INT3 byte, arm64's
#   4-byte word BRK #0x100, repeated from every allocation's start (data is
#   zeroed on both);
# - the function ret_imm32() writes, and its landing pad (ENDBR64, BTI c);
# - how rx and ro memory may be written: arm64 patches whole aligned words,
#   so a `write` there needs a word-aligned offset and a `fill` a
#   word-aligned offset and length (EINVAL otherwise); x86-64 takes any.
#   The tests use aligned offsets and lengths, so they run on both.
ARCH = os.uname().machine
ARM64 = ARCH == "aarch64"
if ARM64:
    TRAP = (0xd4202000).to_bytes(4, "little")
    NO_LANDING_PAD = "no BTI c landing pad at the entry"
else:
    TRAP = b"\xcc"
    NO_LANDING_PAD = "no ENDBR64 landing pad at the entry"
FILL = {t: TRAP for t in RX} | {t: b"\0" for t in RO + RW}
# The `fill` column of debugfs `types`: 0xcc, 0xd4202000, 0x00.
FILL_COLUMN = {t: f"{int.from_bytes(b, 'little'):#0{2 + 2 * len(b)}x}" for t, b in FILL.items()}


def fill_hex(ty, length, offset=0):
    """The hex `read` returns for `length` untouched bytes at `offset` of a
    fresh (or refilled) allocation of type `ty`."""
    f = FILL[ty]
    start = offset % len(f)
    n = start + length
    return (f * (n // len(f) + 1))[start:n].hex()


def class_of(ty):
    return "rx" if ty in RX else "ro" if ty in RO else "rw"


class Ktap:
    """KTAP results, numbered as they come; finish() prints the plan and
    exits with kselftest's convention (a run that only skipped is a skip,
    which the VM runner counts as a failure)."""

    def __init__(self):
        self.n = self.passed = self.failed = self.skipped = 0
        print("KTAP version 1", flush=True)

    def check(self, name, ok, detail=""):
        self.n += 1
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        print(f"{'ok' if ok else 'not ok'} {self.n} {name}" + (f" # {detail}" if detail else ""),
              flush=True)
        return ok

    def skip(self, name, why):
        self.n += 1
        self.skipped += 1
        print(f"ok {self.n} {name} # SKIP {why}", flush=True)

    def finish(self):
        print(f"1..{self.n}")
        print(f"# totals: pass:{self.passed} fail:{self.failed} skip:{self.skipped}")
        if self.failed:
            sys.exit(KSFT_FAIL)
        sys.exit(KSFT_SKIP if self.passed == 0 else KSFT_PASS)


def skip_all(why):
    print(f"KTAP version 1\n1..0 # SKIP {why}")
    sys.exit(KSFT_SKIP)


def module_file():
    """($EXECMEM_RS_KO, None) if that module file exists, else (None, why):
    the tests that unload the module need it to load it again."""
    ko = os.environ.get("EXECMEM_RS_KO", "")
    if ko and os.path.exists(ko):
        return ko, None
    return None, f"no module file to load: EXECMEM_RS_KO={ko!r}"


def require_module():
    if os.geteuid() != 0:
        skip_all("must be run as root")
    if not os.path.isdir(D):
        skip_all(f"execmem_rs is not loaded ({D} missing)")


class Session:
    """One open command file (`ctl` by default; `bench` takes commands the
    same way): write a command, read its reply."""

    def __init__(self, name="ctl", fd=None):
        """Opens the file, or takes `fd`, one already open (and closes it)."""
        self.fd = os.open(f"{D}/{name}", os.O_RDWR) if fd is None else fd

    def cmd(self, line):
        """Returns (errno or 0, reply without the trailing newline)."""
        err = 0
        try:
            os.write(self.fd, line.encode() if isinstance(line, str) else line)
        except OSError as e:
            err = e.errno
        out = b""
        while True:
            chunk = os.read(self.fd, 65536)
            if not chunk:
                break
            out += chunk
        return err, out.decode(errors="replace").rstrip("\n")

    def ok(self, line):
        err, reply = self.cmd(line)
        if err:
            raise RuntimeError(f"{line!r} failed: {errno.errorcode.get(err)} {reply}")
        return reply

    def close(self):
        os.close(self.fd)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


TSV = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "data",
                   "modules-6.12.117.tsv")
# The memory types of a module's core (kept until unload) sections.
TRACE_TYPES = ("text", "rodata", "ro_after_init", "data")


def _tsv_rows(n):
    with open(TSV) as f:
        rows = [line.rstrip("\n").split("\t") for line in f if not line.startswith("#")]
    return rows[0], rows[1:][:n]


def modules_trace(n=None):
    """The real Debian 6.12 modules (data/modules-6.12.117.tsv): a list of
    (name, {type: size}) of their core sections for the first n (all by
    default)."""
    header, rows = _tsv_rows(n)
    col = {name: i for i, name in enumerate(header)}
    return [(r[0], {t: int(r[col[t]]) for t in TRACE_TYPES}) for r in rows]


def module_columns(n=None):
    """The first n modules (all by default) as (name, the row's 12 numeric
    columns): what the kernel bench's `trace add` takes, parsed there by the
    same code as on the host (execmem/binpack/workload.rs)."""
    return [(r[0], r[1:]) for r in _tsv_rows(n)[1]]


def keyvalues(path):
    with open(path) as f:
        return {k: v.strip() for k, v in (line.split(None, 1) for line in f if line.strip())}


def stats():
    return {k: int(v) for k, v in keyvalues(f"{D}/stats").items()}


def vmstat(key):
    """A /proc/vmstat counter, or None where the kernel has none (arm64 has
    no direct_map_level*_splits: its linear map is never split)."""
    with open("/proc/vmstat") as f:
        v = dict(line.split() for line in f).get(key)
    return None if v is None else int(v)


def meminfo(key):
    """A /proc/meminfo value in kB, or None where the kernel has none (no
    DirectMap1G line without 1 GiB pages)."""
    with open("/proc/meminfo") as f:
        v = {k.rstrip(":"): rest for k, *rest in (line.split() for line in f)}.get(key)
    return None if not v else int(v[0])


def splits():
    return vmstat("direct_map_level2_splits"), vmstat("direct_map_level3_splits")


def param(name, value=None):
    path = f"{PARAMS}/{name}"
    if value is not None:
        with open(path, "w") as f:
            f.write(f"{value}\n")
    with open(path) as f:
        return f.read().strip()


def kv(reply):
    return dict(w.split("=", 1) for w in reply.split())


def _words(*words):
    return b"".join(w.to_bytes(4, "little") for w in words).hex()


def ret_imm32(imm):
    """A function returning imm, as hex: x86-64 ENDBR64; mov eax, imm32; ret
    (10 bytes), arm64 BTI c; movz w0, #lo; movk w0, #hi, lsl #16; ret (16
    bytes)."""
    if ARM64:
        return _words(0xd503245f, 0x52800000 | (imm & 0xffff) << 5,
                      0x72a00000 | (imm >> 16) << 5, 0xd65f03c0)
    return "f30f1efab8" + imm.to_bytes(4, "little").hex() + "c3"


def ret1_without_landing_pad():
    """A complete function returning 1 that an indirect call may not land
    on, as hex: x86-64 mov eax, 1; ret (no ENDBR64), arm64 movz w0, #1; ret
    (no BTI c)."""
    if ARM64:
        return _words(0x52800020, 0xd65f03c0)
    return "b801000000c3"


def spin(loops, imm=1):
    """A function spinning `loops` times, then returning imm: x86-64 ENDBR64;
    mov ecx, loops; 1: pause; dec ecx; jnz 1b; mov eax, imm; ret, arm64
    BTI c; mov w1, loops (movz, movk); 1: yield; subs w1, w1, #1; b.ne 1b;
    mov w0, imm (movz, movk); ret."""
    if ARM64:
        return _words(0xd503245f, 0x52800001 | (loops & 0xffff) << 5,
                      0x72a00001 | (loops >> 16) << 5, 0xd503203f, 0x71000421, 0x54ffffc1,
                      0x52800000 | (imm & 0xffff) << 5, 0x72a00000 | (imm >> 16) << 5,
                      0xd65f03c0)
    return ("f30f1efa" + "b9" + loops.to_bytes(4, "little").hex() + "f390" + "ffc9" + "75fa" +
            "b8" + imm.to_bytes(4, "little").hex() + "c3")


def stress(params):
    """One stress run (blocks until it is done): (report dict, 0), or
    ({}, errno) if the write failed."""
    fd = os.open(f"{D}/stress", os.O_RDWR)
    try:
        os.write(fd, params.encode())
        out = b""
        while chunk := os.read(fd, 4096):
            out += chunk
        return dict(line.split() for line in out.decode().splitlines()), 0
    except OSError as e:
        return {}, e.errno
    finally:
        os.close(fd)
