// SPDX-License-Identifier: GPL-2.0

//! The end-to-end probe behind debugfs `selftest`.
//!
//! Reading the file runs the probe and returns KTAP. First the kernel's own
//! path: module text from `execmem_alloc()` is made read-only + executable,
//! a tiny function is written into it with `text_poke_copy()` and called,
//! and the page tables are checked; then the same for module data
//! (writable, NX). Then the same through execmem_rs's allocator for every
//! type: code is poked and called, read-only data is poked, read back and
//! sealed, and every mapping is checked in the page tables (2 MiB, W^X,
//! read-only after seal); an entry without the landing pad is refused.
//! Then kprobes' deferred release and a BPF free that empties its extent,
//! through a provider of the probe's own, the `packs` listing's locking,
//! and a debugfs directory whose handle drops before its file's.
//! Last, the engines' invariants (`check()`) and the placement of every
//! pack inside execmem's own range. Everything is freed and refilled before
//! the read returns. Some checks read allocator-wide counters (live
//! allocations, mapped bytes): read it while nothing else allocates (no
//! other session, `serve` off), as the tests do.

use crate::execmem::allocator::{Allocator, Any, Requester};
use crate::execmem::backend::arch::{ret_imm32, LEVEL_2M, RET_IMM32_LEN};
use crate::execmem::backend::debugfs::{self, Dir, File};
use crate::execmem::backend::kthread::Thread;
use crate::execmem::backend::mem::{
    Area, ExecmemKind, PageInfo, Perms, Range, RangeKind, PAGE_SIZE,
};
use crate::execmem::backend::param::Flags;
use crate::execmem::backend::provider::{register_ownerless, Consumer, Serve};
use crate::execmem::backend::sched::{cond_resched, now_ns};
use crate::execmem::binpack::types::{Class, ExecmemType};
use crate::execmem::debugfs::buf::Buf;
use crate::execmem::debugfs::show::{Show, ShowFile};
use crate::execmem::provider::{Provider, SERVE_BPF, SERVE_KPROBES, SERVE_NAMES};
use core::fmt::{Arguments, Write};
use core::sync::atomic::{AtomicBool, Ordering};
use kernel::prelude::*;
use kernel::{bindings, c_str, sync::Arc};

/// The value the probe's function returns.
const MAGIC: u32 = 0x2a5e_c0de;

/// Collects KTAP results.
struct Ktap<'a> {
    out: &'a mut Buf,
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
        Buf::result(writeln!(self.out, "{verdict} {} {name} # {detail}", self.n))
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
    // Fill with the trap while private, then seal: never writable +
    // executable.
    area.fill(crate::execmem::binpack::types::arch::TRAP)?;
    area.protect(Perms::ReadExec)?;
    let mut w = area.window()?;
    w.write(0, &ret_imm32(MAGIC))?;
    // SAFETY: offset 0 now holds `ret_imm32(MAGIC)`, a complete
    // function for the C ABI that touches no memory and returns.
    let got = unsafe { w.call(0)? };
    t.check(
        got == u64::from(MAGIC),
        format_args!("text_exec"),
        format_args!("returned {got:#x}, expected {MAGIC:#x}"),
    )?;
    t.mapping("text", &area, false, true)
    // `area` drops here: execmem_free() restores the permissions.
}

fn data_probe(t: &mut Ktap<'_>) -> Result {
    let mut area = Area::execmem(ExecmemKind::ModuleData, 4096)?;
    let mut w = area.window()?;
    w.write(100, b"execmem_rs")?;
    let mut back = [0u8; 10];
    w.read(100, &mut back)?;
    t.check(
        &back == b"execmem_rs",
        format_args!("data_write_read"),
        format_args!("10 bytes"),
    )?;
    t.mapping("data", &area, true, false)
}

