// SPDX-License-Identifier: GPL-2.0

//! The one fake [`PackSource`] of the host tests and the benchmark.
//!
//! It hands out fake addresses (never dereferenced) and checks the engine's
//! side of the contract as it goes: a slot is not mapped twice, an unmap
//! names the slot, base and size of a live mapping, page-granular requests
//! are in range and get a base aligned to what was asked and not more (an
//! engine that assumed pack alignment would break). It counts calls and,
//! per class, the footprint (bytes, page-table entries, mapping units) with
//! its peak; it can fail on request (`maps_left`) and records the
//! alignments page-granular requests asked for.

use std::collections::BTreeMap;
use std::vec::Vec;

use crate::binpack::types::PerClass;
use crate::{arch, Class, Error, PackSource};

/// A footprint with its peak: what a class's backing costs.
#[derive(Clone, Copy, Debug, Default)]
pub struct Footprint {
    /// Bytes mapped.
    pub backing: usize,
    /// Peak of `backing`.
    pub peak_backing: usize,
    /// Page-table entries mapping them (one per 2 MiB pack, one per page).
    pub ptes: usize,
    /// Peak of `ptes`.
    pub peak_ptes: usize,
    /// Mapping units: 2 MiB packs (pack-based allocators) or 4 KiB pages.
    pub units: usize,
    /// Peak of `units`.
    pub peak_units: usize,
}

impl Footprint {
    /// Adds a mapping.
    pub fn add(&mut self, bytes: usize, ptes: usize, units: usize) {
        self.backing += bytes;
        self.ptes += ptes;
        self.units += units;
        self.peak_backing = self.peak_backing.max(self.backing);
        self.peak_ptes = self.peak_ptes.max(self.ptes);
        self.peak_units = self.peak_units.max(self.units);
    }

    /// Removes a mapping.
    pub fn sub(&mut self, bytes: usize, ptes: usize, units: usize) {
        self.backing -= bytes;
        self.ptes -= ptes;
        self.units -= units;
    }
}

/// A live mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    /// Its class.
    pub class: Class,
    /// Its bytes.
    pub bytes: usize,
    /// Whether it is page-granular (an overflow extent).
    pub pages: bool,
}

/// Where the first mapping goes.
const START: usize = 0xffff_a000_0000_0000;

/// See the module docs.
#[derive(Debug)]
pub struct FakeSource {
    next: usize,
    /// Each mapping at the lowest base with a pack's hole on both sides,
    /// as vmalloc reuses freed ranges, rather than above every earlier one.
    reuse: bool,
    /// Calls to `map` and `map_pages`.
    pub maps: u64,
    /// Calls to `unmap` and `unmap_pages`.
    pub unmaps: u64,
    /// 2 MiB units mapped now, all classes.
    pub mapped: usize,
    /// Peak of `mapped`.
    pub peak: usize,
    /// Base pages mapped now for overflow extents, all classes.
    pub pages: usize,
    /// How many more maps may succeed; then every map fails with
    /// `refusal` (fault injection). Unlimited by default.
    pub maps_left: u64,
    /// What a map fails with once `maps_left` is spent: `NoMemory`, or
    /// `WouldGrow` to act as a source that only probes.
    pub refusal: Error,
    /// Maps that failed.
    pub refused: u64,
    /// The alignment of every `map_pages` request, in order.
    pub page_aligns: Vec<usize>,
    /// Per class: the footprint, the 2 MiB units counted as units.
    pub foot: PerClass<Footprint>,
    /// Live mappings by base.
    pub regions: BTreeMap<usize, Region>,
    /// Live mappings by (class, engine slot).
    pub slots: BTreeMap<(usize, usize), usize>,
}

impl Default for FakeSource {
    fn default() -> Self {
        FakeSource {
            next: START,
            reuse: false,
            maps: 0,
            unmaps: 0,
            mapped: 0,
            peak: 0,
            pages: 0,
            maps_left: u64::MAX,
            refusal: Error::NoMemory,
            refused: 0,
            page_aligns: Vec::new(),
            foot: PerClass::default(),
            regions: BTreeMap::new(),
            slots: BTreeMap::new(),
        }
    }
}

impl FakeSource {
    /// A source whose first pack is at a fixed fake base.
    pub fn new() -> Self {
        Self::default()
    }

    /// A source that maps at the lowest free base, so that a new pack may
    /// land below live ones.
    pub fn reusing() -> Self {
        FakeSource {
            reuse: true,
            ..Self::default()
        }
    }

