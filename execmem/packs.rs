// SPDX-License-Identifier: GPL-2.0

//! The kernel's pack source: maps the 2 MiB packs the engine asks for.
//!
//! A pack is one vmalloc area, 2 MiB (or a multiple, for a dedicated
//! extent) and 2 MiB-aligned, with `VM_ALLOW_HUGE_VMAP`, so that it is
//! mapped by PMD entries, in the range execmem itself uses for the class
//! ([`Range`]: on x86-64 with KASLR that starts at execmem's randomised
//! base, not at `MODULES_VADDR`; with KASAN without `KASAN_VMALLOC` the area
//! gets its own shadow, as execmem's do). vmalloc falls back to 4 KiB pages
//! by itself when no huge page is free; the mapping actually obtained is
//! read back from the page tables and counted. x86-64 has no second module
//! range, so there is no range fallback to try.
//!
//! An overflow extent (see the engine) is the same with 4 KiB pages and
//! the allocation's own size and alignment.
//!
//! A new pack holds its class's fill (the trap for code) and has its final
//! permissions (RX, RO or RW) before it is recorded: [`Area::sealed`], which
//! does it the architecture's way. No page is ever writable and executable
//! at once.
//!
//! A pack the engine releases is not unmapped under the class lock: it
//! moves to a retired list that the refill worker (or `trim`, or unload,
//! or the free of the kernel's memory that emptied it) drops with no lock
//! held; dropping an area restores its permissions at 2 MiB
//! granularity and `vfree()`s it (see `backend/mem.rs`). Every mapped byte,
//! retired ones included, is charged to the allocator's [`Budget`], which
//! the `global_cap` module parameter bounds.

use crate::execmem::allocator::Requester;
use crate::execmem::backend::arch::LEVEL_2M;
use crate::execmem::backend::mem::{Area, Perms, Range, PAGE_SIZE, PMD_SIZE};
use crate::execmem::binpack::{
    storage::Error as CoreError,
    storage::PackSource,
    types::{arch::MAX_PACKS, Class},
};
use crate::execmem::params::GLOBAL_CAP;
use core::sync::atomic::{AtomicUsize, Ordering};
use kernel::{bindings, prelude::*, sync::Arc};

/// Bytes of packs mapped by one allocator, over all classes.
pub struct Budget {
    mapped: AtomicUsize,
}

impl Budget {
    /// Nothing mapped.
    pub fn new() -> Self {
        Budget {
            mapped: AtomicUsize::new(0),
        }
    }

    /// Takes `bytes` if that keeps the total within `global_cap`.
    fn charge(&self, bytes: usize) -> bool {
        let cap = GLOBAL_CAP.get();
        self.mapped
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |m| {
                m.checked_add(bytes).filter(|&n| n <= cap)
            })
            .is_ok()
    }

    fn uncharge(&self, bytes: usize) {
        self.mapped.fetch_sub(bytes, Ordering::Relaxed);
    }

    /// Bytes mapped now.
    pub fn mapped(&self) -> usize {
        self.mapped.load(Ordering::Relaxed)
    }
}

impl Default for Budget {
    fn default() -> Self {
        Self::new()
    }
}

/// A mapped area and its charge: dropping it unmaps the area, then gives
/// the bytes back.
pub struct Mapped {
    area: Area,
    budget: Arc<Budget>,
}

impl Drop for Mapped {
    fn drop(&mut self) {
        let bytes = self.area.size();
        // The area drops after this body: restore permissions, vfree().
        self.budget.uncharge(bytes);
    }
}

