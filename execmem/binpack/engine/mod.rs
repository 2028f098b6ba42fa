// SPDX-License-Identifier: GPL-2.0

//! The free-space engine: one [`Engine`] per permission class.
//!
//! # Data structures
//!
//! * A **pack** is 2 MiB ([`arch::PACK_SIZE`]) of backing from the
//!   [`PackSource`]. Allocations larger than a pack get a **dedicated
//!   extent** of `ceil(size / 2 MiB)` packs: a multi-pack pack whose
//!   large allocation is carved from offset 0 and whose tail is an
//!   ordinary free block of the class. It is released as soon as it is
//!   empty (never kept as spare).
//! * Every block of a pack, free or allocated, is a [`Node`] in one pool
//!   (`nodes`), outside the managed memory. The blocks of a pack form an
//!   address-ordered doubly-linked list (boundary tags kept out of band);
//!   free blocks also sit in the pack's segregated free lists (see
//!   [`super::tlsf`]), with a `u64` bitmap of non-empty lists per pack.
//! * Per class, for each of the 57 size lists, a two-level bitmap over pack
//!   slots (up to [`MAX_PACKS`]) of the packs whose own list of that size
//!   is non-empty, plus a `u64` of the sizes non-empty in any pack:
//!   finding the smallest size class with a free block in *any* pack, and
//!   the lowest pack that has it, is a few masks and `trailing_zeros`.
//!
//! # Complexity
//!
//! `alloc` and `free` do O(1) work independent of how many allocations are
//! live or how full a pack is: two bitmap searches, a constant number of
//! list operations, at most two merges, at most one unmap per free. The
//! bound is amortised: when the node pool is out of spare nodes, growing it
//! may reallocate and copy the node vector (doubling, so O(1) per node
//! over time, but O(live nodes) for the one call that grows it). Only the
//! rare map/unmap of a pack touches the address-sorted pack index
//! (O(packs) memmove). `find(addr)` is a binary search over packs plus a
//! walk over the blocks of one pack.
//!
//! # Metadata cost
//!
//! All metadata lives outside the managed memory. [`Node`]: 36 bytes per
//! block (an allocation is one node; free blocks between allocations are
//! one node each, never more than allocations + 1 per pack). [`Pack`]: 280
//! bytes per pack or extent (0.013 % of 2 MiB; a bitmap of 64 B chunks
//! would be 4 KiB). [`Engine`]: 736 bytes per class, plus 3.6 KiB of
//! per-list pack bitmaps on the heap once the first pack is mapped, so an
//! engine is cheap to build (and reset) on a kernel stack.
//!
//! # Files
//!
//! This file holds the [`Engine`], its public types and the alloc, free
//! and lookup entry points; the rest is one concept per file:
//!
//! - `arena.rs`: [`Node`] and the node pool.
//! - `pack.rs`: [`Pack`], [`PackId`] and the pack lifecycle (map, unmap,
//!   a new pack or extent).
//! - `index.rs`: the per-pack segregated free lists, the class-wide list
//!   x pack bitmaps and the address-sorted pack index.
//! - `fit.rs`: the free-space search and carving a block.
//! - `policy.rs`: the placement order, overflow extents
//!   ([`OVERFLOW_PAGES`]), the spare's hysteresis ([`HYST_OPS`]) and
//!   releasing packs, with the docs that explain them.
//! - `check.rs`: the invariant checker, [`Engine::check`].
//! - `report.rs`: [`ClassStats`], [`PackInfo`] and the pack picture.

use core::sync::atomic::{AtomicU32, Ordering};

use super::storage::{Error, PackSource, Storage, Vector};
use super::tlsf::NLISTS;
use super::types::{arch, Class, ExecmemType, PerType, MAX_ALLOC, NTYPES};

mod arena;
mod check;
mod fit;
mod index;
mod pack;
mod policy;
mod report;

pub use arena::Node;
pub use pack::{Pack, PackId, PackKind};
pub use policy::{HYST_OPS, OVERFLOW_PAGES};
pub use report::{ClassStats, PackInfo};

use arena::State;