/// Every type through execmem_rs: write, read back, call or seal, and the
/// mapping of its pages.
fn packed_probe(t: &mut Ktap<'_>, alloc: &Arc<Allocator>) -> Result {
    for (i, ty) in ExecmemType::ALL.into_iter().enumerate() {
        let name = ty.name();
        let mut a = alloc.alloc(ty, 512, None, Requester::User)?;
        let imm = MAGIC ^ i as u32;
        let code = ret_imm32(imm);
        a.write(0, &code)?;
        let mut back = [0u8; RET_IMM32_LEN];
        a.read(0, &mut back)?;
        t.check(
            back == code,
            format_args!("{name}_write_read"),
            format_args!("{RET_IMM32_LEN} bytes"),
        )?;
        if let Any::Code(c) = &a {
            // SAFETY: offset 0 holds `ret_imm32(imm)`, a complete function
            // that touches no memory and returns.
            let got = unsafe { c.call(0)? };
            t.check(
                got == u64::from(imm),
                format_args!("{name}_exec"),
                format_args!("returned {got:#x}, expected {imm:#x}"),
            )?;
            // SAFETY: offset 64 holds the fill, the trap, not a landing
            // pad: `call` refuses it before calling anything.
            let r = unsafe { c.call(64) };
            t.check(
                r.map_err(|r| r.err) == Err(EINVAL),
                format_args!("{name}_entry_without_landing_pad_refused"),
                format_args!("{r:?}"),
            )?;
        }
        if let Any::ReadOnly(_) = a {
            if let Any::ReadOnly(r) = a {
                a = Any::Sealed(r.seal());
            }
            // The handle refuses, the page tables say read-only and not
            // executable, and the bytes are what was written.
            let m = a.common().probe()?;
            let mut back = [0u8; RET_IMM32_LEN];
            a.read(0, &mut back)?;
            t.check(
                a.write(0, &[0]).map_err(|r| r.err) == Err(EPERM)
                    && !m.writable
                    && !m.executable
                    && back == code,
                format_args!("{name}_sealed_read_only"),
                format_args!(
                    "writable={} executable={}",
                    u8::from(m.writable),
                    u8::from(m.executable)
                ),
            )?;
        }
        let m = a.common().probe()?;
        let (w, x) = match ty.class() {
            Class::Rx => (false, true),
            Class::Ro => (false, false),
            Class::Rw => (true, false),
        };
        t.check(
            m.present && m.huge_pages == m.pages && m.writable == w && m.executable == x,
            format_args!("{name}_mapping"),
            format_args!(
                "pages={} huge={} writable={} executable={}",
                m.pages,
                m.huge_pages,
                u8::from(m.writable),
                u8::from(m.executable)
            ),
        )?;
    }
    Ok(())
}

/// Every pack of every class, while one allocation of each type holds one:
/// its mapping has the class's permissions and the direct-map alias of its
/// pages is not writable (x86-64: read-only; arm64: not mapped) unless the
/// class is data.
fn pack_permissions(t: &mut Ktap<'_>, alloc: &Arc<Allocator>) -> Result {
    let mut held = KVec::new();
    for ty in ExecmemType::ALL {
        held.push(alloc.alloc(ty, 512, None, Requester::User)?, GFP_KERNEL)?;
    }
    for class in Class::ALL {
        let (mut n, mut bad) = (0u32, 0u32);
        let (mut pte, mut alias) = ("unknown", "unknown");
        alloc.for_each_pack(class, |p| {
            n += 1;
            pte = p.page.map_or("unknown", |i| i.perms());
            alias = p.alias.map_or("unknown", |i| i.perms());
            let alias_ok = match class {
                Class::Rw => alias == "rw-",
                Class::Rx | Class::Ro => p.alias.is_some_and(|i| !i.writable),
            };
            if pte != class.perms() || !alias_ok {
                bad += 1;
            }
            Ok(())
        })?;
        t.check(
            n > 0 && bad == 0,
            format_args!("{}_pack_permissions", class.name()),
            format_args!("{n} pack(s), {bad} not as expected; last: pte={pte} alias={alias}"),
        )?;
    }
    drop(held);
    Ok(())
}

