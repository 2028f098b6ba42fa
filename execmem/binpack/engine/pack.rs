// SPDX-License-Identifier: GPL-2.0

//! The pack lifecycle: pack slots ([`Pack`]), what backs them ([`Span`]:
//! 2 MiB packs or base pages from the [`PackSource`]), and mapping a slot,
//! unmapping it, and a new pack or extent holding one free block.

use super::super::storage::{Error, PackSource, Storage, Vector};
use super::super::tlsf::NLISTS;
use super::super::types::{arch, Class};
use super::arena::{Node, State};
use super::{corrupt, Engine, MAX_PACKS, NIL, PACK_G, PAGE_G, PMAP_WORDS};

/// What a pack slot holds: one meaning per kind, decided when it is
/// mapped (by its [`Span`]) and never re-derived from other fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PackKind {
    /// A free slot, linked by `next_slot`.
    Unused,
    /// One 2 MiB pack shared by the class's allocations (or, empty, the
    /// class's spare).
    Shared,
    /// A dedicated extent: two or more contiguous 2 MiB packs for one
    /// allocation larger than a pack, carved from offset 0; its tail is an
    /// ordinary free block of the class. Released as soon as it is empty.
    Extent,
    /// An overflow extent: base pages holding exactly one allocation from
    /// offset 0 and no free block (its tail stays unused); unmapped when
    /// the allocation is freed.
    Overflow,
}

impl PackKind {
    /// The kind a mapping of `span` makes.
    pub(super) fn of(span: Span) -> Self {
        match span {
            Span::Pages(..) => PackKind::Overflow,
            Span::Packs(1) => PackKind::Shared,
            Span::Packs(_) => PackKind::Extent,
        }
    }

    /// Whether the slot is dedicated to one allocation (an extent of
    /// either kind), not shared.
    pub fn dedicated(self) -> bool {
        matches!(self, PackKind::Extent | PackKind::Overflow)
    }
}

/// One pack slot.
///
/// # Invariants
///
/// `kind` is [`PackKind::Unused`] iff `npacks == 0` (the slot is linked by
/// `next_slot`). Otherwise `base` is `PACK_SIZE`-aligned, except for an
/// overflow extent (`pages != 0`, `npacks == 1`, `base` page-aligned); a
/// shared pack has `npacks == 1`, an extent `npacks > 1`, both
/// `pages == 0`. The blocks from `first` tile `[0, span_g())` granules (an
/// overflow extent: one block from 0 and an unused tail);
/// `used`/`live`/`nfree` count the used granules, allocations and free
/// blocks; bit `i` of `bits` is set iff `heads[i] != NIL`, and then the
/// pack is in the engine's pack list `i` (bit set in `packs_with[i]`). An extent
/// is never empty; an overflow extent has exactly one `Used` block and no
/// free block. Free blocks of `PACK_G` granules or more (only in extents,
/// or an empty pack) share the last list.
#[derive(Clone, Copy, Debug)]
pub struct Pack {
    pub(super) kind: PackKind,
    pub(super) base: usize,
    pub(super) npacks: u32,
    pub(super) pages: u32,
    pub(super) used: u32,
    pub(super) live: u32,
    pub(super) nfree: u32,
    pub(super) first: u32,
    pub(super) bits: u64,
    pub(super) heads: [u32; NLISTS],
    pub(super) next_slot: u32,
}

impl Pack {
    pub(super) const fn unused(next_slot: u32) -> Self {
        Pack {
            kind: PackKind::Unused,
            base: 0,
            npacks: 0,
            pages: 0,
            used: 0,
            live: 0,
            nfree: 0,
            first: NIL,
            bits: 0,
            heads: [NIL; NLISTS],
            next_slot,
        }
    }

    /// Granules the slot spans: its pages for an overflow extent, its
    /// packs otherwise.
    pub(super) fn span_g(&self) -> Option<u32> {
        if self.pages != 0 {
            self.pages.checked_mul(PAGE_G)
        } else {
            self.npacks.checked_mul(PACK_G)
        }
    }
}