/// "No node / no pack" in links.
const NIL: u32 = u32::MAX;
/// Granules per pack, as `u32`.
const PACK_G: u32 = 1 << (arch::PACK_SHIFT - arch::GRANULE_SHIFT);
/// Granules per base page.
const PAGE_G: u32 = (arch::PAGE_SIZE >> arch::GRANULE_SHIFT) as u32;
/// Most pack slots (shared packs plus dedicated extents) per class: 512,
/// i.e. 1 GiB of shared packs, the size of the x86_64 module area.
pub const MAX_PACKS: usize = arch::MAX_PACKS;
/// Words of one per-list pack bitmap.
const PMAP_WORDS: usize = MAX_PACKS.div_ceil(64);

/// Engine ids, so a handle of another engine is recognised.
static NEXT_ID: AtomicU32 = AtomicU32::new(1);

/// What `alloc` returns and `free` takes back.
///
/// A plain value: node index plus generation plus engine id, so a double
/// free, a stale handle or one from another engine is an error, never a
/// corruption. (The generation is 32 bits: a handle kept across 2^32
/// reuses of the same node would alias; not a concern for the kernel's
/// owners, which drop handles when they free.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Handle {
    engine: u32,
    node: u32,
    gen: u32,
}

/// Where an allocation lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    /// Give this back to [`Engine::free`].
    pub handle: Handle,
    /// Type it was allocated for.
    pub ty: ExecmemType,
    /// Pack (or dedicated extent) it lives in.
    pub pack: PackId,
    /// Byte offset from the pack's base.
    pub offset: usize,
    /// Address (pack base + offset).
    pub addr: usize,
    /// Size in bytes, rounded up to the granule.
    pub size: usize,
    /// An alignment the address satisfies: the effective requested one
    /// for [`Engine::alloc`], the natural one (capped at `MAX_ALIGN`) for
    /// lookups.
    pub align: usize,
}

/// What [`Engine::free`] released.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Freed {
    /// Type it was allocated for.
    pub ty: ExecmemType,
    /// Address of the freed block.
    pub addr: usize,
    /// Its rounded size.
    pub size: usize,
    /// Whether the backing was unmapped (then there is nothing to refill).
    pub unmapped: bool,
}

fn corrupt<T>(o: Option<T>) -> Result<T, Error> {
    o.ok_or(Error::Corrupted)
}

fn g2b(size_g: u32) -> Result<usize, Error> {
    corrupt((size_g as usize).checked_mul(arch::GRANULE))
}

/// The allocator of one permission class.
///
/// # Invariants
///
/// See [`Node`] and [`Pack`]. In addition: `node_free` links exactly
/// `node_spare` `Spare` nodes; `by_addr` lists the live pack slots sorted by
/// base; bit `p` of `packs_with[i]` is set iff pack `p`'s list `i` is
/// non-empty, bit `w` of `packs_with_words[i]` iff word `w` of
/// `packs_with[i]` is non-zero, bit `i` of `nonempty_lists` iff
/// `packs_with_words[i]` is; `empty` is the number of shared packs with
/// `used == 0` (at most 1 between operations); the counters equal the sums
/// over packs.
pub struct Engine<S: Storage> {
    class: Class,
    id: u32,
    nodes: S::Vec<Node>,
    packs: S::Vec<Pack>,
    by_addr: S::Vec<u32>,
    node_free: u32,
    node_spare: u32,
    slot_free: u32,
    /// One row per list, `NLISTS` rows once the first pack is mapped
    /// (empty before): on the heap, so the engine itself stays small
    /// enough to build on a kernel stack.
    packs_with: S::Vec<[u64; PMAP_WORDS]>,
    packs_with_words: [u64; NLISTS],
    nonempty_lists: u64,
    empty: u32,
    spare: u32,
    tick: u64,
    grew: u64,
    shared: usize,
    extents: usize,
    extent_units: usize,
    overflow: usize,
    overflow_pages: u32,
    overflow_used: u32,
    used: usize,
    used_by_type: PerType<usize>,
    live: usize,
    maps: u64,
    unmaps: u64,
    /// Whether [`Engine::find_fit`] may take a list's sole block without
    /// walking the list (always, but for the test that compares the two).
    shortcut: bool,
}

