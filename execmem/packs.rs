// SPDX-License-Identifier: GPL-2.0

//! The kernel's pack source: maps the 2 MiB packs the engine asks for.
//!
//! A pack is one `__vmalloc_node_range()` area in the module range, 2 MiB
//! (or a multiple, for a dedicated extent) and 2 MiB-aligned, with
//! `VM_ALLOW_HUGE_VMAP`, so that it is mapped by PMD entries. vmalloc falls
//! back to 4 KiB pages by itself when no huge page is free; the mapping
//! actually obtained is read back from the page tables and counted. x86-64
//! has no second module range (execmem's `fallback_start` is 0 there), so
//! there is no range fallback to try.
//!
//! An overflow extent (see the engine) is the same with 4 KiB pages and
//! the allocation's own size and alignment.
//!
//! A new pack is filled with its class's fill byte (INT3 for code) while it
//! is still private and writable, then gets its final permissions once:
//! `set_memory_rox()` for RX, `set_memory_ro()` for RO, nothing for RW.
//! Nothing is ever mapped writable and executable, and no half-written code
//! is ever executable.

use crate::execmem::backend::mem::{Area, Perms, PAGE_SIZE, PMD_SIZE};
use crate::execmem::core_engine::{
    storage::Error as CoreError,
    storage::PackSource,
    types::{arch::MAX_PACKS, Class},
};
use kernel::prelude::*;

/// Mapping level of a 2 MiB PMD entry (`PG_LEVEL_2M`).
pub const LEVEL_2M: u32 = 2;

/// The areas backing one class's packs, and how they were obtained.
///
/// # Invariants
///
/// `areas[slot]` is the area mapped by [`PackSource::map`] or
/// [`PackSource::map_pages`] for the engine's pack slot `slot` and not yet
/// unmapped, `None` where the engine has no mapping: an allocation's
/// `PackId::index()` finds its area in O(1).
pub struct Packs {
    areas: KVec<Option<Area>>,
    /// Packs that got 2 MiB mappings.
    pub huge: u64,
    /// Packs that fell back to 4 KiB pages.
    pub fallback: u64,
}

impl Packs {
    /// No packs yet.
    pub fn new() -> Self {
        Packs {
            areas: KVec::new(),
            huge: 0,
            fallback: 0,
        }
    }

    /// The area of the engine's pack slot `slot` (`PackId::index()`).
    pub fn area(&self, slot: usize) -> Option<&Area> {
        self.areas.as_slice().get(slot).and_then(|a| a.as_ref())
    }

    /// Makes `areas[slot]` exist (and be free), so that recording an area
    /// there cannot fail.
    fn reserve(&mut self, slot: usize) -> Result<(), CoreError> {
        if slot >= MAX_PACKS {
            return Err(CoreError::Invalid);
        }
        while self.areas.len() <= slot {
            self.areas
                .push(None, GFP_KERNEL)
                .map_err(|_| CoreError::NoMemory)?;
        }
        match self.areas.as_slice().get(slot) {
            Some(None) => Ok(()),
            // The engine maps a slot only while it is unused.
            _ => Err(CoreError::Corrupted),
        }
    }
}

impl Default for Packs {
    fn default() -> Self {
        Self::new()
    }
}

fn perms_of(class: Class) -> Perms {
    match class {
        Class::Rx => Perms::ReadExec,
        Class::Ro => Perms::ReadOnly,
        Class::Rw => Perms::ReadWrite,
    }
}

impl Packs {
    /// Maps `size` bytes at `align` for `class`, huge if `huge` allows:
    /// filled and protected while private, then recorded. Returns the base
    /// and whether it got 2 MiB mappings.
    fn map_area(
        &mut self,
        class: Class,
        slot: usize,
        size: usize,
        align: usize,
        huge: bool,
    ) -> Result<(usize, bool), CoreError> {
        // Reserve the slot first, so nothing can fail after the area exists
        // but before it is recorded.
        self.reserve(slot)?;
        let mut area = Area::vmalloc(size, align, huge).map_err(|_| CoreError::NoMemory)?;
        area.fill(0, class.fill(), size)
            .map_err(|_| CoreError::Corrupted)?;
        if class != Class::Rw {
            area.protect(perms_of(class))
                .map_err(|_| CoreError::NoMemory)?;
        }
        let got_huge = huge && area.probe(0).is_ok_and(|p| p.level == LEVEL_2M);
        let base = area.addr();
        match self.areas.as_mut_slice().get_mut(slot) {
            Some(s) => *s = Some(area),
            None => return Err(CoreError::Corrupted),
        }
        Ok((base, got_huge))
    }

    fn unmap_area(&mut self, slot: usize, base: usize) {
        match self.areas.as_mut_slice().get_mut(slot) {
            // Dropping the area vfree()s it (VM_FLUSH_RESET_PERMS).
            Some(s) if s.as_ref().is_some_and(|a| a.addr() == base) => *s = None,
            _ => pr_err!("unmap of slot {} that does not hold the area\n", slot),
        }
    }
}

impl PackSource for Packs {
    fn map(&mut self, class: Class, slot: usize, npacks: usize) -> Result<usize, CoreError> {
        let size = npacks.checked_mul(PMD_SIZE).ok_or(CoreError::TooBig)?;
        let (base, huge) = self.map_area(class, slot, size, PMD_SIZE, true)?;
        if huge {
            self.huge = self.huge.wrapping_add(1);
        } else {
            self.fallback = self.fallback.wrapping_add(1);
        }
        Ok(base)
    }

    fn unmap(&mut self, _class: Class, slot: usize, base: usize, _npacks: usize) {
        self.unmap_area(slot, base);
    }

    /// An overflow extent: 4 KiB pages by design (the point is to back only
    /// what one allocation needs), so no `VM_ALLOW_HUGE_VMAP`.
    fn map_pages(
        &mut self,
        class: Class,
        slot: usize,
        pages: usize,
        align: usize,
    ) -> Result<usize, CoreError> {
        let size = pages.checked_mul(PAGE_SIZE).ok_or(CoreError::TooBig)?;
        if !(PAGE_SIZE..=PMD_SIZE).contains(&align) {
            return Err(CoreError::Invalid);
        }
        let (base, _) = self.map_area(class, slot, size, align, false)?;
        Ok(base)
    }

    fn unmap_pages(&mut self, _class: Class, slot: usize, base: usize, _pages: usize) {
        self.unmap_area(slot, base);
    }
}
