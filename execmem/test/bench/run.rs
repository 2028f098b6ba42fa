// SPDX-License-Identifier: GPL-2.0

//! One run of the bench: each step timed and its pokes counted, the
//! footprint and direct-map splits, the phases, and the table.

use super::subject::{Live, Subject};
use super::workload::{Op, Req};
use crate::execmem::backend::arch::direct_map_splits;
use crate::execmem::backend::arch::{ret_imm32, RET_IMM32_LEN};
use crate::execmem::backend::sched::now_ns;
use crate::execmem::binpack::types::{Class, PerClass};
use crate::execmem::debugfs::buf::Buf;
use core::fmt::Write;
use kernel::prelude::*;

/// Timings of one operation, and the most pokes one call of it made.
pub(super) struct Samples {
    pub(super) ns: KVVec<u64>,
    pub(super) max_pokes: u64,
    pub(super) max_poke_bytes: u64,
    /// Calls that made any poke.
    pub(super) poked: u64,
}

impl Samples {
    pub(super) fn new() -> Self {
        Samples {
            ns: KVVec::new(),
            max_pokes: 0,
            max_poke_bytes: 0,
            poked: 0,
        }
    }

    /// One call: `ns` long, `pokes` text_pokes of `bytes` bytes.
    pub(super) fn push(&mut self, ns: u64, (pokes, bytes): (u64, u64)) -> Result {
        self.ns.push(ns, GFP_KERNEL)?;
        self.max_pokes = self.max_pokes.max(pokes);
        self.max_poke_bytes = self.max_poke_bytes.max(bytes);
        self.poked += u64::from(pokes != 0);
        Ok(())
    }

    /// (count, p50, p99)
    pub(super) fn summary(&mut self) -> (usize, u64, u64) {
        let v = self.ns.as_mut_slice();
        v.sort_unstable();
        let n = v.len();
        let at = |q: usize| v.get(n.saturating_mul(q) / 100).copied().unwrap_or(0);
        (n, at(50), at(99))
    }
}

/// Direct-map splits (level 2, level 3) since a start.
#[derive(Clone, Copy, Default)]
pub(super) struct Splits(pub(super) u64, pub(super) u64);

impl Splits {
    pub(super) fn since(start: (u64, u64)) -> Self {
        let (l2, l3) = direct_map_splits();
        Splits(l2.saturating_sub(start.0), l3.saturating_sub(start.1))
    }
}

/// What one allocator did in one run.
pub(super) struct Run {
    pub(super) name: &'static str,
    pub(super) alloc: Samples,
    pub(super) write: Samples,
    pub(super) free: Samples,
    pub(super) alloc_free: Samples,
    pub(super) alloc_write_free: Samples,
    pub(super) pages: u64,
    pub(super) packs: u64,
    pub(super) ptes: u64,
    pub(super) fallback_packs: u64,
    pub(super) overflow_pages: u64,
    pub(super) after_alloc: Splits,
    pub(super) after_free: Splits,
    pub(super) after_release: Splits,
    /// Per phase: requested and mapped bytes per class at its end.
    pub(super) phases: KVec<(u32, PerClass<u64>, PerClass<u64>)>,
}

impl Run {
    pub(super) fn new(name: &'static str) -> Self {
        Run {
            name,
            alloc: Samples::new(),
            write: Samples::new(),
            free: Samples::new(),
            alloc_free: Samples::new(),
            alloc_write_free: Samples::new(),
            pages: 0,
            packs: 0,
            ptes: 0,
            fallback_packs: 0,
            overflow_pages: 0,
            after_alloc: Splits::default(),
            after_free: Splits::default(),
            after_release: Splits::default(),
            phases: KVec::new(),
        }
    }

    pub(super) fn show(&mut self, out: &mut Buf) -> Result {
        let name = self.name;
        for (op, s) in [
            ("alloc", &mut self.alloc),
            ("write", &mut self.write),
            ("free", &mut self.free),
            ("alloc+free", &mut self.alloc_free),
            ("alloc+write+free", &mut self.alloc_write_free),
        ] {
            let (n, p50, p99) = s.summary();
            if n != 0 {
                Buf::result(writeln!(
                    out,
                    "{name:<10} {op:<17} {n:>7} {p50:>10} {p99:>10} {:>9} {:>10} {:>7}",
                    s.max_pokes, s.max_poke_bytes, s.poked
                ))?;
            }
        }
        Ok(())
    }

    pub(super) fn footprint(&self, out: &mut Buf) -> Result {
        let s = |x: Splits| (x.0, x.1);
        Buf::result(writeln!(
            out,
            "{:<10} pages={} packs={} ptes={} fallback_packs={} overflow_pages={} \
             direct_map_level2_splits={} splits_after_alloc={:?} splits_after_free={:?} \
             splits_after_release={:?}",
            self.name,
            self.pages,
            self.packs,
            self.ptes,
            self.fallback_packs,
            self.overflow_pages,
            self.after_release.0,
            s(self.after_alloc),
            s(self.after_free),
            s(self.after_release),
        ))
    }
}

