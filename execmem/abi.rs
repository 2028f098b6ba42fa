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
//!
//! No file prints a kernel address: packs are numbered, allocations are
//! placed by pack number and offset. Documentation/execmem_rs.rst describes
//! every file exactly as here.
//!
//! [`ctl`]: crate::execmem::ctl
//! [`stress`]: crate::execmem::stress
//! [`bench`]: crate::execmem::bench

use crate::execmem::allocator::Allocator;
use crate::execmem::backend::debugfs::{Dir, File, FileOps};
use crate::execmem::bench::{Bench, BenchState};
use crate::execmem::core_engine::types::{Class, ExecmemType};
use crate::execmem::ctl::Session;
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
    _dir: Dir,
}

impl Files {
    /// Creates the directory and every file.
    pub fn new(module: &'static ThisModule, alloc: &Arc<Allocator>) -> Result<Self> {
        let dir = Dir::new(c_str!("execmem_rs"))?;
        Ok(Files {
            _types: dir.file(c_str!("types"), 0o400, alloc.clone(), module)?,
            _ctl: dir.file(c_str!("ctl"), 0o600, alloc.clone(), module)?,
            _stats: dir.file(c_str!("stats"), 0o400, alloc.clone(), module)?,
            _packs: dir.file(c_str!("packs"), 0o400, alloc.clone(), module)?,
            _selftest: dir.file(c_str!("selftest"), 0o400, alloc.clone(), module)?,
            _stress: dir.file(c_str!("stress"), 0o600, StressState::new(alloc)?, module)?,
            _bench: dir.file(c_str!("bench"), 0o600, BenchState::new(alloc)?, module)?,
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

    fn show(&mut self, out: &mut Text) -> Result {
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

impl FileOps for Stats {
    type Shared = Allocator;

    fn open(shared: &Arc<Allocator>) -> Result<Self> {
        Ok(Stats(shared.clone()))
    }

    fn show(&mut self, out: &mut Text) -> Result {
        let mut total = [0u64; 12];
        for class in Class::ALL {
            let r = self.0.report(class);
            for ty in ExecmemType::ALL.iter().filter(|t| t.class() == class) {
                let c = r.types.get(ty.index()).copied().unwrap_or_default();
                let n = ty.name();
                Text::result(write!(
                    out,
                    "{n}.allocs {}\n{n}.frees {}\n{n}.live {}\n{n}.live_bytes {}\n",
                    c.allocs, c.frees, c.live, c.live_bytes
                ))?;
                for (t, v) in total
                    .iter_mut()
                    .zip([c.allocs, c.frees, c.live, c.live_bytes])
                {
                    *t = t.wrapping_add(v);
                }
            }
            let e = &r.engine;
            let class_vals = [
                e.packs as u64 + e.extents as u64,
                r.huge_packs,
                r.fallback_packs,
                e.overflow as u64,
                e.overflow_pages as u64,
                e.backing as u64,
                r.pokes,
                r.poke_bytes,
            ];
            let n = class.name();
            let [packs, huge, fallback, over, over_pages, backing, pokes, poke_bytes] = class_vals;
            Text::result(write!(
                out,
                "{n}.packs {packs}\n{n}.huge_packs {huge}\n{n}.fallback_packs {fallback}\n\
                 {n}.overflow_extents {over}\n{n}.overflow_pages {over_pages}\n\
                 {n}.backing_bytes {backing}\n{n}.pending {}\n{n}.pokes {pokes}\n\
                 {n}.poke_bytes {poke_bytes}\n",
                r.pending
            ))?;
            for (t, v) in total.iter_mut().skip(4).zip(class_vals) {
                *t = t.wrapping_add(v);
            }
        }
        let [allocs, frees, live, live_bytes, packs, huge, fallback, over, over_pages, backing, pokes, poke_bytes] =
            total;
        Text::result(write!(
            out,
            "total.allocs {allocs}\ntotal.frees {frees}\ntotal.live {live}\n\
             total.live_bytes {live_bytes}\ntotal.packs {packs}\ntotal.huge_packs {huge}\n\
             total.fallback_packs {fallback}\ntotal.overflow_extents {over}\n\
             total.overflow_pages {over_pages}\ntotal.backing_bytes {backing}\n\
             total.pokes {pokes}\ntotal.poke_bytes {poke_bytes}\n"
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

    fn show(&mut self, out: &mut Text) -> Result {
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

    fn show(&mut self, out: &mut Text) -> Result {
        let failed = selftest::run(&self.0, out)?;
        if failed != 0 {
            pr_err!("selftest: {failed} check(s) failed\n");
        }
        Ok(())
    }
}
