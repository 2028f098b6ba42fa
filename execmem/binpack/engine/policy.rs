// SPDX-License-Identifier: GPL-2.0

//! The engine's policy: in what order a request tries the free blocks
//! ([`Engine::find_fit`]), an overflow extent, the blocks of a pack's size
//! or more ([`Engine::find_big`]) and a new pack or
//! extent ([`Engine::alloc_shared`]), and when an empty pack is kept as the
//! class's spare or released ([`Engine::after_free`]). The search itself
//! knows nothing of growth: it finds a block or says there is none.
//!
//! # Policy
//!
//! Good fit by size, first fit by pack: first the best of a few blocks of
//! the request's own size class (which may fit tightly, e.g. the hole an
//! unloaded module of the same size left), then the best of a few blocks
//! of the smallest size class that is guaranteed to fit, in the lowest
//! pack slots that have one. Like address-ordered first fit, this
//! concentrates allocations in the low packs, so the high (sparse) packs
//! drain and get released; unlike it, it is O(1) and does not cut big holes
//! while a smaller one fits. Blocks of a pack's size or more (an extent's
//! free front or tail, the spare) come after the overflow below, so a
//! churned large allocation finds its extent's front again.
//!
//! # Overflow
//!
//! When no block fits a request of at most one pack although the packs
//! have room for it in total, a new 2 MiB pack would be needed only
//! because their free space is fragmented: after module churn it would
//! hold a few allocations and stay mapped. Instead the allocation gets an
//! **overflow extent** of its own, page-granular
//! ([`PackSource::map_pages`], 4 KiB entries), while the class's overflow
//! pages stay within [`OVERFLOW_PAGES`]. This bounds what the class spends
//! on fragmentation to one page-granular megabyte rather than a whole
//! pack, at the price of up to 256 page-table entries (and, for RO and RX,
//! split direct-map pages under them) per class. An overflow extent
//! holds one allocation and is unmapped when it is freed.
//!
//! # Hysteresis
//!
//! When a shared pack becomes empty it stays mapped as the class's spare if
//! there is none yet and the class grew (mapped a pack or took the spare)
//! within the last [`HYST_OPS`] operations; otherwise it is unmapped. A
//! spare not taken for [`HYST_OPS`] operations is released on the next
//! free. So at most one empty pack per class, an alloc/free ping-pong at a
//! pack boundary maps once, a slow one maps and unmaps at most once per
//! [`HYST_OPS`] operations, and a class that stopped growing holds no
//! empty pack.

use super::super::storage::{Error, PackSource, Storage, Vector};
use super::super::types::arch;
use super::arena::{Node, State};
use super::fit::Fit;
use super::pack::{PackKind, Span};
use super::{corrupt, g2b, Engine, NIL, PACK_G, PAGE_G};

/// Hysteresis: a pack that becomes empty is kept as the spare only if the
/// class grew (mapped a pack or took the spare) within this many
/// operations, and a spare unused for longer is released on the next
/// free. At most one map and one unmap per `HYST_OPS` operations.
pub const HYST_OPS: u64 = 1024;

/// Overflow budget per class, in base pages: at most this much memory (and
/// this many 4 KiB page-table entries) in overflow extents. 1 MiB.
pub const OVERFLOW_PAGES: u32 = 256;

impl<S: Storage> Engine<S> {
    /// Whether `size_g` granules that no block smaller than a pack holds should
    /// go to an overflow extent rather than a new pack: there is no spare,
    /// the class's packs have room
    /// for them in total (so a new pack would be needed only because their
    /// free space is fragmented), a pack would hold them, and the overflow
    /// budget allows.
    fn overflows(&self, size_g: u32) -> Result<bool, Error> {
        // The spare is mapped already: take it.
        if size_g > PACK_G || self.spare != NIL {
            return Ok(false);
        }
        let pages = size_g.div_ceil(PAGE_G);
        let budget = self.overflow_pages.checked_add(pages);
        if budget.map_or(true, |b| b > OVERFLOW_PAGES) {
            return Ok(false);
        }
        let units = corrupt(self.shared.checked_add(self.extent_units))?;
        let capacity = corrupt(units.checked_mul(PACK_G as usize))?;
        let packed = corrupt(self.used.checked_sub(self.overflow_used as usize))?;
        Ok(packed
            .checked_add(size_g as usize)
            .is_some_and(|n| n <= capacity))
    }

    /// An overflow extent: `size_g` granules at alignment `align_g` in page-granular
    /// backing of their own: one allocation, unmapped when it is freed.
    fn alloc_overflow<P: PackSource>(
        &mut self,
        src: &mut P,
        size_g: u32,
        align_g: u32,
    ) -> Result<u32, Error> {
        let align = g2b(align_g)?.max(arch::PAGE_SIZE);
        let u = self.one_block_extent(src, Span::Pages(size_g.div_ceil(PAGE_G), align), size_g)?;
        self.overflow_used = corrupt(self.overflow_used.checked_add(size_g))?;
        Ok(u)
    }