/// The areas backing one class's packs, and how they were obtained.
///
/// # Invariants
///
/// `areas[slot]` is the area mapped by [`PackSource::map`] or
/// [`PackSource::map_pages`] for the engine's pack slot `slot` and not yet
/// unmapped, `None` where the engine has no mapping: an allocation's
/// `PackId::index()` finds its area in O(1). `retired` holds areas the
/// engine released, no longer reachable through any slot.
pub struct Packs {
    class: Class,
    range: Range,
    budget: Arc<Budget>,
    areas: KVec<Option<Mapped>>,
    retired: KVec<Mapped>,
    /// Charge the current request's memory to the caller's memcg.
    account: bool,
    /// The current request was refused by the global cap.
    capped: bool,
    /// Packs that got 2 MiB mappings.
    pub huge: u64,
    /// Packs that fell back to 4 KiB pages.
    pub fallback: u64,
    /// Maps that failed for want of memory or under the global cap
    /// (`NoMemory`), whether the engine then placed the request elsewhere
    /// or refused it.
    pub map_failures: u64,
}

impl Packs {
    /// No packs yet; areas will be placed in `range`.
    pub fn new(class: Class, range: Range, budget: Arc<Budget>) -> Self {
        Packs {
            class,
            range,
            budget,
            areas: KVec::new(),
            retired: KVec::new(),
            account: false,
            capped: false,
            huge: 0,
            fallback: 0,
            map_failures: 0,
        }
    }

    /// Before asking the engine to grow: who the memory is for.
    pub fn start_request(&mut self, who: Requester) {
        self.account = who == Requester::User;
        self.capped = false;
    }

    /// Whether the last request was refused by the global cap.
    pub fn capped(&self) -> bool {
        self.capped
    }

    /// The area of the engine's pack slot `slot` (`PackId::index()`).
    pub fn area(&self, slot: usize) -> Option<&Area> {
        self.areas
            .as_slice()
            .get(slot)
            .and_then(|a| a.as_ref())
            .map(|m| &m.area)
    }

    /// Whether released areas wait to be unmapped.
    pub fn has_retired(&self) -> bool {
        !self.retired.is_empty()
    }

    /// The released areas, to be dropped (unmapped) with no lock held.
    ///
    /// The list left in their place has the old one's room, so that
    /// [`PackSource::unmap`] never allocates (see [`Packs::map_area`]); if
    /// that room cannot be had, nothing is taken now: the areas wait for
    /// the next call.
    pub fn take_retired(&mut self) -> KVec<Mapped> {
        if self.retired.is_empty() {
            return KVec::new();
        }
        let mut next = KVec::new();
        if next
            .reserve(self.retired.capacity(), GFP_KERNEL | __GFP_NOWARN)
            .is_err()
        {
            return KVec::new();
        }
        core::mem::replace(&mut self.retired, next)
    }

    /// Whether every mapped area lies inside the class's range (or its
    /// fallback).
    pub fn all_in_range(&self) -> bool {
        self.areas
            .as_slice()
            .iter()
            .flatten()
            .all(|m| self.range.contains(m.area.addr(), m.area.size()))
    }

    /// Makes `areas[slot]` exist (and be free), so that recording an area
    /// there cannot fail.
    fn reserve(&mut self, slot: usize) -> Result<(), CoreError> {
        if slot >= MAX_PACKS {
            return Err(CoreError::Invalid);
        }
        while self.areas.len() <= slot {
            self.areas
                .push(None, GFP_KERNEL | __GFP_NOWARN)
                .map_err(|_| CoreError::NoMemory)?;
        }
        match self.areas.as_slice().get(slot) {
            Some(None) => Ok(()),
            // The engine maps a slot only while it is unused.
            _ => Err(CoreError::Corrupted),
        }
    }

    fn gfp(&self) -> bindings::gfp_t {
        let mut gfp = bindings::GFP_KERNEL | bindings::__GFP_NOWARN | bindings::__GFP_RETRY_MAYFAIL;
        if self.account {
            gfp |= bindings::__GFP_ACCOUNT;
        }
        gfp
    }