/// A read-write area mapped with 2 MiB pages, then protected: x86-64's
/// `set_memory_rox()` changes 2 MiB entries; arm64's `set_memory_*()`
/// refuse them with a WARN (half-way, and the restore too, so the area
/// leaks): `protect` must refuse first, with `EINVAL`, and the area stays
/// read-write and is freed.
fn huge_area_protect(t: &mut Ktap<'_>) -> Result {
    const SIZE: usize = 2 << 20;
    let range = Range::of(RangeKind::Text)?;
    let mut area = Area::vmalloc(SIZE, SIZE, true, &range, bindings::GFP_KERNEL)?;
    let huge = area.probe(0)?.level == LEVEL_2M;
    let r = area.protect(Perms::ReadExec);
    let want_ok = !crate::execmem::backend::arch::SEALED_AT_BIRTH;
    t.check(
        huge && r.is_ok() == want_ok
            && (want_ok || (r == Err(EINVAL) && area.perms() == Perms::ReadWrite)),
        format_args!("huge_area_protect"),
        format_args!(
            "2 MiB-mapped {huge}; protect: {r:?} (want {}), now {:?}",
            if want_ok { "Ok" } else { "EINVAL" },
            area.perms()
        ),
    )
}

/// Code packs are guarded as the kernel guards the code it maps: on arm64
/// with BTI, `set_memory_x()` makes a page guarded (`PTE_MAYBE_GP`), so an
/// indirect branch into it must land on `BTI`; a pack mapped without it
/// would lose that check for every BPF image served. (x86-64 has no such
/// bit: both sides are unguarded.)
fn guarded_as_kernel_code(t: &mut Ktap<'_>, alloc: &Arc<Allocator>) -> Result {
    if !cfg!(target_arch = "aarch64") {
        // Nothing to compare: no page is ever guarded.
        return Ok(());
    }
    let mut area = Area::execmem(ExecmemKind::ModuleText, 4096)?;
    area.fill(crate::execmem::binpack::types::arch::TRAP)?;
    area.protect(Perms::ReadExec)?;
    let kernel = area.probe(0)?.guarded;
    drop(area);
    let held = alloc.alloc(ExecmemType::Text, 512, None, Requester::User)?;
    let (mut n, mut same) = (0u32, 0u32);
    alloc.for_each_pack(Class::Rx, |p| {
        n += 1;
        same += u32::from(p.page.is_some_and(|i| i.guarded == kernel));
        Ok(())
    })?;
    drop(held);
    // The test VM's CPU has BTI (run_vm_arm64.sh: -cpu max), so the
    // kernel guards its code; unguarded, the comparison would say nothing.
    t.check(
        kernel && n > 0 && same == n,
        format_args!("rx_packs_guarded_as_kernel_code"),
        format_args!(
            "kernel code guarded={} (wants a CPU with BTI); {same} of {n} rx pack(s) the same",
            u8::from(kernel)
        ),
    )
}

