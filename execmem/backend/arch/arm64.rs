// SPDX-License-Identifier: GPL-2.0

//! arm64: the landing pad, the page-table probe, the text-patching
//! primitives and how a pack gets its permissions.
//!
//! What differs from x86-64, and why:
//!
//! - `set_memory_ro()`/`set_memory_x()` refuse an area mapped with PMDs
//!   (they only split nothing and change page entries), so a huge pack is
//!   **born sealed**: vmalloc maps it with its final protection, its
//!   linear-map alias is taken away page by page ([`seal_alias`]), stale
//!   lazy vmalloc aliases are flushed (`vm_unmap_aliases()`, as
//!   `set_memory_*()` do), and then it is filled through the patching
//!   alias. With `rodata=full` the linear map is built from 4 KiB pages at
//!   boot, so that splits nothing; with `rodata=on` (and neither
//!   `debug_pagealloc` nor a late KFENCE pool) the kernel cannot change
//!   the linear map (`can_set_direct_map()` is false) and keeps linear
//!   aliases writable, for its own module text as for these packs.
//! - Patching (`aarch64_insn_copy()`/`aarch64_insn_set()`) writes through a
//!   fixmap alias one page at a time and ends with an I-cache flush; it
//!   works on word-aligned destinations only ([`POKE_ALIGN`]: the window
//!   merges an unaligned head into its word).
//! - The trap is the 4-byte `BRK #0x100` (in the core's type table), and an
//!   indirect-call target starts with `BTI c`.

use super::super::mem::{PageInfo, Perms, PAGE_SIZE};
use crate::execmem::binpack::types::Fill;
use core::ptr::NonNull;
use kernel::{bindings, error::code::*, prelude::*};

/// Mapping level of a 2 MiB PMD entry (as the page-table probe reports it).
pub const LEVEL_2M: u32 = 2;

/// The landing pad an indirect-call target must start with: `BTI c`
/// (`0xd503245f`). [`super::super::window::Window::call`] refuses any entry
/// without it.
pub const LANDING_PAD: [u8; 4] = 0xd503_245f_u32.to_le_bytes();

/// The reason given when an entry lacks [`LANDING_PAD`].
pub const NO_LANDING_PAD: &str = "no BTI c landing pad at the entry";

/// Where [`poke_copy`] and [`poke_set`] may start: patching writes from
/// word-aligned addresses only (A64 instructions are words); the window
/// merges an unaligned head into its word.
pub const POKE_ALIGN: usize = 4;

/// Packs are mapped with their final protection from the start (see the
/// module documentation).
pub const SEALED_AT_BIRTH: bool = true;

/// The protection a sealed-at-birth area of `perms` is mapped with. Code
/// is guarded (`PTE_GP`) when the kernel guards its own: `set_memory_x()`
/// adds `PTE_MAYBE_GP`, which `PAGE_KERNEL_ROX` lacks.
pub fn sealed_prot(perms: Perms) -> bindings::pgprot_t {
    // SAFETY: pure helpers returning constant protections.
    unsafe {
        match perms {
            Perms::ReadExec => {
                let mut prot = bindings::PAGE_KERNEL_ROX();
                if kernel_guards_code() {
                    prot.pgprot |= PTE_GP;
                }
                prot
            }
            Perms::ReadOnly => bindings::PAGE_KERNEL_RO(),
            Perms::ReadWrite | Perms::Unknown => bindings::PAGE_KERNEL(),
        }
    }
}

/// Whether the kernel maps code as BTI guarded pages (`PTE_MAYBE_GP`: a
/// BTI kernel on a CPU with BTI), read off this module's own text, which
/// the module loader made executable with `set_memory_x()`.
fn kernel_guards_code() -> bool {
    let own = (kernel_guards_code as *const ()).cast_mut().cast::<u8>();
    NonNull::new(own)
        // SAFETY: this module's text, mapped while this code runs.
        .and_then(|p| unsafe { probe(p) }.ok())
        .is_some_and(|i| i.executable && i.guarded)
}

