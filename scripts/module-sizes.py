#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Per-module memory sizes by type for the execmem_rs benchmark.

Downloads Debian's linux-image-6.12.117+deb12-amd64-unsigned with
`apt-get download` into a temporary directory (outside the repository),
extracts it with `dpkg-deb -x`, reads the ELF section headers of every
.ko.xz and writes one TSV line per module:

    module  text  init_text  rodata  ro_after_init  data  init_data
            text_align ... init_data_align

(the *_align columns are the largest section alignment placed in that type,
0 when the type is empty).

The layout follows kernel/module/main.c of 6.12 (layout_sections,
module_get_offset_and_type, layout_symtab) with CONFIG_MODULE_UNLOAD=y and
CONFIG_KALLSYMS_ALL=y as in Debian's config:

* the loader first drops SHF_ALLOC from __versions, .modinfo and the per-cpu
  section, and marks .data..ro_after_init and __jump_table
  SHF_RO_AFTER_INIT;
* sections are taken mask by mask (exec, read-only, ro_after_init,
  writable), in section order, core pass then init pass (".init*" names),
  each placed at ALIGN(size, sh_addralign);
* kallsyms: the full .symtab and .strtab go to init data, the kept core
  symbols (+ their names and type bytes) are appended to core data.

Sizes are the unrounded per-type totals (the loader page-aligns each type
before allocating; the benchmark models that for the per-allocation peer).
init_data includes init rodata. Python 3 standard library only.
"""

import lzma
import os
import struct
import subprocess
import sys
import tempfile

PKG = "linux-image-6.12.117+deb12-amd64-unsigned"

SHF_WRITE = 0x1
SHF_ALLOC = 0x2
SHF_EXECINSTR = 0x4
SHF_RO_AFTER_INIT = 0x00200000  # kernel-private flag (include/linux/moduleloader.h)
ARCH_SHF_SMALL = 0  # x86
SHN_UNDEF = 0

# (required flags, forbidden flags, core type, init type)
MASKS = [
    (SHF_EXECINSTR | SHF_ALLOC, ARCH_SHF_SMALL, "text", "init_text"),
    (SHF_ALLOC, SHF_WRITE | ARCH_SHF_SMALL, "rodata", "init_data"),
    (SHF_RO_AFTER_INIT | SHF_ALLOC, ARCH_SHF_SMALL, "ro_after_init", None),
    (SHF_WRITE | SHF_ALLOC, ARCH_SHF_SMALL, "data", "init_data"),
    (ARCH_SHF_SMALL | SHF_ALLOC, 0, "data", "init_data"),
]
TYPES = ["text", "init_text", "rodata", "ro_after_init", "data", "init_data"]
SIZEOF_SYM = 24
SIZEOF_MOD_KALLSYMS = 32  # struct mod_kallsyms on x86_64: 3 pointers + uint


def align(x, a):
    a = max(a, 1)
    return (x + a - 1) // a * a


def layout(elf):
    if elf[:4] != b"\x7fELF" or elf[4] != 2 or elf[5] != 1:
        raise ValueError("not a little-endian ELF64")
    e_shoff, = struct.unpack_from("<Q", elf, 0x28)
    e_shentsize, e_shnum, e_shstrndx = struct.unpack_from("<HHH", elf, 0x3A)
    secs = []
    for i in range(e_shnum):
        (name, typ, flags, addr, off, size, link, info, addralign,
         entsize) = struct.unpack_from("<IIQQQQIIQQ", elf, e_shoff + i * e_shentsize)
        secs.append(dict(name_off=name, type=typ, flags=flags, off=off,
                         size=size, link=link, align=addralign, mtype=None))
    stroff = secs[e_shstrndx]["off"]
    for s in secs:
        end = elf.index(b"\0", stroff + s["name_off"])
        s["name"] = elf[stroff + s["name_off"]:end].decode()

    def find(name):
        for i, s in enumerate(secs):
            if i and s["name"] == name:
                return i
        return 0

    for name in ("__versions", ".modinfo", ".data..percpu"):
        i = find(name)
        if i:
            secs[i]["flags"] &= ~SHF_ALLOC
    for name in (".data..ro_after_init", "__jump_table"):
        i = find(name)
        if i:
            secs[i]["flags"] |= SHF_RO_AFTER_INIT

    sizes = dict.fromkeys(TYPES, 0)
    aligns = dict.fromkeys(TYPES, 0)

    def place(mtype, s):
        off = align(sizes[mtype], s["align"])
        sizes[mtype] = off + s["size"]
        aligns[mtype] = max(aligns[mtype], s["align"], 1)
        s["mtype"] = mtype

    for is_init in (False, True):
        for req, forbid, core_t, init_t in MASKS:
            mtype = init_t if is_init else core_t
            for s in secs[1:]:
                if (s["flags"] & req) != req or (s["flags"] & forbid) or s["mtype"]:
                    continue
                if s["name"].startswith(".init") != is_init or mtype is None:
                    continue
                place(mtype, s)

    # layout_symtab (CONFIG_KALLSYMS, KALLSYMS_ALL).
    sym_i = next((i for i, s in enumerate(secs) if s["type"] == 2), 0)  # SHT_SYMTAB
    if sym_i:
        symsect = secs[sym_i]
        strsect = secs[symsect["link"]]
        place("init_data", symsect)
        nsrc = symsect["size"] // SIZEOF_SYM
        ndst = 0
        strtab_size = 0
        for k in range(nsrc):
            st_name, st_info, st_other, st_shndx, st_value, st_size = struct.unpack_from(
                "<IBBHQQ", elf, symsect["off"] + k * SIZEOF_SYM)
            keep = k == 0
            if not keep and st_shndx != SHN_UNDEF and st_shndx < len(secs) and st_name:
                sec = secs[st_shndx]
                keep = bool(sec["flags"] & SHF_ALLOC) and sec["mtype"] not in (
                    None, "init_text", "init_data")
                if sec["name"] == ".data..percpu":
                    keep = True
            if keep:
                s0 = strsect["off"] + st_name
                strtab_size += elf.index(b"\0", s0) - s0 + 1
                ndst += 1
        symoffs = align(sizes["data"], symsect["align"])
        sizes["data"] = symoffs + ndst * SIZEOF_SYM + strtab_size + ndst
        place("init_data", strsect)
        sizes["init_data"] = align(sizes["init_data"], 8) + SIZEOF_MOD_KALLSYMS + nsrc
    return sizes, aligns


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "data/modules-6.12.117.tsv"
    with tempfile.TemporaryDirectory(prefix="execmem-mods-") as tmp:
        subprocess.run(["apt-get", "download", PKG], cwd=tmp, check=True,
                       stdout=subprocess.DEVNULL)
        deb = next(f for f in os.listdir(tmp) if f.endswith(".deb"))
        root = os.path.join(tmp, "root")
        subprocess.run(["dpkg-deb", "-x", os.path.join(tmp, deb), root], check=True)
        rows = []
        for d, _, files in os.walk(root):
            for f in files:
                if not f.endswith(".ko.xz"):
                    continue
                with open(os.path.join(d, f), "rb") as fh:
                    elf = lzma.decompress(fh.read())
                rows.append((f[:-len(".ko.xz")],) + layout(elf))
    rows.sort()
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    with open(out, "w") as fh:
        fh.write("# module sizes in bytes by memory type, %s (%s)\n" % (deb, "scripts/module-sizes.py"))
        fh.write("module\t" + "\t".join(TYPES) + "\t"
                 + "\t".join(t + "_align" for t in TYPES) + "\n")
        for name, sizes, aligns in rows:
            fh.write(name + "\t" + "\t".join(str(sizes[t]) for t in TYPES) + "\t"
                     + "\t".join(str(aligns[t]) for t in TYPES) + "\n")
    tot = {t: sum(s[t] for _, s, _ in rows) for t in TYPES}
    print("%d modules -> %s; totals: %s" % (len(rows), out, tot), file=sys.stderr)


if __name__ == "__main__":
    main()