impl<S: Storage> Engine<S> {
    /// A new engine for `class`, with no packs. Does not allocate.
    pub fn new(class: Class) -> Self {
        Engine {
            class,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            nodes: S::new_vec(),
            packs: S::new_vec(),
            by_addr: S::new_vec(),
            node_free: NIL,
            node_spare: 0,
            slot_free: NIL,
            packs_with: S::new_vec(),
            packs_with_words: [0; NLISTS],
            nonempty_lists: 0,
            empty: 0,
            spare: NIL,
            tick: 0,
            grew: 0,
            shared: 0,
            extents: 0,
            extent_units: 0,
            overflow: 0,
            overflow_pages: 0,
            overflow_used: 0,
            used: 0,
            used_by_type: PerType::new([0; NTYPES]),
            live: 0,
            maps: 0,
            unmaps: 0,
            shortcut: true,
        }
    }

    /// Makes every search walk its lists (no sole-block shortcut): what
    /// the test comparing the two runs beside an ordinary engine.
    pub fn search_always(&mut self) {
        self.shortcut = false;
    }

    /// The class this engine serves.
    pub fn class(&self) -> Class {
        self.class
    }

    // ---- allocation ---------------------------------------------------------

    /// Allocate `size` bytes of type `ty` (which must belong to this
    /// engine's class), aligned to `align` (a power of two up to
    /// `MAX_ALIGN`; below the granule it is the granule) or to the type's
    /// default. On error the engine is unchanged.
    pub fn alloc<P: PackSource>(
        &mut self,
        src: &mut P,
        ty: ExecmemType,
        size: usize,
        align: Option<usize>,
    ) -> Result<Placement, Error> {
        let info = ty.info();
        if info.class != self.class || size == 0 {
            return Err(Error::Invalid);
        }
        let align = align.unwrap_or(info.align);
        if !align.is_power_of_two() || align > arch::MAX_ALIGN {
            return Err(Error::Invalid);
        }
        if size > MAX_ALLOC {
            return Err(Error::TooBig);
        }
        let align = align.max(info.granularity).max(arch::GRANULE);
        let size_g = u32::try_from(size.div_ceil(arch::GRANULE)).map_err(|_| Error::TooBig)?;
        let align_g = align
            .checked_shr(arch::GRANULE_SHIFT)
            .and_then(|a| u32::try_from(a).ok())
            .ok_or(Error::Invalid)?;
        let u = self.alloc_shared(src, size_g, align_g)?;
        self.node_mut(u)?.ty = ty.index() as u8;
        let t = &mut self.used_by_type[ty];
        *t = corrupt(t.checked_add(size_g as usize))?;
        self.used = corrupt(self.used.checked_add(size_g as usize))?;
        self.live = corrupt(self.live.checked_add(1))?;
        self.tick = self.tick.wrapping_add(1);
        let mut pl = self.placement_of(u)?;
        pl.align = align;
        Ok(pl)
    }

    // ---- free -----------------------------------------------------------------

    /// The node of a live handle of this engine.
    fn check_handle(&self, h: Handle) -> Result<u32, Error> {
        if h.engine != self.id {
            return Err(Error::NotAllocated);
        }
        match self.nodes.get(h.node as usize) {
            Some(n) if n.state == State::Used && n.gen == h.gen => Ok(h.node),
            _ => Err(Error::NotAllocated),
        }
    }