/// kprobes' free path as the kernel takes it, which the kernel's own
/// suite never reaches (it frees no instruction page): the page moves to
/// the freed tree and the provider's work item refills and releases it.
/// Through a provider of the probe's own over the same allocator (not the
/// registered one: the kernel's requests never see it), more pages than
/// one page of kprobes slots has slots, allocated, then freed back to back.
fn kprobes_deferred_release(t: &mut Ktap<'_>, alloc: &Arc<Allocator>) -> Result {
    const PAGES: usize = 300;
    /// How long the work item may take to release them all.
    const BOUND_NS: u64 = 5_000_000_000;
    static KPROBES_ONLY: Flags = Flags::new(SERVE_KPROBES, &SERVE_NAMES);
    let p = Provider::new(alloc, &KPROBES_ONLY)?;
    let mut addrs = KVec::with_capacity(PAGES, GFP_KERNEL)?;
    for _ in 0..PAGES {
        match p.alloc(Consumer::Kprobes, PAGE_SIZE) {
            Some(a) => addrs.push(a, GFP_KERNEL)?,
            None => break,
        }
    }
    let aligned = addrs.iter().all(|a| a % PAGE_SIZE == 0);
    t.check(
        addrs.len() == PAGES && aligned,
        format_args!("provider_kprobes_pages"),
        format_args!("{} of {PAGES} page-aligned pages", addrs.len()),
    )?;
    let freed = addrs.iter().filter(|&&a| p.free(a)).count();
    // Freed already (parked for the work item, or released): not ours.
    let again = addrs.iter().filter(|&&a| p.free(a)).count();
    let t0 = now_ns();
    while p.live() != 0 && now_ns().saturating_sub(t0) < BOUND_NS {
        cond_resched();
    }
    let (live, ms) = (p.live(), now_ns().saturating_sub(t0) / 1_000_000);
    t.check(
        freed == addrs.len() && again == 0 && live == 0,
        format_args!("provider_kprobes_deferred_release"),
        format_args!(
            "{freed} freed, {again} double frees taken, {live} live after {ms} ms (bound {} ms)",
            BOUND_NS / 1_000_000
        ),
    )?;
    // (A page still in the freed tree at this drop would be released with
    // the provider.)
    drop(p);
    Ok(())
}

/// A request the class's space can hold only in an extent's free front,
/// where the engine first tries an overflow extent: the allocator's first
/// pass, which maps nothing, must leave the engine as it was when it
/// declines to map, or the real pass places the request a second time and
/// the first placement is never freed. On an allocator of its own, so that
/// no spare pack or free space other checks left changes the engine's
/// choice.
fn probe_places_nothing(t: &mut Ktap<'_>) -> Result {
    let a = Allocator::new()?;
    let big = a.alloc(ExecmemType::Text, (4 << 20) - 64, None, Requester::User)?;
    let tail = a.alloc(ExecmemType::Text, 64, None, Requester::User)?;
    drop(big);
    // The front is free in the engine, not parked for its refill.
    a.flush();
    let placed = a.alloc(ExecmemType::Text, 512 << 10, None, Requester::User)?;
    let overflow = a.report(Class::Rx).engine.overflow;
    drop(placed);
    drop(tail);
    a.flush();
    let live = a.report(Class::Rx).engine.live;
    t.check(
        live == 0,
        format_args!("probe_places_nothing"),
        format_args!("{live} live after every free ({overflow} overflow extent(s) while placed)"),
    )
}

/// The kernel's hook refuses a provider without an owner (`EINVAL`),
/// whether or not one is registered: only the owner's references keep a
/// provider registered while the kernel holds its memory.
fn provider_needs_owner(t: &mut Ktap<'_>) -> Result {
    let r = register_ownerless();
    t.check(
        r == Err(EINVAL),
        format_args!("provider_without_owner_refused"),
        format_args!("register: {r:?} (want EINVAL)"),
    )
}

/// A BPF image whose free empties its extent (one above a pack's size has
/// an extent of its own): the extent is unmapped by the time the kernel's
/// free returns, as the stock path `vfree()`s such an image there, not
/// left mapped and executable, untouched, for the refill worker.
fn bpf_free_unmaps_at_once(t: &mut Ktap<'_>, alloc: &Arc<Allocator>) -> Result {
    const SIZE: usize = 3 << 20;
    static BPF_ONLY: Flags = Flags::new(SERVE_BPF, &SERVE_NAMES);
    let p = Provider::new(alloc, &BPF_ONLY)?;
    // Nothing another free left for the worker counts below.
    alloc.flush();
    let before = alloc.mapped_bytes();
    let a = p.alloc(Consumer::Bpf, SIZE);
    let during = alloc.mapped_bytes();
    let freed = a.is_some_and(|a| p.free(a));
    let after = alloc.mapped_bytes();
    t.check(
        freed && during >= before.saturating_add(SIZE) && after <= before,
        format_args!("provider_bpf_free_unmaps_at_once"),
        format_args!(
            "{} KiB mapped, {} KiB with a 3 MiB image, {} KiB when its free returned",
            before >> 10,
            during >> 10,
            after >> 10
        ),
    )?;
    drop(p);
    Ok(())
}

