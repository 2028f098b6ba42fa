// SPDX-License-Identifier: GPL-2.0

//! What the allocator tells debugfs: counters per class and type, and a
//! view of each pack.

use super::{Allocator, ClassState};
use crate::execmem::backend::arch::LEVEL_2M;
use crate::execmem::backend::mem::PageInfo;
use crate::execmem::binpack::{
    engine::{ClassStats, PackInfo},
    types::{Class, PerType},
};
use core::sync::atomic::Ordering;
use kernel::prelude::*;

/// Per-type counters.
#[derive(Clone, Copy, Default)]
pub struct TypeCounters {
    /// Successful allocations.
    pub allocs: u64,
    /// Frees.
    pub frees: u64,
    /// Live allocations.
    pub live: u64,
    /// Bytes requested by the live allocations.
    pub live_bytes: u64,
    /// Of `allocs`, those the kernel made (the provider's callers).
    pub kernel_allocs: u64,
}

/// A snapshot of one class's counters.
pub struct ClassReport {
    /// The engine's counters (packs, backing bytes, ...).
    pub engine: ClassStats,
    /// Packs mapped with 2 MiB pages so far.
    pub huge_packs: u64,
    /// Packs that fell back to 4 KiB pages so far.
    pub fallback_packs: u64,
    /// Maps of packs or extents that failed so far (see `Packs`).
    pub map_failures: u64,
    /// Freed ranges parked for the refill worker.
    pub pending: usize,
    /// `text_poke` calls on callers' paths and by the worker.
    pub pokes: u64,
    /// Bytes written by them.
    pub poke_bytes: u64,
    /// Of `pokes`, those the refill worker made.
    pub refill_pokes: u64,
    /// Longest time a parked range waited for its refill, in ns.
    pub refill_max_ns: u64,
    /// Calls into the class's code under way.
    pub running: u64,
    /// Refills of freed memory under way.
    pub refilling: u64,
    /// Per-type counters (the class's types only are non-zero).
    pub types: PerType<TypeCounters>,
}

/// One pack, for the `packs` file.
pub struct PackReport {
    /// Pack number within its class (as `info` prints it).
    pub index: usize,
    /// Engine view.
    pub info: PackInfo,
    /// 64-cell occupancy picture.
    pub map: [u8; 64],
    /// Whether the pack is mapped with 2 MiB pages.
    pub huge: bool,
    /// How its first page is mapped.
    pub page: Option<PageInfo>,
    /// How the direct-map alias of its first page is mapped.
    pub alias: Option<PageInfo>,
}

impl Allocator {
    /// Counters of `class`.
    pub fn report(&self, class: Class) -> ClassReport {
        let s = self.stats(class);
        let (pokes, poke_bytes) = self.caller_pokes(class);
        let refill_pokes = s.refill_pokes.load(Ordering::Relaxed);
        let refill_bytes = s.refill_bytes.load(Ordering::Relaxed);
        let st = self.class(class).lock();
        ClassReport {
            engine: st.engine.stats(),
            huge_packs: st.packs.huge,
            fallback_packs: st.packs.fallback,
            map_failures: st.packs.map_failures,
            pending: st.queue.len(),
            pokes: pokes.wrapping_add(refill_pokes),
            poke_bytes: poke_bytes.wrapping_add(refill_bytes),
            refill_pokes,
            refill_max_ns: s.refill_max_ns.load(Ordering::Relaxed),
            // Read under the class lock, as the rest: hardening.py's
            // 4_refill_holds_no_lock relies on it (a memset under the lock
            // could never be seen under way).
            running: s.running.load(Ordering::Relaxed),
            refilling: s.refilling.load(Ordering::Relaxed),
            types: st.counters.types,
        }
    }

    /// Calls `f` for every mapped pack of `class`, with no lock held: the
    /// class lock is taken once per pack, for that pack's report only (a
    /// walk of its blocks and two page-table probes). So the listing is
    /// not one snapshot: each pack is as it was when its report was taken.
    pub fn for_each_pack(&self, class: Class, mut f: impl FnMut(&PackReport) -> Result) -> Result {
        let mut i = 0;
        loop {
            let report = {
                let st = self.class(class).lock();
                if i >= st.engine.pack_slots() {
                    return Ok(());
                }
                Self::pack_report(&st, i)
            };
            if let Some(r) = report {
                f(&r)?;
            }
            i += 1;
        }
    }

    /// Pack slot `i` of a class, if it is mapped.
    fn pack_report(st: &ClassState, i: usize) -> Option<PackReport> {
        let (info, map) = (st.engine.pack_info(i)?, st.engine.pack_map(i)?);
        let area = st.packs.area(i);
        let page = area.and_then(|a| a.probe(0).ok());
        let alias = area.and_then(|a| a.probe_alias(0).ok());
        Some(PackReport {
            index: i,
            info,
            map,
            huge: page.is_some_and(|p| p.level == LEVEL_2M),
            page,
            alias,
        })
    }

    /// Whether every mapped area of every class lies in the range execmem
    /// itself uses for that class (`[start, end)`): for the selftest.
    pub fn areas_in_range(&self) -> bool {
        Class::ALL
            .into_iter()
            .all(|class| self.class(class).lock().packs.all_in_range())
    }
}
