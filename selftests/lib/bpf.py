# SPDX-License-Identifier: GPL-2.0
#
# Real BPF programs through the bpf() syscall, with ctypes only (no libbpf
# in the guest): socket filters of a chosen length, loaded, run with
# BPF_PROG_TEST_RUN, closed. The JIT compiles each into executable memory
# from bpf_prog_pack_alloc(): execmem_rs's packs when it serves "bpf".

import ctypes
import os
import random
import resource
import struct

# bpf(2)'s number: x86-64's, or the generic table's (arm64).
SYS_BPF = {"x86_64": 321, "aarch64": 280}[os.uname().machine]
BPF_PROG_LOAD, BPF_PROG_TEST_RUN = 5, 10
BPF_PROG_TYPE_SOCKET_FILTER, BPF_PROG_TYPE_XDP = 1, 6
ATTR_SIZE = 160

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def insn(code, dst=0, src=0, off=0, imm=0):
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


MOV64_IMM_R0 = 0xb7     # r0 = imm
ADD64_IMM_R0 = 0x07     # r0 += imm
EXIT = 0x95


def program(n_insns):
    """r0 = 0; r0 += 1 (n - 2 times); exit: returns n - 2."""
    body = [insn(MOV64_IMM_R0, imm=0)]
    body += [insn(ADD64_IMM_R0, imm=1)] * max(n_insns - 2, 0)
    body.append(insn(EXIT))
    return b"".join(body), max(n_insns - 2, 0)


def _bpf(cmd, attr):
    buf = ctypes.create_string_buffer(attr, ATTR_SIZE)
    r = _libc.syscall(SYS_BPF, cmd, buf, ATTR_SIZE)
    if r < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return r, buf


def load(n_insns, name=b"execmem_rs", prog_type=BPF_PROG_TYPE_SOCKET_FILTER):
    """Loads a program (a socket filter unless told) of n_insns
    instructions; returns (fd, expected return value)."""
    code, ret = program(n_insns)
    prog = ctypes.create_string_buffer(code, len(code))
    lic = ctypes.create_string_buffer(b"GPL")
    attr = struct.pack("<IIQQIIQII16s", prog_type, len(code) // 8,
                       ctypes.addressof(prog), ctypes.addressof(lic), 0, 0, 0, 0, 0,
                       name[:15])
    fd, _ = _bpf(BPF_PROG_LOAD, attr)
    return fd, ret


def run(fd, repeat=1):
    """Runs a loaded program on a 64-byte packet, `repeat` times; its r0."""
    data = ctypes.create_string_buffer(b"\x00" * 64, 64)
    attr = struct.pack("<IIIIQQII", fd, 0, 64, 0, ctypes.addressof(data), 0, repeat, 0)
    _, buf = _bpf(BPF_PROG_TEST_RUN, attr)
    return struct.unpack_from("<I", buf.raw, 4)[0]


def allow_fds(n):
    """Lets this process hold n more open files (each live program is an
    fd; the default soft limit is 1024)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = soft + n
    if hard != resource.RLIM_INFINITY and hard < want:
        hard = want            # root may raise it
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def sizes(n, seed=1):
    """n program lengths, 10..400 instructions, from a fixed seed."""
    rng = random.Random(seed)
    return [rng.randint(10, 400) for _ in range(n)]