/// `flush()` returns once nothing parked is left unrefilled, also when the
/// refill worker has taken a range off the queue and is still poking it:
/// 1 MiB of code written and freed, its range taken by the worker (the
/// queue empty), then a flush, after which the range is back in the engine.
fn flush_waits_for_the_worker(t: &mut Ktap<'_>, alloc: &Arc<Allocator>) -> Result {
    const SIZE: usize = 1 << 20;
    /// How long the worker may take to pick the range up.
    const BOUND_NS: u64 = 1_000_000_000;
    /// Tries to catch the worker between taking the range and freeing it
    /// (one in one to five did, x86-64 and arm64 under TCG).
    const TRIES: u32 = 50;
    alloc.flush();
    let live = alloc.report(Class::Rx).engine.live;
    let (mut tries, mut caught, mut after) = (0, false, live);
    while tries < TRIES && !caught {
        tries += 1;
        let mut c = alloc.alloc_code(ExecmemType::Text, SIZE, None, Requester::User)?;
        c.fill(0, 0x90, SIZE)?;
        drop(c);
        let t0 = now_ns();
        while alloc.report(Class::Rx).pending != 0 && now_ns().saturating_sub(t0) < BOUND_NS {
            cond_resched();
        }
        // Off the queue and not back in the engine: the worker has it.
        let r = alloc.report(Class::Rx);
        caught = r.pending == 0 && r.engine.live > live;
        alloc.flush();
        after = alloc.report(Class::Rx).engine.live;
    }
    t.check(
        caught && after == live,
        format_args!("flush_waits_for_the_worker"),
        format_args!(
            "rx live {live} before a 1 MiB text allocation, {after} after its free and a flush; \
             worker {} mid-refill (try {tries} of {TRIES})",
            if caught { "caught" } else { "never caught" }
        ),
    )?;
    Ok(())
}

/// `packs` is listed without the class lock: while [`Allocator::for_each_pack`]
/// calls back for an rx pack, another thread reads the rx counters (which
/// take that lock) and is expected to be done within a second.
fn packs_listed_without_the_lock(t: &mut Ktap<'_>, alloc: &Arc<Allocator>) -> Result {
    /// How long the other thread may take.
    const BOUND_NS: u64 = 1_000_000_000;
    // At least one rx pack to list.
    let code = alloc.alloc_code(ExecmemType::Text, 64, None, Requester::User)?;
    let done = Arc::new(AtomicBool::new(false), GFP_KERNEL)?;
    let (mut listed, mut waited, mut read) = (0usize, 0u64, false);
    let mut reader = None;
    alloc.for_each_pack(Class::Rx, |_| {
        listed += 1;
        if reader.is_some() {
            return Ok(());
        }
        let (a, d) = (alloc.clone(), done.clone());
        reader = Some(Thread::spawn(c_str!("execmem_probe"), move || {
            let _ = a.report(Class::Rx);
            d.store(true, Ordering::Release);
        })?);
        let t0 = now_ns();
        while !done.load(Ordering::Acquire) && now_ns().saturating_sub(t0) < BOUND_NS {
            cond_resched();
        }
        waited = now_ns().saturating_sub(t0);
        read = done.load(Ordering::Acquire);
        Ok(())
    })?;
    // Done by now either way: the lock, if it was held, is free again.
    if let Some(r) = reader {
        r.join();
    }
    drop(code);
    t.check(
        read,
        format_args!("packs_listed_without_the_lock"),
        format_args!(
            "{listed} rx pack(s) listed; the rx counters read meanwhile: {} after {} us",
            if read { "done" } else { "not done" },
            waited / 1000
        ),
    )?;
    Ok(())
}

