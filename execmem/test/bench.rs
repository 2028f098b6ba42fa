// SPDX-License-Identifier: GPL-2.0

//! debugfs `bench`: execmem_rs against the kernel's own path, same call.
//!
//! The baseline is what the kernel does today for each allocation:
//! `execmem_alloc()` + `set_memory_rox()` (`set_memory_ro()` for rodata,
//! nothing for data) [+ `text_poke_copy()`] + `execmem_free()`. execmem_rs
//! does `alloc` [+ `write`] + drop. Both run the same workload in one write
//! to the file; the table is the reply and what the file reads back.
//!
//! Write one of:
//!
//! ```text
//! run workload=fixed n=N [size=N] [write=0|1]   n x size B of text (512)
//! run workload=trace [n=N] [write=0|1]          the module trace, first n modules
//! run workload=real [n=N] [rounds=R] [seed=S] [write=0|1]
//!                                               the module-trace replay, first n modules
//! run workload=bpf n=N [write=0|1]              BPF-like sizes, n allocations
//! trace add SIZES... ALIGNS...                  append one module to the trace
//! trace clear
//! ```
//!
//! `trace add` takes the 12 numeric columns of a row of
//! `data/modules-6.12.117.tsv` (a [`Module`]). `workload=trace` allocates
//! the core sections of the first n modules; `workload=real` replays them
//! as the host benchmark does ([`ModuleChurn`], the same shared code):
//! load every module in a random order (its init sections allocated, then
//! freed), then `rounds` (5) rounds of unloading and reloading a random
//! 30 %, with seed `seed` (0), and reports backing/requested per class at
//! the end of each phase for both allocators.
//!
//! Each allocator runs the workload's steps (timing each allocation, each
//! write and each free; after a free inside the workload execmem_rs's
//! parked ranges are refilled, untimed, so that the refill worker's timing
//! does not change where later allocations land), then frees what is still live, then gives back
//! what it keeps (execmem_rs: parked ranges and spare packs); without
//! frees in the workload the footprint is the whole workload's. The run
//! assumes nothing else allocates from execmem_rs meanwhile (its backing
//! is measured from the run's start). execmem_rs runs first, on a
//! direct map the baseline has not split yet. Reported per allocator and
//! operation: count, p50/p99 ns, and the largest number of `text_poke`
//! calls (and bytes) made inside one such call (a deterministic count:
//! TCG's tails are noisy); per allocator: pages or packs used at the peak,
//! page-table entries (one per 4 KiB page, one per 2 MiB pack), execmem_rs's
//! 4 KiB fallback packs and overflow pages (which may split the direct map
//! where huge packs do not), and the `direct_map_level2_splits` and
//! `level3_splits` deltas after the allocations, after the frees and after
//! the release.

use crate::execmem::allocator::{Allocator, Any, Requester};
use crate::execmem::backend::arch::ret_imm32;
use crate::execmem::backend::debugfs::{Failure, FileOps};
use crate::execmem::backend::mem::{
    direct_map_splits, Area, ExecmemKind, Perms, PAGE_SIZE, PMD_SIZE,
};
use crate::execmem::backend::sched::now_ns;
use crate::execmem::binpack::types::{Class, ExecmemType, PerClass, MAX_ALLOC};
use crate::execmem::binpack::workload::{
    bpf_size, Module, ModuleChurn, Rng, Step, BPF_SEED, MODULE_COLUMNS,
};
use crate::execmem::debugfs::buf::Buf;
use crate::execmem::debugfs::parse::{out_of_memory, parse_num};
use core::fmt::Write;
use kernel::{new_mutex, prelude::*, sync::Arc, sync::Mutex};

/// Most allocations one run makes, and most modules in the trace.
const MAX_N: usize = 100_000;
/// Most churn rounds of `workload=real`.
const MAX_ROUNDS: u32 = 20;

/// State of the `bench` file: the allocator, the trace, the last table.
#[pin_data]
pub struct BenchState {
    alloc: Arc<Allocator>,
    #[pin]
    inner: Mutex<Inner>,
}

struct Inner {
    trace: KVVec<Module>,
    last: Buf,
}

impl BenchState {
    /// New state for `alloc`.
    pub fn new(alloc: &Arc<Allocator>) -> Result<Arc<Self>> {
        Arc::pin_init(
            pin_init!(BenchState {
                alloc: alloc.clone(),
                inner <- new_mutex!(Inner { trace: KVVec::new(), last: Buf::new() }),
            }),
            GFP_KERNEL,
        )
    }
}