    /// The base of a new mapping of `bytes`, `lead` bytes past a pack
    /// boundary, with at least a pack free on both sides; moves `next`.
    fn place(&mut self, lead: usize, bytes: usize) -> usize {
        let mut cand = self.next;
        if self.reuse {
            cand = START;
            for (&b, r) in &self.regions {
                if cand + lead + bytes + arch::PACK_SIZE <= b {
                    break;
                }
                cand = cand.max((b + r.bytes).next_multiple_of(arch::PACK_SIZE) + arch::PACK_SIZE);
            }
        }
        let base = cand + lead;
        self.next = self
            .next
            .max((base + bytes).next_multiple_of(arch::PACK_SIZE) + arch::PACK_SIZE);
        base
    }

    /// A source on which only the first `n` maps succeed.
    pub fn failing_after(n: u64) -> Self {
        FakeSource {
            maps_left: n,
            ..Self::default()
        }
    }

    /// Bytes `class` has mapped now.
    pub fn backing(&self, class: Class) -> usize {
        self.foot[class].backing
    }

    /// Whether `[addr, addr + size)` lies in one live mapping of `class`.
    pub fn contains(&self, class: Class, addr: usize, size: usize) -> bool {
        match self.regions.range(..=addr).next_back() {
            Some((&b, r)) => r.class == class && addr + size <= b + r.bytes,
            None => false,
        }
    }

    fn take(&mut self) -> Result<(), Error> {
        if self.maps_left == 0 {
            self.refused += 1;
            return Err(self.refusal);
        }
        self.maps_left -= 1;
        self.maps += 1;
        Ok(())
    }

    fn insert(&mut self, class: Class, slot: usize, base: usize, region: Region) {
        assert!(slot < arch::MAX_PACKS, "slot {slot} out of range");
        assert!(
            self.slots.insert((class.index(), slot), base).is_none(),
            "slot {slot} reused while mapped"
        );
        self.regions.insert(base, region);
    }

    fn remove(&mut self, class: Class, slot: usize, base: usize, region: Region) {
        assert_eq!(
            self.slots.remove(&(class.index(), slot)),
            Some(base),
            "unmap with a wrong slot"
        );
        assert_eq!(self.regions.remove(&base), Some(region), "bad unmap");
        self.unmaps += 1;
    }
}

impl PackSource for FakeSource {
    fn map(&mut self, class: Class, slot: usize, npacks: usize) -> Result<usize, Error> {
        self.take()?;
        let bytes = npacks * arch::PACK_SIZE;
        // A one-pack hole so neighbouring packs never touch.
        let base = self.place(0, bytes);
        let region = Region {
            class,
            bytes,
            pages: false,
        };
        self.insert(class, slot, base, region);
        self.mapped += npacks;
        self.peak = self.peak.max(self.mapped);
        self.foot[class].add(bytes, npacks, npacks);
        Ok(base)
    }

    fn unmap(&mut self, class: Class, slot: usize, base: usize, npacks: usize) {
        let bytes = npacks * arch::PACK_SIZE;
        let region = Region {
            class,
            bytes,
            pages: false,
        };
        self.remove(class, slot, base, region);
        self.mapped -= npacks;
        self.foot[class].sub(bytes, npacks, npacks);
    }

    fn map_pages(
        &mut self,
        class: Class,
        slot: usize,
        pages: usize,
        align: usize,
    ) -> Result<usize, Error> {
        assert!(align.is_power_of_two() && (arch::PAGE_SIZE..=arch::PACK_SIZE).contains(&align));
        assert!((1..=arch::PACK_SIZE / arch::PAGE_SIZE).contains(&pages));
        self.take()?;
        self.page_aligns.push(align);
        // Aligned to what is asked and not more (past a pack boundary).
        let bytes = pages * arch::PAGE_SIZE;
        let base = self.place(align.max(arch::PAGE_SIZE), bytes);
        let region = Region {
            class,
            bytes,
            pages: true,
        };
        self.insert(class, slot, base, region);
        self.pages += pages;
        self.foot[class].add(bytes, pages, 0);
        Ok(base)
    }

    fn unmap_pages(&mut self, class: Class, slot: usize, base: usize, pages: usize) {
        let bytes = pages * arch::PAGE_SIZE;
        let region = Region {
            class,
            bytes,
            pages: true,
        };
        self.remove(class, slot, base, region);
        self.pages -= pages;
        self.foot[class].sub(bytes, pages, 0);
    }
}