/// Takes away the linear-map alias of every page of a sealed-at-birth
/// area (`set_direct_map_invalid_noflush()`, then one TLB flush of the
/// span), so that no writable mapping of the pages remains. The area must
/// have been allocated with `VM_FLUSH_RESET_PERMS`: `vfree()` then gives
/// the pages their alias back before freeing them.
///
/// # Safety
///
/// `addr..addr + size` must be a live vmalloc area owned by the caller,
/// allocated with `VM_FLUSH_RESET_PERMS`, whose pages nobody reaches
/// through the linear map.
pub unsafe fn seal_alias(addr: usize, size: usize) -> Result {
    let (mut lo, mut hi) = (usize::MAX, 0usize);
    let mut off = 0;
    while off < size {
        let va = addr.checked_add(off).ok_or(ERANGE)?;
        // SAFETY: `va` is inside the caller's live vmalloc area.
        let page = unsafe { bindings::vmalloc_to_page(va as *const core::ffi::c_void) };
        if page.is_null() {
            return Err(EFAULT);
        }
        // SAFETY: `page` backs the caller's area; with rodata=full the
        // linear map is page-granular, so invalidating one entry splits
        // nothing, and nobody uses this alias (the caller's contract).
        let ret = unsafe { bindings::set_direct_map_invalid_noflush(page) };
        kernel::error::to_result(ret)?;
        // SAFETY: a valid page; page_address() only computes.
        let lin = unsafe { bindings::page_address(page) } as usize;
        lo = lo.min(lin);
        hi = hi.max(lin.saturating_add(PAGE_SIZE));
        off += PAGE_SIZE;
    }
    if lo < hi {
        // SAFETY: a TLB flush of kernel addresses has no memory-safety
        // preconditions.
        unsafe { bindings::flush_tlb_kernel_range(lo as _, hi as _) };
    }
    Ok(())
}

/// Makes `n` pages at `addr` read-only, then executable (arm64 has no
/// single call; `set_memory_ro()` also makes the linear alias read-only
/// with rodata=full). Page-mapped areas only: the kernel's own path.
///
/// # Safety
///
/// The pages must be a vmalloc area the caller owns, that nobody else
/// accesses meanwhile, and whose contents are complete.
pub unsafe fn set_memory_rox(addr: usize, n: i32) -> i32 {
    // SAFETY: the caller's contract; read-only first, so the pages are
    // never writable and executable.
    unsafe {
        let r = bindings::set_memory_ro(addr as _, n);
        if r != 0 {
            return r;
        }
        bindings::set_memory_x(addr as _, n)
    }
}

/// The linear-map alias of the page containing `addr`, inside a live
/// vmalloc area (for the page-table probe of the alias).
///
/// # Safety
///
/// `addr` must be inside a vmalloc area the caller keeps live while this
/// runs (`vmalloc_to_*()` walks its page tables).
pub unsafe fn alias_of(addr: NonNull<u8>) -> Option<NonNull<u8>> {
    // SAFETY: `addr` is inside a live vmalloc area (the caller's contract).
    let page = unsafe { bindings::vmalloc_to_page(addr.as_ptr() as *const core::ffi::c_void) };
    if page.is_null() {
        return None;
    }
    // SAFETY: a valid page; page_address() only computes.
    NonNull::new(unsafe { bindings::page_address(page) }.cast::<u8>())
}

/// Copies `data` to `dst` through the fixmap patching alias
/// (`aarch64_insn_copy()`): how read-only and executable memory is
/// written. `EINVAL` unless `dst` is word-aligned.
///
/// # Safety
///
/// `dst..dst + data.len()` must be mapped vmalloc memory that no one else
/// writes or executes meanwhile, and must not overlap `data`.
pub unsafe fn poke_copy(dst: *mut u8, data: &[u8]) -> Result {
    if dst as usize % POKE_ALIGN != 0 {
        return Err(EINVAL);
    }
    // SAFETY: the caller's contract; aarch64_insn_copy() maps each page
    // of `dst` writable at a fixmap slot, copies, and flushes the I-cache.
    // It only reads `data` (the C prototype lacks the const).
    let r = unsafe {
        bindings::aarch64_insn_copy(dst.cast(), data.as_ptr().cast_mut().cast(), data.len())
    };
    if r.is_null() {
        return Err(EINVAL);
    }
    Ok(())
}