/// Timings of one operation, and the most pokes one call of it made.
struct Samples {
    ns: KVVec<u64>,
    max_pokes: u64,
    max_poke_bytes: u64,
    /// Calls that made any poke.
    poked: u64,
}

impl Samples {
    fn new() -> Self {
        Samples {
            ns: KVVec::new(),
            max_pokes: 0,
            max_poke_bytes: 0,
            poked: 0,
        }
    }

    /// One call: `ns` long, `pokes` text_pokes of `bytes` bytes.
    fn push(&mut self, ns: u64, (pokes, bytes): (u64, u64)) -> Result {
        self.ns.push(ns, GFP_KERNEL)?;
        self.max_pokes = self.max_pokes.max(pokes);
        self.max_poke_bytes = self.max_poke_bytes.max(bytes);
        self.poked += u64::from(pokes != 0);
        Ok(())
    }

    /// (count, p50, p99)
    fn summary(&mut self) -> (usize, u64, u64) {
        let v = self.ns.as_mut_slice();
        v.sort_unstable();
        let n = v.len();
        let at = |q: usize| v.get(n.saturating_mul(q) / 100).copied().unwrap_or(0);
        (n, at(50), at(99))
    }
}

/// Direct-map splits (level 2, level 3) since a start.
#[derive(Clone, Copy, Default)]
struct Splits(u64, u64);

impl Splits {
    fn since(start: (u64, u64)) -> Self {
        let (l2, l3) = direct_map_splits();
        Splits(l2.saturating_sub(start.0), l3.saturating_sub(start.1))
    }
}

/// What one allocator did in one run.
struct Run {
    name: &'static str,
    alloc: Samples,
    write: Samples,
    free: Samples,
    alloc_free: Samples,
    alloc_write_free: Samples,
    pages: u64,
    packs: u64,
    ptes: u64,
    fallback_packs: u64,
    overflow_pages: u64,
    after_alloc: Splits,
    after_free: Splits,
    after_release: Splits,
    /// Per phase: requested and mapped bytes per class at its end.
    phases: KVec<(u32, PerClass<u64>, PerClass<u64>)>,
}

