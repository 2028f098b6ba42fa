// SPDX-License-Identifier: GPL-2.0

//! x86-64: the landing pad, the page-table probe, the text-patching
//! primitives and how a pack gets its permissions.

use super::super::mem::{PageInfo, Perms};
use crate::execmem::binpack::types::Fill;
use core::ptr::NonNull;
use kernel::{bindings, error::code::*, prelude::*};

/// Mapping level of a 2 MiB PMD entry (`PG_LEVEL_2M`).
pub const LEVEL_2M: u32 = 2;

/// The landing pad an indirect-call target must start with: `ENDBR64`
/// (IBT). [`super::super::window::Window::call`] refuses any entry without it.
pub const LANDING_PAD: [u8; 4] = [0xf3, 0x0f, 0x1e, 0xfa];

/// The reason given when an entry lacks [`LANDING_PAD`].
pub const NO_LANDING_PAD: &str = "no ENDBR64 landing pad at the entry";

/// Where [`poke_copy`] and [`poke_set`] may start: `text_poke_copy()` and
/// `text_poke_set()` write from any byte.
pub const POKE_ALIGN: usize = 1;

/// x86 maps a pack read-write, fills it with plain stores while it is
/// private, then gives it its final permissions with `set_memory_ro()` /
/// `set_memory_rox()`, which work on 2 MiB mappings and update the
/// direct-map alias 2 MiB at a time: packs are not born sealed.
pub const SEALED_AT_BIRTH: bool = false;

/// The protection a sealed-at-birth pack is mapped with: never used on
/// x86 ([`SEALED_AT_BIRTH`]), where every area starts as `PAGE_KERNEL`.
pub fn sealed_prot(_perms: Perms) -> bindings::pgprot_t {
    // SAFETY: a pure helper returning a constant protection.
    unsafe { bindings::PAGE_KERNEL() }
}

/// Makes the direct-map alias of a sealed-at-birth area unwritable: never
/// needed on x86, where `set_memory_*()` change the alias with the area.
///
/// # Safety
///
/// `addr..addr + size` must be a live vmalloc area owned by the caller.
pub unsafe fn seal_alias(_addr: usize, _size: usize) -> Result {
    Ok(())
}

/// The direct-map alias of the page containing `addr`, inside a live
/// vmalloc area (for the page-table probe of the alias).
///
/// # Safety
///
/// `addr` must be inside a vmalloc area the caller keeps live while this
/// runs (`vmalloc_to_*()` walks its page tables).
pub unsafe fn alias_of(addr: NonNull<u8>) -> Option<NonNull<u8>> {
    // SAFETY: `addr` is inside a live vmalloc area (the caller's contract).
    let pfn = unsafe { bindings::vmalloc_to_pfn(addr.as_ptr() as *const core::ffi::c_void) };
    if pfn == 0 {
        return None;
    }
    // SAFETY: reading the boot-time base of the direct map (`__va()`).
    let base: usize = unsafe { bindings::page_offset_base };
    let off = pfn.checked_mul(bindings::PAGE_SIZE)?;
    NonNull::new(base.checked_add(off)? as *mut u8)
}

/// Makes `n` pages at `addr` read-only and executable in one change
/// (`set_memory_rox()`, which also makes their direct-map alias read-only).
///
/// # Safety
///
/// The pages must be a vmalloc area the caller owns, that nobody else
/// accesses meanwhile, and whose contents are complete.
pub unsafe fn set_memory_rox(addr: usize, n: i32) -> i32 {
    // SAFETY: the caller's contract.
    unsafe { bindings::set_memory_rox(addr as _, n) }
}

/// Copies `data` to `dst` through a temporary writable alias of its pages
/// (`text_poke_copy()`): how read-only and executable memory is written.
/// Takes `text_mutex` and may sleep. `EINVAL` if the kernel refuses the
/// address (core kernel text: NULL, with a WARN).
///
/// # Safety
///
/// `dst..dst + data.len()` must be mapped vmalloc memory (`__text_poke()`
/// finds its pages with `vmalloc_to_page()`) that no one else writes or
/// executes meanwhile, and must not overlap `data`; the caller must not
/// hold `text_mutex`.
pub unsafe fn poke_copy(dst: *mut u8, data: &[u8]) -> Result {
    // SAFETY: the caller's contract; text_poke_copy() writes through a
    // temporary alias and handles any length and alignment.
    let r = unsafe { bindings::text_poke_copy(dst.cast(), data.as_ptr().cast(), data.len()) };
    if r.is_null() {
        return Err(EINVAL);
    }
    Ok(())
}