    /// Map `span` as an extent holding one used block of `size_g` granules at
    /// offset 0 and no free block.
    fn one_block_extent<P: PackSource>(
        &mut self,
        src: &mut P,
        span: Span,
        size_g: u32,
    ) -> Result<u32, Error> {
        let p = self.map_pack(src, span, 1)?;
        let u = self.take_node()?;
        let gen = self.node(u)?.gen.wrapping_add(1);
        *self.node_mut(u)? = Node::block(0, size_g, NIL, NIL, p, gen, State::Used);
        let pack = self.pack_mut(p)?;
        pack.first = u;
        pack.used = size_g;
        pack.live = 1;
        Ok(u)
    }

    pub(super) fn alloc_shared<P: PackSource>(
        &mut self,
        src: &mut P,
        size_g: u32,
        align_g: u32,
    ) -> Result<u32, Error> {
        self.reserve_nodes(2)?;
        // Blocks smaller than a pack first; then, if the free space of the
        // packs is merely fragmented, an overflow extent; then a block of
        // a pack's size or more (cutting into an extent's free front keeps
        // its large allocation from coming back there); then a new pack.
        let b = match self.find_fit(size_g, align_g)? {
            Some(Fit::Front(b)) => return self.carve_front(b, size_g),
            Some(Fit::Block(b)) => b,
            // An extent that cannot be mapped (no memory, or the global
            // cap) changes nothing: the search goes on, the mapped free
            // space of a pack's size or more included. Not after a probe's
            // `WouldGrow`: the probe must fail with nothing placed.
            None if self.overflows(size_g)? => match self.alloc_overflow(src, size_g, align_g) {
                Err(Error::NoMemory) => self.big_or_new(src, size_g, align_g)?,
                r => return r,
            },
            None => self.big_or_new(src, size_g, align_g)?,
        };
        self.carve(b, size_g, align_g)
    }

    /// A free block of a pack's size or more that fits, else the first
    /// block of a new pack or extent.
    fn big_or_new<P: PackSource>(
        &mut self,
        src: &mut P,
        size_g: u32,
        align_g: u32,
    ) -> Result<u32, Error> {
        Ok(match self.find_big(size_g, align_g)? {
            Some(b) => b,
            None => {
                // A pack, or an extent of ceil(size_g / pack) packs whose
                // tail is shared like any free block.
                let p = self.new_pack(src, size_g.div_ceil(PACK_G).max(1))?;
                self.pack(p)?.first
            }
        })
    }

    /// After a free left merged block `b` in pack `p`: if the pack is now
    /// empty, keep it as the spare or unmap it (hysteresis); an idle spare
    /// decays. Returns whether this free unmapped a pack.
    #[inline(always)]
    pub(super) fn after_free<P: PackSource>(
        &mut self,
        src: &mut P,
        p: u32,
        b: u32,
    ) -> Result<bool, Error> {
        let pack = self.pack(p)?;
        let now_empty = pack.used == 0;
        let keep = pack.kind == PackKind::Shared && self.spare == NIL && self.recently_grew();
        let mut unmapped = false;
        if now_empty {
            if keep {
                self.empty = corrupt(self.empty.checked_add(1))?;
                self.spare = p;
            } else {
                // An extent, a spare exists already, or the class has
                // not grown lately: release this one.
                self.list_remove(b)?;
                self.put_node(b)?;
                self.unmap_pack(src, p)?;
                unmapped = true;
            }
        }
        if !unmapped && !self.recently_grew() {
            // An idle spare decays, at most one unmap per free: if this free
            // released a pack already, the next free releases the spare.
            self.release_spare(src)?;
        }
        Ok(unmapped)
    }

    /// Whether the class mapped a pack or took its spare within the last
    /// [`HYST_OPS`] operations.
    pub(super) fn recently_grew(&self) -> bool {
        self.tick.wrapping_sub(self.grew) <= HYST_OPS
    }

    /// Unmap the spare pack, if any (e.g. from a shrinker). Returns whether
    /// one was released.
    pub fn release_spare<P: PackSource>(&mut self, src: &mut P) -> Result<bool, Error> {
        let p = self.spare;
        if p == NIL {
            return Ok(false);
        }
        let b = self.pack(p)?.first;
        self.list_remove(b)?;
        self.put_node(b)?;
        self.unmap_pack(src, p)?;
        self.empty = corrupt(self.empty.checked_sub(1))?;
        self.spare = NIL;
        Ok(true)
    }

    /// Unmap everything (module exit) and forget all allocations. Returns
    /// how many allocations were still live (leaked by their owners).
    pub fn release_all<P: PackSource>(&mut self, src: &mut P) -> usize {
        let mut unmaps = self.unmaps;
        for (i, pack) in (0..self.packs.len()).filter_map(|i| Some((i, self.packs.get(i)?))) {
            if pack.npacks != 0 {
                Span::of(pack).unmap(src, self.class, i as u32, pack.base);
                unmaps = unmaps.wrapping_add(1);
            }
        }
        let live = self.live;
        while self.nodes.pop().is_some() {}
        while self.packs.pop().is_some() {}
        while self.by_addr.pop().is_some() {}
        let maps = self.maps;
        *self = Self::new(self.class);
        self.maps = maps;
        self.unmaps = unmaps;
        live
    }
}