/// What the files of [`file_outlives_its_dir`] show: nothing.
struct Nothing;

impl ShowFile for Nothing {
    type Shared = ();

    fn show(_: &Arc<()>, _: &mut Buf) -> Result {
        Ok(())
    }
}

/// A debugfs [`Dir`] dropped before a file made in it stays until that
/// file drops too: dropping the file then removes it from a live
/// directory, and only then the directory.
fn file_outlives_its_dir(t: &mut Ktap<'_>) -> Result {
    let name = c_str!("execmem_rs_probe");
    let dir = Dir::new(name)?;
    let file: File<Show<Nothing>> = dir.file(c_str!("f"), Arc::new((), GFP_KERNEL)?)?;
    drop(dir);
    let kept = debugfs::exists(name);
    t.check(
        kept,
        format_args!("debugfs_dir_outlives_its_handle"),
        format_args!(
            "directory {} while a file in it is held",
            if kept { "kept" } else { "gone" }
        ),
    )?;
    if kept {
        drop(file);
    } else {
        // The file's dentry went with the directory: removing it again
        // would touch freed memory. Leak it instead (a failed check).
        core::mem::forget(file);
    }
    let gone = !debugfs::exists(name);
    t.check(
        gone,
        format_args!("debugfs_dir_removed_with_its_last_file"),
        format_args!(
            "directory {} once its last file dropped",
            if gone { "gone" } else { "still there" }
        ),
    )?;
    Ok(())
}

/// Runs the probe, writing KTAP to `out`. Returns the number of failures.
pub fn run(alloc: &Arc<Allocator>, out: &mut Buf) -> Result<u32> {
    Buf::result(writeln!(out, "KTAP version 1"))?;
    let mut t = Ktap {
        out,
        n: 0,
        failed: 0,
    };
    text_probe(&mut t)?;
    data_probe(&mut t)?;
    packed_probe(&mut t, alloc)?;
    pack_permissions(&mut t, alloc)?;
    guarded_as_kernel_code(&mut t, alloc)?;
    huge_area_protect(&mut t)?;
    kprobes_deferred_release(&mut t, alloc)?;
    provider_needs_owner(&mut t)?;
    probe_places_nothing(&mut t)?;
    bpf_free_unmaps_at_once(&mut t, alloc)?;
    flush_waits_for_the_worker(&mut t, alloc)?;
    packs_listed_without_the_lock(&mut t, alloc)?;
    file_outlives_its_dir(&mut t)?;
    // What the probe wrote and freed is refilled before we return.
    alloc.flush();
    let pending: usize = Class::ALL
        .into_iter()
        .map(|c| alloc.report(c).pending)
        .sum();
    t.check(
        pending == 0,
        format_args!("freed_code_refilled"),
        format_args!("{pending} range(s) parked"),
    )?;
    let check = alloc.check();
    t.check(
        check.is_ok(),
        format_args!("engine_invariants"),
        format_args!("{check:?}"),
    )?;
    t.check(
        alloc.areas_in_range(),
        format_args!("packs_in_execmem_range"),
        format_args!("every pack inside execmem's own range"),
    )?;
    let (n, failed) = (t.n, t.failed);
    Buf::result(writeln!(out, "1..{n}"))?;
    Ok(failed)
}

/// `selftest`: each open runs the probe at its first read.
pub struct SelftestFile;

impl ShowFile for SelftestFile {
    type Shared = Allocator;

    fn show(alloc: &Arc<Allocator>, out: &mut Buf) -> Result {
        let failed = run(alloc, out)?;
        if failed != 0 {
            pr_err!("selftest: {failed} check(s) failed\n");
        }
        Ok(())
    }
}
