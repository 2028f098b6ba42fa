// SPDX-License-Identifier: GPL-2.0

//! x86-64: the landing pad, the page-table probe and the text-patching
//! primitives.

use super::super::mem::PageInfo;
use core::ptr::NonNull;
use kernel::{bindings, prelude::*};

/// Mapping level of a 2 MiB PMD entry (`PG_LEVEL_2M`).
pub const LEVEL_2M: u32 = 2;

/// The landing pad an indirect-call target must start with: `ENDBR64`
/// (IBT). [`super::super::window::Window::call`] refuses any entry without it.
pub const LANDING_PAD: [u8; 4] = [0xf3, 0x0f, 0x1e, 0xfa];

/// The reason given when an entry lacks [`LANDING_PAD`].
pub const NO_LANDING_PAD: &str = "no ENDBR64 landing pad at the entry";

/// Copies `data` to `dst` through a temporary writable alias of its pages
/// (`text_poke_copy()`): how read-only and executable memory is written.
///
/// # Safety
///
/// `dst..dst + data.len()` must be mapped kernel memory that no one else
/// writes or executes meanwhile, and must not overlap `data`.
pub unsafe fn poke_copy(dst: *mut u8, data: &[u8]) {
    // SAFETY: the caller's contract; text_poke_copy() writes through a
    // temporary alias and handles any length.
    unsafe { bindings::text_poke_copy(dst.cast(), data.as_ptr().cast(), data.len()) };
}

/// Sets `len` bytes at `dst` to `byte` like [`poke_copy`]
/// (`text_poke_set()`).
///
/// # Safety
///
/// As for [`poke_copy`], for `dst..dst + len`.
pub unsafe fn poke_set(dst: *mut u8, byte: u8, len: usize) {
    // SAFETY: the caller's contract; text_poke_set() fills through an alias.
    unsafe { bindings::text_poke_set(dst.cast(), i32::from(byte), len) };
}

/// Reads the page-table entry that maps `addr`, inside a live area.
pub fn probe(addr: NonNull<u8>) -> Result<PageInfo> {
    let mut level: u32 = 0;
    // SAFETY: `addr` is a kernel virtual address inside a live area of ours;
    // lookup_address() only walks the kernel page tables.
    let pte = unsafe { bindings::lookup_address(addr.as_ptr() as _, &mut level) };
    if pte.is_null() {
        return Ok(PageInfo {
            level,
            present: false,
            writable: false,
            executable: false,
        });
    }
    // SAFETY: a non-null result points to the live entry mapping `addr` (a
    // PTE, or a PMD/PUD leaf with the same flag layout); the area is ours,
    // so the table cannot be freed while we read it.
    let entry = unsafe { *pte };
    // SAFETY: pure accessors on a copied entry value.
    let (present, writable, executable) = unsafe {
        (
            bindings::pte_present(entry),
            bindings::pte_write(entry),
            bindings::pte_exec(entry),
        )
    };
    Ok(PageInfo {
        level,
        present,
        writable,
        executable,
    })
}

/// `ENDBR64; mov eax, imm32; ret`: a complete function returning `imm`,
/// valid as the target of an indirect call with IBT (what the test harness
/// writes into executable allocations and calls).
#[cfg(execmem_rs_test)]
pub fn ret_imm32(imm: u32) -> [u8; 10] {
    let i = imm.to_le_bytes();
    [0xf3, 0x0f, 0x1e, 0xfa, 0xb8, i[0], i[1], i[2], i[3], 0xc3]
}