/// Fills `len` bytes at `dst` with `fill` like [`poke_copy`]
/// (`aarch64_insn_set()`, whole words: `EINVAL` unless `dst` and `len` are
/// word-aligned).
///
/// # Safety
///
/// As for [`poke_copy`], for `dst..dst + len`.
pub unsafe fn poke_set(dst: *mut u8, fill: Fill, len: usize) -> Result {
    if dst as usize % POKE_ALIGN != 0 || len % POKE_ALIGN != 0 {
        return Err(EINVAL);
    }
    // SAFETY: the caller's contract; aarch64_insn_set() writes whole words
    // through the fixmap alias.
    let r = unsafe { bindings::aarch64_insn_set(dst.cast(), fill.as_word(), len) };
    if r.is_null() {
        return Err(EINVAL);
    }
    Ok(())
}

/// Bit 0 of an arm64 descriptor: the MMU uses the entry (`PTE_VALID`).
const PTE_VALID: u64 = 1;

/// Bit 50 of a leaf descriptor: a BTI guarded page (`PTE_GP`).
const PTE_GP: u64 = 1 << 50;

/// Reads the page-table entry that maps `addr`, inside a live area (or
/// this module's text).
///
/// # Safety
///
/// `addr` must stay mapped while this runs: inside a vmalloc area the
/// caller keeps live, the direct-map alias of one of its pages, or this
/// module's text. (Page tables under an area can be freed when the area
/// is, and the walk would read freed memory.)
pub unsafe fn probe(addr: NonNull<u8>) -> Result<PageInfo> {
    let mut level: u32 = 0;
    // SAFETY: `addr` stays mapped (the caller's contract); the walk only
    // reads the kernel page tables.
    let pte = unsafe { bindings::arm64_lookup_address(addr.as_ptr() as _, &mut level) };
    if pte.is_null() {
        return Ok(PageInfo::new(level, false, false, false));
    }
    // SAFETY: a non-null result points to the live entry mapping `addr` (a
    // PTE, or a PMD/PUD block with the same bit layout); `addr` stays
    // mapped (the caller's contract), so the table cannot be freed while we
    // read it; it is aligned, as every entry is. The entry itself may change
    // under us (a split or a permission change by another CPU): one
    // volatile read of the whole entry, as `ptep_get()`'s READ_ONCE().
    let entry = unsafe { core::ptr::read_volatile(pte) };
    // Valid is what the MMU sees: pte_present() is also true for an entry
    // the kernel made invalid on purpose (`PTE_PRESENT_INVALID`, which is
    // nG: set in every kernel entry when KPTI is possible), as
    // set_direct_map_invalid_noflush() leaves the linear alias.
    let present = entry.pte & PTE_VALID != 0;
    // SAFETY: pure accessors on a copied entry value.
    let (writable, executable) = unsafe { (bindings::pte_write(entry), bindings::pte_exec(entry)) };
    // An invalid entry's other bits allow nothing (`PageInfo::new`).
    Ok(PageInfo::new(level, present, writable, executable).with_guard(entry.pte & PTE_GP != 0))
}

/// Length of [`ret_imm32`]'s function.
#[cfg(execmem_rs_test)]
pub const RET_IMM32_LEN: usize = 16;

/// `BTI c; movz w0, #lo; movk w0, #hi, lsl #16; ret`: a complete function
/// returning `imm`, valid as the target of an indirect call with BTI (what
/// the test harness writes into executable allocations and calls).
#[cfg(execmem_rs_test)]
pub fn ret_imm32(imm: u32) -> [u8; RET_IMM32_LEN] {
    let lo = imm & 0xffff;
    let hi = imm >> 16;
    let words: [u32; 4] = [
        0xd503_245f,
        0x5280_0000 | (lo << 5),
        0x72a0_0000 | (hi << 5),
        0xd65f_03c0,
    ];
    let mut out = [0u8; RET_IMM32_LEN];
    for (o, w) in out.chunks_exact_mut(4).zip(words) {
        o.copy_from_slice(&w.to_le_bytes());
    }
    out
}

/// The direct-map split counters of x86 have no arm64 equivalent: with
/// `rodata=full` the linear map is 4 KiB pages from boot and nothing is
/// ever split, so both are zero.
#[cfg(execmem_rs_test)]
pub fn direct_map_splits() -> (u64, u64) {
    (0, 0)
}
