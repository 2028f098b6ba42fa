// SPDX-License-Identifier: GPL-2.0

//! The end-to-end probe behind debugfs `selftest`.
//!
//! Reading the file runs the probe and returns KTAP: module text from the
//! kernel's `execmem_alloc()` is made read-only + executable, a tiny
//! function is written into it with `text_poke_copy()` and called, and the
//! page tables are checked; then the same for module data (writable, NX).
//! Everything is freed before the read returns.

use crate::execmem::backend::mem::{Area, ExecmemKind, PageInfo, Perms};
use crate::execmem::text::Text;
use core::fmt::{Arguments, Write};
use kernel::prelude::*;

/// The value the probe's function returns.
const MAGIC: u32 = 0x2a5e_c0de;

/// `ENDBR64; mov eax, imm32; ret`: a complete function returning `imm`,
/// valid as the target of an indirect call with IBT.
pub fn ret_imm32(imm: u32) -> [u8; 10] {
    let i = imm.to_le_bytes();
    [0xf3, 0x0f, 0x1e, 0xfa, 0xb8, i[0], i[1], i[2], i[3], 0xc3]
}

/// Collects KTAP results.
struct Ktap<'a> {
    out: &'a mut Text,
    n: u32,
    failed: u32,
}

impl Ktap<'_> {
    fn check(&mut self, ok: bool, name: Arguments<'_>, detail: Arguments<'_>) -> Result {
        self.n = self.n.saturating_add(1);
        if !ok {
            self.failed = self.failed.saturating_add(1);
        }
        let verdict = if ok { "ok" } else { "not ok" };
        Text::result(writeln!(self.out, "{verdict} {} {name} # {detail}", self.n))
    }

    /// Checks the mapping of `area`'s first page: present, and writable and
    /// executable exactly as asked.
    fn mapping(&mut self, what: &str, area: &Area, writable: bool, exec: bool) -> Result {
        let p: PageInfo = area.probe(0)?;
        self.check(
            p.present,
            format_args!("{what}_present"),
            format_args!("level={}", p.level),
        )?;
        let w = if writable { "writable" } else { "not_writable" };
        self.check(
            p.writable == writable,
            format_args!("{what}_{w}"),
            format_args!("writable={}", u8::from(p.writable)),
        )?;
        let x = if exec { "executable" } else { "not_executable" };
        self.check(
            p.executable == exec,
            format_args!("{what}_{x}"),
            format_args!("executable={}", u8::from(p.executable)),
        )
    }
}

fn text_probe(t: &mut Ktap<'_>) -> Result {
    let mut area = Area::execmem(ExecmemKind::ModuleText, 4096)?;
    // Fill with INT3 while private, then seal: never writable + executable.
    area.fill(0, 0xcc, area.size())?;
    area.protect(Perms::ReadExec)?;
    area.write(0, &ret_imm32(MAGIC))?;
    // SAFETY: offset 0 now holds `ENDBR64; mov eax, MAGIC; ret`, a complete
    // function for the C ABI that touches no memory and returns.
    let got = unsafe { area.call(0)? };
    t.check(
        got == u64::from(MAGIC),
        format_args!("text_exec"),
        format_args!("returned {got:#x}, expected {MAGIC:#x}"),
    )?;
    t.mapping("text", &area, false, true)
    // `area` drops here: execmem_free() restores the permissions.
}

fn data_probe(t: &mut Ktap<'_>) -> Result {
    let area = Area::execmem(ExecmemKind::ModuleData, 4096)?;
    area.write(100, b"execmem_rs")?;
    let mut back = [0u8; 10];
    area.read(100, &mut back)?;
    t.check(
        &back == b"execmem_rs",
        format_args!("data_write_read"),
        format_args!("10 bytes"),
    )?;
    t.mapping("data", &area, true, false)
}

/// Runs the probe, writing KTAP to `out`. Returns the number of failures.
pub fn run(out: &mut Text) -> Result<u32> {
    Text::result(writeln!(out, "KTAP version 1\n1..8"))?;
    let mut t = Ktap {
        out,
        n: 0,
        failed: 0,
    };
    text_probe(&mut t)?;
    data_probe(&mut t)?;
    Ok(t.failed)
}