impl Run {
    fn new(name: &'static str) -> Self {
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

    fn show(&mut self, out: &mut Buf) -> Result {
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

    fn footprint(&self, out: &mut Buf) -> Result {
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

/// One allocation request of a workload.
#[derive(Clone, Copy)]
struct Req {
    ty: ExecmemType,
    size: usize,
    align: Option<usize>,
}

/// One step of a workload.
#[derive(Clone, Copy)]
enum Op {
    Alloc(Req),
    /// Free what the `n`th [`Op::Alloc`] of the workload allocated.
    Free(usize),
    /// A phase of the module-trace replay ended ([`Step::Phase`]).
    Phase(u32),
}

/// A live allocation of a run: its handle, request, time and pokes of its
/// allocation (and write).
struct Live<H> {
    h: H,
    req: Req,
    ns: u64,
    pokes: (u64, u64),
}

fn payload(r: Req) -> ([u8; 64], usize) {
    let mut buf = [0x90u8; 64];
    if let Some(head) = buf.get_mut(..10) {
        head.copy_from_slice(&ret_imm32(42));
    }
    (buf, r.size.min(64))
}

/// One allocator under test.
trait Subject {
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
struct Baseline {
    pokes: core::cell::Cell<(u64, u64)>,
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

/// Pokes made between `before` and now.
fn delta(before: (u64, u64), now: (u64, u64)) -> (u64, u64) {
    (
        now.0.saturating_sub(before.0),
        now.1.saturating_sub(before.1),
    )
}

/// Frees `l`, timing the free and counting its pokes.
fn free_one<S: Subject>(s: &S, l: Live<S::Handle>, write: bool, run: &mut Run) -> Result {
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
fn measure<S: Subject>(s: &S, ops: &[Op], write: bool, run: &mut Run) -> Result {
    let allocs = ops.iter().filter(|o| matches!(o, Op::Alloc(_))).count();
    let mut live: KVVec<Option<Live<S::Handle>>> = KVVec::with_capacity(allocs, GFP_KERNEL)?;
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

/// Workloads, in `workload=` order.
const WORKLOADS: [&str; 4] = ["fixed", "trace", "bpf", "real"];

struct Args {
    /// Index into [`WORKLOADS`].
    workload: usize,
    n: usize,
    size: usize,
    write: bool,
    rounds: u32,
    seed: u64,
}

fn parse_run(words: &[&[u8]]) -> core::result::Result<Args, Failure> {
    let bad = |r| Failure::new(EINVAL, r);
    let mut a = Args {
        workload: 0,
        n: 1000,
        size: 512,
        write: false,
        rounds: 5,
        seed: 0,
    };
    for w in words {
        let eq = w
            .iter()
            .position(|&c| c == b'=')
            .ok_or(bad("expected key=value"))?;
        let (k, v) = (w.get(..eq).unwrap_or(&[]), w.get(eq + 1..).unwrap_or(&[]));
        match k {
            b"workload" => {
                a.workload = WORKLOADS
                    .iter()
                    .position(|w| w.as_bytes() == v)
                    .ok_or(bad("workload must be fixed, trace, bpf or real"))?
            }
            b"n" => {
                a.n = usize::try_from(parse_num(v)?)
                    .ok()
                    .filter(|n| (1..=MAX_N).contains(n))
                    .ok_or(bad("n must be 1..100000"))?
            }
            b"size" => {
                a.size = usize::try_from(parse_num(v)?)
                    .ok()
                    .filter(|s| (1..=MAX_ALLOC).contains(s))
                    .ok_or(bad("size must be 1..64 MiB"))?
            }
            b"write" => a.write = parse_num(v)? != 0,
            b"rounds" => {
                a.rounds = u32::try_from(parse_num(v)?)
                    .ok()
                    .filter(|r| *r <= MAX_ROUNDS)
                    .ok_or(bad("rounds must be 0..20"))?
            }
            b"seed" => a.seed = parse_num(v)?,
            _ => return Err(bad("unknown parameter")),
        }
    }
    Ok(a)
}

/// Appends `op`, refusing workloads above [`MAX_N`] steps.
fn push(ops: &mut KVVec<Op>, op: Op) -> core::result::Result<(), Failure> {
    if ops.len() >= MAX_N.saturating_mul(2) {
        return Err(Failure::new(E2BIG, "workload above 200000 steps"));
    }
    ops.push(op, GFP_KERNEL).map_err(out_of_memory)
}

/// The steps of workload `a` (the module workloads over `trace`).
fn requests(a: &Args, trace: &[Module]) -> core::result::Result<KVVec<Op>, Failure> {
    let mut v = KVVec::new();
    let req = |(ty, size, align)| {
        Op::Alloc(Req {
            ty,
            size,
            align: Some(align),
        })
    };
    match WORKLOADS.get(a.workload).copied() {
        Some("fixed") => {
            for _ in 0..a.n {
                let r = Req {
                    ty: ExecmemType::Text,
                    size: a.size,
                    align: None,
                };
                push(&mut v, Op::Alloc(r))?;
            }
        }
        Some("trace") => {
            for m in trace.iter().take(a.n) {
                for sec in m.sections(false) {
                    push(&mut v, req(sec))?;
                }
            }
        }
        Some("real") => {
            let mods = trace.get(..a.n).unwrap_or(trace);
            let mut order = KVVec::with_capacity(mods.len(), GFP_KERNEL).map_err(out_of_memory)?;
            // Each module's core allocations: the index of the first, and
            // how many.
            let mut core = KVVec::with_capacity(mods.len(), GFP_KERNEL).map_err(out_of_memory)?;
            for _ in mods {
                order.push(0u32, GFP_KERNEL).map_err(out_of_memory)?;
                core.push((0usize, 0usize), GFP_KERNEL)
                    .map_err(out_of_memory)?;
            }
            let churn = ModuleChurn::new(order.as_mut_slice(), a.seed, a.rounds)
                .ok_or(Failure::new(E2BIG, "too many modules"))?;
            let mut allocs = 0usize;
            for step in churn {
                match step {
                    Step::Load(m) => {
                        let (Some(module), Some(slot)) = (mods.get(m), core.get_mut(m)) else {
                            continue;
                        };
                        let first = allocs;
                        for sec in module.sections(false) {
                            push(&mut v, req(sec))?;
                            allocs = allocs.saturating_add(1);
                        }
                        *slot = (first, allocs.saturating_sub(first));
                        let init = allocs;
                        for sec in module.sections(true) {
                            push(&mut v, req(sec))?;
                            allocs = allocs.saturating_add(1);
                        }
                        for i in init..allocs {
                            push(&mut v, Op::Free(i))?;
                        }
                    }
                    Step::Unload(m) => {
                        let (first, n) = core.get(m).copied().unwrap_or((0, 0));
                        for i in first..first.saturating_add(n) {
                            push(&mut v, Op::Free(i))?;
                        }
                    }
                    Step::Phase(p) => push(&mut v, Op::Phase(p))?,
                }
            }
        }
        _ => {
            let mut rng = Rng::new(BPF_SEED);
            for _ in 0..a.n {
                let r = Req {
                    ty: ExecmemType::Bpf,
                    size: bpf_size(&mut rng),
                    align: None,
                };
                push(&mut v, Op::Alloc(r))?;
            }
        }
    }
    Ok(v)
}

/// `phase` lines: backing/requested per class at the end of each phase,
/// both allocators side by side (their steps, so their phases, are the
/// same).
fn phases(base: &Run, ours: &Run, out: &mut Buf) -> Result {
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

/// `bench`: write a command, read the table.
pub struct Bench(Arc<BenchState>);

impl FileOps for Bench {
    type Shared = BenchState;

    fn open(shared: &Arc<BenchState>) -> Result<Self> {
        Ok(Bench(shared.clone()))
    }

    fn show(&self, out: &mut Buf) -> Result {
        out.push(self.0.inner.lock().last.as_bytes())
    }

    fn command(&self, input: &[u8], out: &mut Buf) -> core::result::Result<(), Failure> {
        let bad = |r| Failure::new(EINVAL, r);
        let mut words: KVec<&[u8]> = KVec::new();
        for w in input
            .split(|c| c.is_ascii_whitespace())
            .filter(|w| !w.is_empty())
        {
            words.push(w, GFP_KERNEL).map_err(out_of_memory)?;
        }
        let mut inner = self.0.inner.lock();
        match words.as_slice() {
            [b"trace", b"clear"] => {
                inner.trace = KVVec::new();
                out.push(b"ok\n").map_err(out_of_memory)
            }
            [b"trace", b"add", cols @ ..] => {
                let mut nums = [0u64; MODULE_COLUMNS];
                if cols.len() != MODULE_COLUMNS {
                    return Err(bad("trace add takes 6 sizes and 6 alignments"));
                }
                for (d, c) in nums.iter_mut().zip(cols.iter()) {
                    *d = parse_num(c)?;
                }
                let m = Module::from_columns(&nums).map_err(bad)?;
                if inner.trace.len() >= MAX_N {
                    // A run refuses more than MAX_N allocations anyway.
                    return Err(Failure::new(E2BIG, "trace above 100000 modules"));
                }
                inner.trace.push(m, GFP_KERNEL).map_err(out_of_memory)?;
                out.push(b"ok\n").map_err(out_of_memory)
            }
            [b"run", rest @ ..] => {
                let a = parse_run(rest)?;
                if matches!(a.workload, 1 | 3) && inner.trace.is_empty() {
                    return Err(bad("no trace loaded (trace add ...)"));
                }
                let reqs = requests(&a, inner.trace.as_slice())?;
                let allocs = reqs.iter().filter(|o| matches!(o, Op::Alloc(_))).count();
                if allocs > MAX_N {
                    return Err(Failure::new(E2BIG, "workload above 100000 allocations"));
                }
                let (mut base, mut ours) = (Run::new("baseline"), Run::new("execmem_rs"));
                let fail = |e| Failure::new(e, "a run failed (see dmesg)");
                // execmem_rs first: on a direct map the baseline has not split.
                measure(&self.0.alloc, reqs.as_slice(), a.write, &mut ours).map_err(fail)?;
                let baseline = Baseline {
                    pokes: core::cell::Cell::new((0, 0)),
                };
                measure(&baseline, reqs.as_slice(), a.write, &mut base).map_err(fail)?;
                let mut t = Buf::new();
                let wl = WORKLOADS.get(a.workload).copied().unwrap_or("?");
                let hdr = writeln!(
                    t,
                    "workload={wl} allocations={allocs} write={}\n\
                     {:<10} {:<17} {:>7} {:>10} {:>10} {:>9} {:>10} {:>7}",
                    u8::from(a.write),
                    "allocator",
                    "op",
                    "count",
                    "p50_ns",
                    "p99_ns",
                    "max_pokes",
                    "max_bytes",
                    "poked"
                );
                Buf::result(hdr)
                    .and_then(|()| base.show(&mut t))
                    .and_then(|()| ours.show(&mut t))
                    .and_then(|()| base.footprint(&mut t))
                    .and_then(|()| ours.footprint(&mut t))
                    .and_then(|()| phases(&base, &ours, &mut t))
                    .map_err(out_of_memory)?;
                out.push(t.as_bytes()).map_err(out_of_memory)?;
                inner.last = t;
                Ok(())
            }
            _ => Err(bad(
                "usage: run workload=fixed|trace|bpf|real ... | trace add SIZES ALIGNS | trace clear",
            )),
        }
    }
}