/// Fills `len` bytes at `dst` with `fill` like [`poke_copy`]
/// (`text_poke_set()`, a memset: `EINVAL` for a pattern that is not one
/// repeated byte).
///
/// # Safety
///
/// As for [`poke_copy`], for `dst..dst + len`.
pub unsafe fn poke_set(dst: *mut u8, fill: Fill, len: usize) -> Result {
    let byte = fill.as_byte().ok_or(EINVAL)?;
    // SAFETY: the caller's contract; text_poke_set() fills through an alias.
    let r = unsafe { bindings::text_poke_set(dst.cast(), i32::from(byte), len) };
    if r.is_null() {
        return Err(EINVAL);
    }
    Ok(())
}

/// Reads the page-table entry that maps `addr`, inside a live area.
///
/// # Safety
///
/// `addr` must stay mapped while this runs: inside a vmalloc area the
/// caller keeps live, the direct-map alias of one of its pages, or this
/// module's text. (Page tables under an area can be freed when the area
/// is, and the walk would read freed memory.)
pub unsafe fn probe(addr: NonNull<u8>) -> Result<PageInfo> {
    let mut level: u32 = 0;
    // SAFETY: `addr` stays mapped (the caller's contract);
    // lookup_address() only walks the kernel page tables.
    let pte = unsafe { bindings::lookup_address(addr.as_ptr() as _, &mut level) };
    if pte.is_null() {
        return Ok(PageInfo::new(level, false, false, false));
    }
    // SAFETY: a non-null result points to the live entry mapping `addr` (a
    // PTE, or a PMD/PUD leaf with the same flag layout); `addr` stays
    // mapped (the caller's contract), so the table cannot be freed while we
    // read it; it is aligned, as every entry is. The entry itself may change
    // under us (a split or a permission change by another CPU): one
    // volatile read of the whole entry, as `ptep_get()`'s READ_ONCE().
    let entry = unsafe { core::ptr::read_volatile(pte) };
    // SAFETY: pure accessors on a copied entry value.
    let (present, writable, executable) = unsafe {
        (
            bindings::pte_present(entry),
            bindings::pte_write(entry),
            bindings::pte_exec(entry),
        )
    };
    Ok(PageInfo::new(level, present, writable, executable))
}

/// Length of [`ret_imm32`]'s function.
#[cfg(execmem_rs_test)]
pub const RET_IMM32_LEN: usize = 10;

/// `ENDBR64; mov eax, imm32; ret`: a complete function returning `imm`,
/// valid as the target of an indirect call with IBT (what the test harness
/// writes into executable allocations and calls).
#[cfg(execmem_rs_test)]
pub fn ret_imm32(imm: u32) -> [u8; RET_IMM32_LEN] {
    let i = imm.to_le_bytes();
    [0xf3, 0x0f, 0x1e, 0xfa, 0xb8, i[0], i[1], i[2], i[3], 0xc3]
}

/// `direct_map_level2_splits` and `direct_map_level3_splits` from the VM
/// event counters: how often a 2 MiB (1 GiB) direct-map entry was split,
/// e.g. by a permission change of 4 KiB pages. For the test harness's
/// benchmark.
#[cfg(execmem_rs_test)]
pub fn direct_map_splits() -> (u64, u64) {
    let mut ev = [0usize; bindings::vm_event_item_NR_VM_EVENT_ITEMS as usize];
    // SAFETY: all_vm_events() writes exactly NR_VM_EVENT_ITEMS counters.
    unsafe { bindings::all_vm_events(ev.as_mut_ptr()) };
    let get = |i: u32| ev.get(i as usize).map_or(0, |&v| v as u64);
    (
        get(bindings::vm_event_item_DIRECT_MAP_LEVEL2_SPLIT),
        get(bindings::vm_event_item_DIRECT_MAP_LEVEL3_SPLIT),
    )
}