/// What backs a pack slot.
#[derive(Clone, Copy, Debug)]
pub(super) enum Span {
    /// Contiguous 2 MiB packs ([`PackSource::map`]).
    Packs(u32),
    /// Base pages at an alignment, for an overflow extent
    /// ([`PackSource::map_pages`]).
    Pages(u32, usize),
}

impl Span {
    pub(super) fn of(pack: &Pack) -> Self {
        if pack.pages != 0 {
            // The alignment only matters when mapping.
            Span::Pages(pack.pages, arch::PAGE_SIZE)
        } else {
            Span::Packs(pack.npacks)
        }
    }

    pub(super) fn unmap<P: PackSource>(self, src: &mut P, class: Class, slot: u32, base: usize) {
        let slot = slot as usize;
        match self {
            Span::Packs(n) => src.unmap(class, slot, base, n as usize),
            Span::Pages(n, _) => src.unmap_pages(class, slot, base, n as usize),
        }
    }
}

/// Index of a pack slot (stable while the pack is mapped).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PackId(pub(super) u32);

impl PackId {
    /// The slot index, as taken by [`Engine::pack_info`].
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl<S: Storage> Engine<S> {
    /// The pack slot `p`; a bad index is [`Error::Corrupted`].
    pub(super) fn pack(&self, p: u32) -> Result<&Pack, Error> {
        corrupt(self.packs.get(p as usize))
    }

    /// The pack slot `p`, mutable.
    pub(super) fn pack_mut(&mut self, p: u32) -> Result<&mut Pack, Error> {
        corrupt(self.packs.get_mut(p as usize))
    }

    /// Make sure an unused pack slot exists.
    fn reserve_slot(&mut self) -> Result<(), Error> {
        if self.slot_free != NIL {
            return Ok(());
        }
        if self.packs.len() >= MAX_PACKS {
            return Err(Error::NoMemory);
        }
        let idx = u32::try_from(self.packs.len()).map_err(|_| Error::NoMemory)?;
        self.packs.try_push(Pack::unused(NIL))?;
        self.slot_free = idx;
        Ok(())
    }

    /// Map `span` into a free slot and return the slot. Everything that
    /// can fail on the metadata side is reserved first, so on error nothing
    /// observable changed.
    pub(super) fn map_pack<P: PackSource>(
        &mut self,
        src: &mut P,
        span: Span,
        nodes: u32,
    ) -> Result<u32, Error> {
        self.reserve_nodes(nodes)?;
        self.reserve_slot()?;
        // The per-list pack bitmaps, at the first mapping. A partial push
        // is not observable: missing rows read as zero.
        while self.packs_with.len() < NLISTS {
            self.packs_with.try_push([0; PMAP_WORDS])?;
        }
        self.by_addr.try_push(NIL)?;
        // The slot this mapping will take (reserved above).
        let p = self.slot_free;
        let (mapped, align, bytes) = match span {
            Span::Packs(n) => (
                src.map(self.class, p as usize, n as usize),
                arch::PACK_SIZE,
                (n as usize).checked_mul(arch::PACK_SIZE),
            ),
            Span::Pages(n, align) => (
                src.map_pages(self.class, p as usize, n as usize, align),
                align,
                (n as usize).checked_mul(arch::PAGE_SIZE),
            ),
        };
        let base = match mapped {
            Ok(b) => b,
            Err(e) => {
                self.by_addr.pop();
                return Err(e);
            }
        };
        self.maps = self.maps.wrapping_add(1);
        let bad = base == 0
            || base & align.wrapping_sub(1) != 0
            || bytes.and_then(|s| base.checked_add(s)).is_none();
        if bad {
            span.unmap(src, self.class, p, base);
            self.unmaps = self.unmaps.wrapping_add(1);
            self.by_addr.pop();
            return Err(Error::Invalid);
        }
        let next = self.pack(p)?.next_slot;
        self.slot_free = next;
        let pack = self.pack_mut(p)?;
        *pack = Pack::unused(NIL);
        pack.base = base;
        pack.kind = PackKind::of(span);
        match span {
            Span::Packs(n) => pack.npacks = n,
            Span::Pages(n, _) => {
                pack.npacks = 1;
                pack.pages = n;
            }
        }
        self.by_addr_insert(p)?;
        match (PackKind::of(span), span) {
            (PackKind::Overflow, Span::Pages(n, _)) => {
                self.overflow = corrupt(self.overflow.checked_add(1))?;
                self.overflow_pages = corrupt(self.overflow_pages.checked_add(n))?;
            }
            (PackKind::Shared, _) => {
                self.grew = self.tick;
                self.shared = corrupt(self.shared.checked_add(1))?;
            }
            (PackKind::Extent, Span::Packs(n)) => {
                self.grew = self.tick;
                self.extents = corrupt(self.extents.checked_add(1))?;
                self.extent_units = corrupt(self.extent_units.checked_add(n as usize))?;
            }
            _ => return Err(Error::Corrupted),
        }
        Ok(p)
    }

    /// Unmap slot `p`, whose blocks have already been returned to the pool.
    pub(super) fn unmap_pack<P: PackSource>(&mut self, src: &mut P, p: u32) -> Result<(), Error> {
        if self.pack(p)?.bits != 0 {
            return Err(Error::Corrupted);
        }
        self.by_addr_remove(p)?;
        let (base, span, kind) = {
            let pack = self.pack(p)?;
            (pack.base, Span::of(pack), pack.kind)
        };
        match (kind, span) {
            (PackKind::Overflow, Span::Pages(n, _)) => {
                self.overflow = corrupt(self.overflow.checked_sub(1))?;
                self.overflow_pages = corrupt(self.overflow_pages.checked_sub(n))?;
            }
            (PackKind::Shared, _) => {
                self.shared = corrupt(self.shared.checked_sub(1))?;
            }
            (PackKind::Extent, Span::Packs(n)) => {
                self.extents = corrupt(self.extents.checked_sub(1))?;
                self.extent_units = corrupt(self.extent_units.checked_sub(n as usize))?;
            }
            _ => return Err(Error::Corrupted),
        }
        let next = self.slot_free;
        *self.pack_mut(p)? = Pack::unused(next);
        self.slot_free = p;
        span.unmap(src, self.class, p, base);
        self.unmaps = self.unmaps.wrapping_add(1);
        Ok(())
    }

    /// Map a new pack (`npacks == 1`) or extent holding one free block, to
    /// be carved right away by the caller.
    pub(super) fn new_pack<P: PackSource>(
        &mut self,
        src: &mut P,
        npacks: u32,
    ) -> Result<u32, Error> {
        let total = corrupt(npacks.checked_mul(PACK_G))?;
        // A new pack becomes the spare until carved: there must be none (it
        // would have been used). Checked before mapping, so even a broken
        // caller leaves nothing mapped behind the error.
        if npacks == 1 && self.spare != NIL {
            return Err(Error::Corrupted);
        }
        // One node for the whole block, two for the carve.
        let p = self.map_pack(src, Span::Packs(npacks), 3)?;
        let b = self.take_node()?;
        let gen = self.node(b)?.gen;
        *self.node_mut(b)? = Node::block(0, total, NIL, NIL, p, gen, State::Free);
        let pack = self.pack_mut(p)?;
        pack.first = b;
        pack.nfree = 1;
        self.list_insert(b)?;
        if npacks == 1 {
            // The spare until carved (the caller carves right away).
            self.empty = corrupt(self.empty.checked_add(1))?;
            self.spare = p;
        }
        Ok(p)
    }
}