    /// Maps `size` bytes at `align`, huge if `huge` allows: filled and
    /// protected while private, then recorded. Returns the base and
    /// whether it got 2 MiB mappings.
    fn map_area(
        &mut self,
        slot: usize,
        size: usize,
        align: usize,
        huge: bool,
    ) -> Result<(usize, bool), CoreError> {
        // Reserve the slot first, so nothing can fail after the area exists
        // but before it is recorded; and room in `retired` for every area
        // mapped, this one included, so that an unmap (under the class
        // lock) only moves an area there and never drops it in place.
        self.reserve(slot)?;
        let mapped = self.areas.iter().filter(|a| a.is_some()).count();
        self.retired
            .reserve(mapped.saturating_add(1), GFP_KERNEL | __GFP_NOWARN)
            .map_err(|_| CoreError::NoMemory)?;
        let charge = size
            .checked_next_multiple_of(self.range.granule)
            .ok_or(CoreError::TooBig)?;
        if !self.budget.charge(charge) {
            self.capped = true;
            return Err(CoreError::NoMemory);
        }
        let perms = match self.class {
            Class::Rx => Perms::ReadExec,
            Class::Ro => Perms::ReadOnly,
            Class::Rw => Perms::ReadWrite,
        };
        let fill = self.class.fill();
        // On failure the area is freed (restored first, or kept if even
        // that fails) by its drop.
        let area = match Area::sealed(size, align, huge, &self.range, self.gfp(), perms, fill) {
            Ok(a) if a.size() == charge => a,
            other => {
                self.budget.uncharge(charge);
                // A size other than charged is impossible (same rounding);
                // dropping the area frees it.
                drop(other);
                return Err(CoreError::NoMemory);
            }
        };
        let m = Mapped {
            area,
            budget: self.budget.clone(),
        };
        let got_huge = huge && m.area.probe(0).is_ok_and(|p| p.level == LEVEL_2M);
        let base = m.area.addr();
        match self.areas.as_mut_slice().get_mut(slot) {
            Some(s) => *s = Some(m),
            None => return Err(CoreError::Corrupted),
        }
        Ok((base, got_huge))
    }

    /// Runs `map` (one [`Packs::map_area`]), counting its failure for
    /// want of memory (not a bad request or a broken invariant).
    fn counted<T>(
        &mut self,
        map: impl FnOnce(&mut Self) -> Result<T, CoreError>,
    ) -> Result<T, CoreError> {
        let r = map(self);
        if matches!(r, Err(CoreError::NoMemory)) {
            self.map_failures = self.map_failures.wrapping_add(1);
        }
        r
    }

    fn unmap_area(&mut self, slot: usize, base: usize) {
        let m = match self.areas.as_mut_slice().get_mut(slot) {
            Some(s) if s.as_ref().is_some_and(|m| m.area.addr() == base) => s.take(),
            _ => None,
        };
        let Some(m) = m else {
            pr_err!("unmap of slot {} that does not hold the area\n", slot);
            return;
        };
        // For the worker. `map_area` made room for every mapped area, and
        // `take_retired` keeps it, so this does not allocate; were the room
        // gone, `push` would drop `m`: the area unmapped right here instead.
        let _ = self.retired.push(m, GFP_KERNEL | __GFP_NOWARN);
    }
}

impl PackSource for Packs {
    fn map(&mut self, _class: Class, slot: usize, npacks: usize) -> Result<usize, CoreError> {
        let size = npacks.checked_mul(PMD_SIZE).ok_or(CoreError::TooBig)?;
        let (base, huge) = self.counted(|p| p.map_area(slot, size, PMD_SIZE, true))?;
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
        _class: Class,
        slot: usize,
        pages: usize,
        align: usize,
    ) -> Result<usize, CoreError> {
        let size = pages.checked_mul(PAGE_SIZE).ok_or(CoreError::TooBig)?;
        if !(PAGE_SIZE..=PMD_SIZE).contains(&align) {
            return Err(CoreError::Invalid);
        }
        let (base, _) = self.counted(|p| p.map_area(slot, size, align, false))?;
        Ok(base)
    }

    fn unmap_pages(&mut self, _class: Class, slot: usize, base: usize, _pages: usize) {
        self.unmap_area(slot, base);
    }
}
