// SPDX-License-Identifier: GPL-2.0

//! What the engine reports: per-class counters ([`ClassStats`]), a view
//! of each pack ([`PackInfo`]) and a 64-cell picture of its use, for
//! debugfs and the benchmark.

use super::super::storage::{Storage, Vector};
use super::super::types::{arch, PerType};
use super::arena::State;
use super::{Engine, NIL};

/// Per-class counters for debugfs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClassStats {
    /// Shared packs mapped, including the spare.
    pub packs: usize,
    /// Empty shared packs kept as spare (0 or 1).
    pub spare: usize,
    /// Dedicated extents mapped.
    pub extents: usize,
    /// 2 MiB units backing the dedicated extents.
    pub extent_packs: usize,
    /// Overflow extents mapped (page-granular, one allocation each).
    pub overflow: usize,
    /// Base pages backing them (= their 4 KiB page-table entries).
    pub overflow_pages: usize,
    /// Bytes mapped: (packs + extent units) * 2 MiB + overflow pages * 4 KiB.
    pub backing: usize,
    /// Bytes allocated (sum of rounded sizes).
    pub used: usize,
    /// Bytes allocated per type, indexed by `ExecmemType::index()`.
    pub used_by_type: PerType<usize>,
    /// Live allocations.
    pub live: usize,
    /// Calls to `PackSource::map` / `unmap`.
    pub maps: u64,
    /// See `maps`.
    pub unmaps: u64,
}

/// Debugfs view of one pack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PackInfo {
    /// Base address (print offsets, not this, to user space).
    pub base: usize,
    /// Size in 2 MiB units (1 for a shared pack and an overflow extent).
    pub npacks: usize,
    /// Base pages of an overflow extent, 0 for packs and extents.
    pub pages: usize,
    /// Whether it is a dedicated extent.
    pub dedicated: bool,
    /// Bytes allocated.
    pub used: usize,
    /// Allocations.
    pub live: usize,
    /// Free blocks.
    pub free_extents: usize,
    /// Largest free block in bytes.
    pub largest_free: usize,
}

impl<S: Storage> Engine<S> {
    /// Counters of this class.
    pub fn stats(&self) -> ClassStats {
        let g = |x: usize| x.saturating_mul(arch::GRANULE);
        let mut by_type = PerType::default();
        for (ty, s) in self.used_by_type.iter() {
            by_type[ty] = g(*s);
        }
        ClassStats {
            packs: self.shared,
            spare: self.empty as usize,
            extents: self.extents,
            extent_packs: self.extent_units,
            overflow: self.overflow,
            overflow_pages: self.overflow_pages as usize,
            backing: self
                .shared
                .saturating_add(self.extent_units)
                .saturating_mul(arch::PACK_SIZE)
                .saturating_add((self.overflow_pages as usize).saturating_mul(arch::PAGE_SIZE)),
            used: g(self.used),
            used_by_type: by_type,
            live: self.live,
            maps: self.maps,
            unmaps: self.unmaps,
        }
    }

    /// Number of pack slots; [`Engine::pack_info`] is `None` for unused ones.
    pub fn pack_slots(&self) -> usize {
        self.packs.len()
    }

    /// Debugfs view of pack slot `i`.
    pub fn pack_info(&self, i: usize) -> Option<PackInfo> {
        let pack = self.packs.get(i)?;
        if pack.npacks == 0 {
            return None;
        }
        let mut largest = 0u32;
        let mut b = pack.first;
        while b != NIL {
            let n = self.nodes.get(b as usize)?;
            if n.state == State::Free {
                largest = largest.max(n.size);
            }
            b = n.next;
        }
        Some(PackInfo {
            base: pack.base,
            npacks: pack.npacks as usize,
            pages: pack.pages as usize,
            dedicated: pack.kind.dedicated(),
            used: (pack.used as usize).saturating_mul(arch::GRANULE),
            live: pack.live as usize,
            free_extents: pack.nfree as usize,
            largest_free: (largest as usize).saturating_mul(arch::GRANULE),
        })
    }

    /// A 64-cell picture of pack slot `i`: each cell is 1/64 of the pack
    /// (32 KiB of a 2 MiB pack): `.` empty, `:` partly used, `#` full.
    pub fn pack_map(&self, i: usize) -> Option<[u8; 64]> {
        let pack = self.packs.get(i)?;
        if pack.npacks == 0 {
            return None;
        }
        let total = pack.span_g()?;
        let cell = total.checked_div(64)?;
        let mut used = [0u32; 64];
        let mut b = pack.first;
        while b != NIL {
            let n = self.nodes.get(b as usize)?;
            if n.state == State::Used {
                // Spread [off, off + size) over the cells it touches.
                let mut x = n.off;
                let end = n.off.checked_add(n.size)?;
                while x < end {
                    let c = x.checked_div(cell)?;
                    let cell_end = c.checked_add(1)?.checked_mul(cell)?.min(end);
                    let slot = used.get_mut(c as usize)?;
                    *slot = slot.checked_add(cell_end.checked_sub(x)?)?;
                    x = cell_end;
                }
            }
            b = n.next;
        }
        let mut out = [b'.'; 64];
        for (o, u) in out.iter_mut().zip(used.iter()) {
            *o = if *u == 0 {
                b'.'
            } else if *u >= cell {
                b'#'
            } else {
                b':'
            };
        }
        Some(out)
    }
}
