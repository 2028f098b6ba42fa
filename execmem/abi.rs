// SPDX-License-Identifier: GPL-2.0

//! The debugfs ABI: `/sys/kernel/debug/execmem_rs/` and its files.
//!
//! | file       | mode | what                                                   |
//! |------------|------|--------------------------------------------------------|
//! | `types`    | 0400 | the type table: `name class perms align granularity fill` |
//! | `ctl`      | 0600 | command channel, one session per open file ([`ctl`])  |
//! | `stats`    | 0400 | `key value` counters per type, per class and in total  |
//! | `packs`    | 0400 | one block per pack with a 64-cell occupancy map        |
//! | `selftest` | 0400 | read: run the end-to-end probe, KTAP out               |
//! | `stress`   | 0600 | write: run the stress runner; read: its report ([`stress`]) |
//! | `bench`    | 0600 | write: run a benchmark; read: its table ([`bench`])    |
//! | `serve`    | 0600 | which kernel users are served; what they hold ([`provider`]) |
//!
//! No file prints a kernel address: packs are numbered, allocations are
//! placed by pack number and offset. Documentation/execmem_rs.rst describes
//! every file exactly as here.
//!
//! [`ctl`]: crate::execmem::ctl
//! [`stress`]: crate::execmem::stress
//! [`bench`]: crate::execmem::bench
//! [`provider`]: crate::execmem::provider

use crate::execmem::allocator::Allocator;
use crate::execmem::backend::debugfs::{Dir, File, FileOps};
use crate::execmem::bench::{Bench, BenchState};
use crate::execmem::binpack::types::{Class, ExecmemType};
use crate::execmem::ctl::Session;
use crate::execmem::provider::{Provider, ServeFile};
use crate::execmem::stress::{Stress, StressState};
use crate::execmem::{selftest, text::Text};
use core::fmt::Write;
use kernel::{c_str, prelude::*, sync::Arc, ThisModule};

/// The directory and the files in it, removed on drop.
pub struct Files {
    // Fields drop in order: files first, then their directory.
    _types: File<Types>,
    _ctl: File<Session>,
    _stats: File<Stats>,
    _packs: File<Packs>,
    _selftest: File<Selftest>,
    _stress: File<Stress>,
    _bench: File<Bench>,
    _serve: File<ServeFile>,
    _dir: Dir,
}

impl Files {
    /// Creates the directory and every file.
    pub fn new(
        module: &'static ThisModule,
        alloc: &Arc<Allocator>,
        provider: &Arc<Provider>,
    ) -> Result<Self> {
        let dir = Dir::new(c_str!("execmem_rs"))?;
        Ok(Files {
            _types: dir.file(c_str!("types"), 0o400, alloc.clone(), module)?,
            _ctl: dir.file(c_str!("ctl"), 0o600, alloc.clone(), module)?,
            _stats: dir.file(c_str!("stats"), 0o400, alloc.clone(), module)?,
            _packs: dir.file(c_str!("packs"), 0o400, alloc.clone(), module)?,
            _selftest: dir.file(c_str!("selftest"), 0o400, alloc.clone(), module)?,
            _stress: dir.file(c_str!("stress"), 0o600, StressState::new(alloc)?, module)?,
            _bench: dir.file(c_str!("bench"), 0o600, BenchState::new(alloc)?, module)?,
            _serve: dir.file(c_str!("serve"), 0o600, provider.clone(), module)?,
            _dir: dir,
        })
    }
}

/// `types`: the type table.
struct Types;

impl FileOps for Types {
    type Shared = Allocator;

    fn open(_: &Arc<Allocator>) -> Result<Self> {
        Ok(Types)
    }

    fn show(&self, out: &mut Text) -> Result {
        Text::result(writeln!(out, "name class perms align granularity fill"))?;
        for ty in ExecmemType::ALL {
            let i = ty.info();
            Text::result(writeln!(
                out,
                "{} {} {} {} {} {:#04x}",
                i.name,
                i.class.name(),
                i.class.perms(),
                i.align,
                i.granularity,
                i.fill
            ))?;
        }
        Ok(())
    }
}

/// `stats`: counters, `key value` per line.
struct Stats(Arc<Allocator>);

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

impl FileOps for Stats {
    type Shared = Allocator;

    fn open(shared: &Arc<Allocator>) -> Result<Self> {
        Ok(Stats(shared.clone()))
    }

    fn show(&self, out: &mut Text) -> Result {
        let mut t = Totals::default();
        for class in Class::ALL {
            let r = self.0.report(class);
            for ty in ExecmemType::ALL.iter().filter(|t| t.class() == class) {
                let c = r.types.get(ty.index()).copied().unwrap_or_default();
                let n = ty.name();
                Text::result(write!(
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
            Text::result(write!(
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
        Text::result(write!(
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
            self.0.mapped_bytes(),
            t.pokes,
            t.poke_bytes,
        ))
    }
}

/// `packs`: one block per pack.
struct Packs(Arc<Allocator>);

impl FileOps for Packs {
    type Shared = Allocator;

    fn open(shared: &Arc<Allocator>) -> Result<Self> {
        Ok(Packs(shared.clone()))
    }

    fn show(&self, out: &mut Text) -> Result {
        for class in Class::ALL {
            self.0.for_each_pack(class, |p| {
                let i = &p.info;
                Text::result(writeln!(
                    out,
                    "pack {}.{} class={} mapping={} size={} used={} live={} free_extents={} \
                     largest_free={}{}",
                    class.name(),
                    p.index,
                    class.name(),
                    if p.huge { "2M" } else { "4K" },
                    if i.pages != 0 {
                        i.pages * crate::execmem::backend::mem::PAGE_SIZE
                    } else {
                        i.npacks * crate::execmem::backend::mem::PMD_SIZE
                    },
                    i.used,
                    i.live,
                    i.free_extents,
                    i.largest_free,
                    if i.pages != 0 {
                        " overflow"
                    } else if i.dedicated {
                        " dedicated"
                    } else {
                        ""
                    }
                ))?;
                out.push(b"  [")?;
                out.push(&p.map)?;
                out.push(b"]\n")
            })?;
        }
        Ok(())
    }
}

/// `selftest`: each open runs the probe at its first read.
struct Selftest(Arc<Allocator>);

impl FileOps for Selftest {
    type Shared = Allocator;

    fn open(shared: &Arc<Allocator>) -> Result<Self> {
        Ok(Selftest(shared.clone()))
    }

    fn show(&self, out: &mut Text) -> Result {
        let failed = selftest::run(&self.0, out)?;
        if failed != 0 {
            pr_err!("selftest: {failed} check(s) failed\n");
        }
        Ok(())
    }
}