pub(super) fn payload(r: Req) -> ([u8; 64], usize) {
    let mut buf = [0x90u8; 64];
    if let Some(head) = buf.get_mut(..RET_IMM32_LEN) {
        head.copy_from_slice(&ret_imm32(42));
    }
    (buf, r.size.min(64))
}

/// Pokes made between `before` and now.
pub(super) fn delta(before: (u64, u64), now: (u64, u64)) -> (u64, u64) {
    (
        now.0.saturating_sub(before.0),
        now.1.saturating_sub(before.1),
    )
}

/// Frees `l`, timing the free and counting its pokes.
pub(super) fn free_one<S: Subject>(
    s: &S,
    l: Live<S::Handle>,
    write: bool,
    run: &mut Run,
) -> Result {
    let p0 = s.pokes();
    let t0 = now_ns();
    drop(l.h);
    let f = now_ns().saturating_sub(t0);
    let pokes = delta(p0, s.pokes());
    run.free.push(f, pokes)?;
    let total = if write {
        &mut run.alloc_write_free
    } else {
        &mut run.alloc_free
    };
    total.push(
        l.ns.saturating_add(f),
        (l.pokes.0 + pokes.0, l.pokes.1 + pokes.1),
    )
}

/// Runs the workload's steps (timing each allocation, write and free and
/// counting its pokes; at each phase's end, the bytes requested and mapped
/// per class), then frees what is still live, then releases what is kept.
pub(super) fn measure<S: Subject>(s: &S, ops: &[Op], write: bool, run: &mut Run) -> Result {
    let allocs = ops.iter().filter(|o| matches!(o, Op::Alloc(_))).count();
    let mut live: KVVec<Option<Live<S::Handle>>> = KVVec::with_capacity(allocs, GFP_KERNEL)?;
    // What earlier users left kept (parked ranges, spare packs) is given
    // back first, so that it is neither counted nor reused by this run.
    s.release();
    let start = direct_map_splits();
    let mut base = PerClass::<u64>::default();
    for c in Class::ALL {
        base[c] = s.backing(&[], c);
    }
    let mut requested = PerClass::<u64>::default();
    for &op in ops {
        match op {
            Op::Alloc(r) => {
                let p0 = s.pokes();
                let t0 = now_ns();
                let mut h = s.alloc(r)?;
                let t1 = now_ns();
                let p1 = s.pokes();
                let mut w = 0;
                if write {
                    let (buf, n) = payload(r);
                    s.write(&mut h, buf.get(..n).unwrap_or(&[]))?;
                    w = now_ns().saturating_sub(t1);
                    run.write.push(w, delta(p1, s.pokes()))?;
                }
                run.alloc.push(t1.saturating_sub(t0), delta(p0, p1))?;
                let c = r.ty.class();
                requested[c] = requested[c].saturating_add(r.size as u64);
                let l = Live {
                    h,
                    req: r,
                    ns: t1.saturating_sub(t0).saturating_add(w),
                    pokes: delta(p0, s.pokes()),
                };
                live.push(Some(l), GFP_KERNEL)?;
            }
            Op::Free(i) => {
                // `requests` frees only what an earlier step allocated.
                let l = live.get_mut(i).and_then(Option::take).ok_or(EINVAL)?;
                let c = l.req.ty.class();
                requested[c] = requested[c].saturating_sub(l.req.size as u64);
                free_one(s, l, write, run)?;
                s.settle();
            }
            Op::Phase(p) => {
                let mut backing = PerClass::<u64>::default();
                for c in Class::ALL {
                    backing[c] = s.backing(live.as_slice(), c).saturating_sub(base[c]);
                }
                run.phases.push((p, requested, backing), GFP_KERNEL)?;
            }
        }
    }
    s.footprint(live.as_slice(), run);
    run.after_alloc = Splits::since(start);
    for l in live.into_iter().flatten() {
        free_one(s, l, write, run)?;
    }
    run.after_free = Splits::since(start);
    s.release();
    run.after_release = Splits::since(start);
    Ok(())
}

/// `phase` lines: backing/requested per class at the end of each phase,
/// both allocators side by side (their steps, so their phases, are the
/// same).
pub(super) fn phases(base: &Run, ours: &Run, out: &mut Buf) -> Result {
    let ratio = |b: u64, q: u64| {
        // Per mille, in u64: the kernel has no 128-bit division.
        let pm = b.saturating_mul(1000).checked_div(q).unwrap_or(0);
        (pm / 1000, pm % 1000)
    };
    for (&(p, req, b), &(_, _, o)) in base.phases.iter().zip(ours.phases.iter()) {
        for c in Class::ALL {
            if req[c] == 0 {
                continue;
            }
            let (bi, bf) = ratio(b[c], req[c]);
            let (oi, of) = ratio(o[c], req[c]);
            Buf::result(writeln!(
                out,
                "phase={p} class={} requested={} baseline={} ratio={bi}.{bf:03} \
                 execmem_rs={} ratio={oi}.{of:03}",
                c.name(),
                req[c],
                b[c],
                o[c]
            ))?;
        }
    }
    Ok(())
}