    /// Free the allocation `h`. A double free, a stale handle or a handle
    /// of another engine is [`Error::NotAllocated`] and changes nothing.
    /// The caller refills `Freed::addr..+size` with the class's fill byte
    /// unless `Freed::unmapped`.
    pub fn free<P: PackSource>(&mut self, src: &mut P, h: Handle) -> Result<Freed, Error> {
        let u = self.check_handle(h)?;
        self.tick = self.tick.wrapping_add(1);
        let (p, size, ty) = {
            let n = self.node(u)?;
            (n.pack, n.size, n.ty)
        };
        let ty = corrupt(ExecmemType::from_index(ty as usize))?;
        let addr = self.placement_of(u)?.addr;
        let t = &mut self.used_by_type[ty];
        *t = corrupt(t.checked_sub(size as usize))?;
        self.used = corrupt(self.used.checked_sub(size as usize))?;
        self.live = corrupt(self.live.checked_sub(1))?;
        let bytes = g2b(size)?;
        if self.pack(p)?.kind == PackKind::Overflow {
            self.overflow_used = corrupt(self.overflow_used.checked_sub(size))?;
            self.put_node(u)?;
            self.unmap_pack(src, p)?;
            return Ok(Freed {
                ty,
                addr,
                size: bytes,
                unmapped: true,
            });
        }
        let b = self.merge(u, p, size)?;
        let unmapped = self.after_free(src, p, b)?;
        Ok(Freed {
            ty,
            addr,
            size: bytes,
            unmapped,
        })
    }

    // ---- lookups ----------------------------------------------------------------

    fn placement_of(&self, u: u32) -> Result<Placement, Error> {
        let n = self.node(u)?;
        let pack = self.pack(n.pack)?;
        let offset = g2b(n.off)?;
        let addr = corrupt(pack.base.checked_add(offset))?;
        let natural = 1usize
            .checked_shl(addr.trailing_zeros())
            .unwrap_or(arch::MAX_ALIGN)
            .min(arch::MAX_ALIGN);
        Ok(Placement {
            handle: Handle {
                engine: self.id,
                node: u,
                gen: n.gen,
            },
            ty: corrupt(ExecmemType::from_index(n.ty as usize))?,
            pack: PackId(n.pack),
            offset,
            addr,
            size: g2b(n.size)?,
            align: natural,
        })
    }

    /// Where the live allocation `h` is.
    pub fn placement(&self, h: Handle) -> Result<Placement, Error> {
        let u = self.check_handle(h)?;
        self.placement_of(u)
    }

    /// The allocation that contains `addr`: binary search over packs, then a
    /// walk over the blocks of that pack.
    pub fn find_containing(&self, addr: usize) -> Result<Placement, Error> {
        let Some(i) = self.by_addr_floor(addr)? else {
            return Err(Error::NotAllocated);
        };
        let p = *corrupt(self.by_addr.get(i))?;
        let pack = self.pack(p)?;
        let rel = corrupt(addr.checked_sub(pack.base))?;
        let span = g2b(corrupt(pack.span_g())?)?;
        if rel >= span {
            return Err(Error::NotAllocated);
        }
        let rg = u32::try_from(rel >> arch::GRANULE_SHIFT).map_err(|_| Error::Corrupted)?;
        let mut b = pack.first;
        while b != NIL {
            let n = self.node(b)?;
            let end = corrupt(n.off.checked_add(n.size))?;
            if rg < end {
                return if n.state == State::Used && rg >= n.off {
                    self.placement_of(b)
                } else {
                    Err(Error::NotAllocated)
                };
            }
            b = n.next;
        }
        Err(Error::NotAllocated)
    }

    /// The allocation that starts exactly at `addr` (free by address).
    pub fn find(&self, addr: usize) -> Result<Handle, Error> {
        let pl = self.find_containing(addr)?;
        if pl.addr == addr {
            Ok(pl.handle)
        } else {
            Err(Error::NotAllocated)
        }
    }

    /// Whether freeing the live allocation `h` unmaps its backing: an
    /// overflow extent, or a dedicated extent it is the only allocation of
    /// (extents are released as soon as they are empty). Then there is
    /// nothing to refill. `false` for a stale handle. O(1).
    pub fn free_unmaps(&self, h: Handle) -> bool {
        let Ok(u) = self.check_handle(h) else {
            return false;
        };
        self.nodes
            .get(u as usize)
            .and_then(|n| self.packs.get(n.pack as usize))
            .is_some_and(|pack| match pack.kind {
                PackKind::Overflow => true,
                PackKind::Extent => pack.live == 1,
                PackKind::Shared | PackKind::Unused => false,
            })
    }
}
