// SPDX-License-Identifier: GPL-2.0

//! debugfs `stats`: `key value` counters per type, per class and in total.

use super::buf::Buf;
use super::show::ShowFile;
use crate::execmem::allocator::Allocator;
use crate::execmem::binpack::types::{Class, ExecmemType};
use core::fmt::Write;
use kernel::{prelude::*, sync::Arc};

/// `stats`: counters, `key value` per line.
pub struct StatsFile;

/// Sums over every type and class, for the `total.*` lines.
#[derive(Default)]
struct Totals {
    allocs: u64,
    frees: u64,
    live: u64,
    live_bytes: u64,
    kernel_allocs: u64,
    packs: u64,
    huge_packs: u64,
    fallback_packs: u64,
    overflow_extents: u64,
    overflow_pages: u64,
    backing_bytes: u64,
    pokes: u64,
    poke_bytes: u64,
}

impl ShowFile for StatsFile {
    type Shared = Allocator;

    fn show(alloc: &Arc<Allocator>, out: &mut Buf) -> Result {
        let mut t = Totals::default();
        for class in Class::ALL {
            let r = alloc.report(class);
            for ty in ExecmemType::ALL.iter().filter(|t| t.class() == class) {
                let c = r.types[*ty];
                let n = ty.name();
                Buf::result(write!(
                    out,
                    "{n}.allocs {}\n{n}.frees {}\n{n}.live {}\n{n}.live_bytes {}\n\
                     {n}.kernel_allocs {}\n",
                    c.allocs, c.frees, c.live, c.live_bytes, c.kernel_allocs
                ))?;
                t.allocs = t.allocs.wrapping_add(c.allocs);
                t.frees = t.frees.wrapping_add(c.frees);
                t.live = t.live.wrapping_add(c.live);
                t.live_bytes = t.live_bytes.wrapping_add(c.live_bytes);
                t.kernel_allocs = t.kernel_allocs.wrapping_add(c.kernel_allocs);
            }
            let e = &r.engine;
            let packs = (e.packs + e.extents) as u64;
            let n = class.name();
            Buf::result(write!(
                out,
                "{n}.packs {packs}\n{n}.huge_packs {}\n{n}.fallback_packs {}\n\
                 {n}.overflow_extents {}\n{n}.overflow_pages {}\n\
                 {n}.backing_bytes {}\n{n}.pending {}\n{n}.pokes {}\n\
                 {n}.poke_bytes {}\n{n}.refill_pokes {}\n{n}.refill_max_ns {}\n",
                r.huge_packs,
                r.fallback_packs,
                e.overflow,
                e.overflow_pages,
                e.backing,
                r.pending,
                r.pokes,
                r.poke_bytes,
                r.refill_pokes,
                r.refill_max_ns,
            ))?;
            t.packs = t.packs.wrapping_add(packs);
            t.huge_packs = t.huge_packs.wrapping_add(r.huge_packs);
            t.fallback_packs = t.fallback_packs.wrapping_add(r.fallback_packs);
            t.overflow_extents = t.overflow_extents.wrapping_add(e.overflow as u64);
            t.overflow_pages = t.overflow_pages.wrapping_add(e.overflow_pages as u64);
            t.backing_bytes = t.backing_bytes.wrapping_add(e.backing as u64);
            t.pokes = t.pokes.wrapping_add(r.pokes);
            t.poke_bytes = t.poke_bytes.wrapping_add(r.poke_bytes);
        }
        Buf::result(write!(
            out,
            "total.allocs {}\ntotal.frees {}\ntotal.live {}\ntotal.live_bytes {}\n\
             total.kernel_allocs {}\ntotal.packs {}\ntotal.huge_packs {}\n\
             total.fallback_packs {}\ntotal.overflow_extents {}\ntotal.overflow_pages {}\n\
             total.backing_bytes {}\ntotal.mapped_bytes {}\ntotal.pokes {}\n\
             total.poke_bytes {}\n",
            t.allocs,
            t.frees,
            t.live,
            t.live_bytes,
            t.kernel_allocs,
            t.packs,
            t.huge_packs,
            t.fallback_packs,
            t.overflow_extents,
            t.overflow_pages,
            t.backing_bytes,
            alloc.mapped_bytes(),
            t.pokes,
            t.poke_bytes,
        ))
    }
}
