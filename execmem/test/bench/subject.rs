// SPDX-License-Identifier: GPL-2.0

//! The allocators under test: the kernel's own path (one execmem area per
//! allocation) and execmem_rs, behind one trait.

use super::run::Run;
use super::workload::Req;
use crate::execmem::allocator::{Allocator, Any, Requester};
use crate::execmem::backend::mem::{Area, ExecmemKind, Perms, PAGE_SIZE, PMD_SIZE};
use crate::execmem::binpack::types::{Class, ExecmemType};
use kernel::{prelude::*, sync::Arc};

/// A live allocation of a run: its handle, request, time and pokes of its
/// allocation (and write).
pub(super) struct Live<H> {
    pub(super) h: H,
    pub(super) req: Req,
    pub(super) ns: u64,
    pub(super) pokes: (u64, u64),
}

/// One allocator under test.
pub(super) trait Subject {
    type Handle;
    /// Pokes made on the caller's path so far, over every class.
    fn pokes(&self) -> (u64, u64);
    fn alloc(&self, r: Req) -> Result<Self::Handle>;
    fn write(&self, h: &mut Self::Handle, data: &[u8]) -> Result;
    /// Pages, packs and page-table entries of what is live.
    fn footprint(&self, live: &[Option<Live<Self::Handle>>], run: &mut Run);
    /// Bytes mapped for `class` (with `live` live).
    fn backing(&self, live: &[Option<Live<Self::Handle>>], class: Class) -> u64;
    /// After the last free: give back what is kept.
    fn release(&self) {}
    /// After a free inside the workload (untimed): finish what the free
    /// left pending, so that the next step sees the freed range.
    fn settle(&self) {}
}

/// The kernel's path: one execmem area per allocation.
pub(super) struct Baseline {
    pub(super) pokes: core::cell::Cell<(u64, u64)>,
}

impl Subject for Baseline {
    type Handle = Area;

    fn pokes(&self) -> (u64, u64) {
        self.pokes.get()
    }

    fn alloc(&self, r: Req) -> Result<Area> {
        let kind = match r.ty.class() {
            Class::Rx => ExecmemKind::ModuleText,
            _ => ExecmemKind::ModuleData,
        };
        let mut a = Area::execmem(kind, r.size)?;
        match r.ty.class() {
            Class::Rx => a.protect(Perms::ReadExec)?,
            Class::Ro if r.ty == ExecmemType::Rodata => a.protect(Perms::ReadOnly)?,
            _ => {}
        }
        Ok(a)
    }

    fn write(&self, h: &mut Area, data: &[u8]) -> Result {
        let poke = h.perms() != Perms::ReadWrite;
        h.window()?.write(0, data)?;
        if poke {
            let (n, b) = self.pokes.get();
            self.pokes.set((n + 1, b + data.len() as u64));
        }
        Ok(())
    }

    fn footprint(&self, live: &[Option<Live<Area>>], run: &mut Run) {
        run.pages = live
            .iter()
            .flatten()
            .map(|l| (l.h.size() / PAGE_SIZE) as u64)
            .sum();
        run.ptes = run.pages;
    }

    fn backing(&self, live: &[Option<Live<Area>>], class: Class) -> u64 {
        live.iter()
            .flatten()
            .filter(|l| l.req.ty.class() == class)
            .map(|l| l.h.size() as u64)
            .sum()
    }
}

impl Subject for Arc<Allocator> {
    type Handle = Any;

    fn pokes(&self) -> (u64, u64) {
        Class::ALL.into_iter().fold((0, 0), |(n, b), c| {
            let (cn, cb) = self.caller_pokes(c);
            (n + cn, b + cb)
        })
    }

    fn alloc(&self, r: Req) -> Result<Any> {
        Ok(Allocator::alloc(
            self,
            r.ty,
            r.size,
            r.align,
            Requester::User,
        )?)
    }

    fn write(&self, h: &mut Any, data: &[u8]) -> Result {
        Ok(h.write(0, data)?)
    }

    fn backing(&self, _: &[Option<Live<Any>>], class: Class) -> u64 {
        // Freed ranges parked for the refill worker count as used until it
        // has run: run it now.
        self.flush();
        self.report(class).engine.backing as u64
    }

    fn footprint(&self, _: &[Option<Live<Any>>], run: &mut Run) {
        for class in Class::ALL {
            run.fallback_packs += self.report(class).fallback_packs;
            let _ = self.for_each_pack(class, |p| {
                if p.info.pages != 0 {
                    // An overflow extent: its own 4 KiB pages, one PTE each.
                    run.pages += p.info.pages as u64;
                    run.ptes += p.info.pages as u64;
                    run.overflow_pages += p.info.pages as u64;
                    return Ok(());
                }
                let units = p.info.npacks as u64;
                run.packs += 1;
                run.pages += units * (PMD_SIZE / PAGE_SIZE) as u64;
                // One PMD entry per 2 MiB, or 512 PTEs where it fell back.
                run.ptes += if p.huge {
                    units
                } else {
                    units * (PMD_SIZE / PAGE_SIZE) as u64
                };
                Ok(())
            });
        }
    }

    fn settle(&self) {
        // The refill worker's timing must not decide where later steps
        // land: the replay then places every allocation as the host's does.
        self.flush();
    }

    fn release(&self) {
        // Parked ranges refilled, spare packs unmapped, released packs
        // restored and vfree()d: nothing of the run is left mapped.
        self.trim();
    }
}
