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
//! run workload=bpf n=N [live=N] [write=0|1]     BPF-like churn, n allocations
//! trace add TEXT RODATA RO_AFTER_INIT DATA      append one module to the trace
//! trace clear
//! ```
//!
//! Each allocator allocates everything the workload asks for (timing each
//! allocation, and each write), then frees it (timing each free), then
//! gives back what it keeps (execmem_rs: parked ranges and spare packs), so
//! the peak footprint is the whole workload. execmem_rs runs first, on a
//! direct map the baseline has not split yet. Reported per allocator and
//! operation: count, p50/p99 ns, and the largest number of `text_poke`
//! calls (and bytes) made inside one such call (a deterministic count:
//! TCG's tails are noisy); per allocator: pages or packs used at the peak,
//! page-table entries (one per 4 KiB page, one per 2 MiB pack), execmem_rs's
//! 4 KiB fallback packs and overflow pages (which may split the direct map
//! where huge packs do not), and the `direct_map_level2_splits` and
//! `level3_splits` deltas after the allocations, after the frees and after
//! the release.

use super::x86::ret_imm32;
use crate::execmem::allocator::{Allocator, Any, Requester};
use crate::execmem::backend::debugfs::{Failure, FileOps};
use crate::execmem::backend::mem::{
    direct_map_splits, Area, ExecmemKind, Perms, PAGE_SIZE, PMD_SIZE,
};
use crate::execmem::backend::sched::now_ns;
use crate::execmem::binpack::types::{Class, ExecmemType, MAX_ALLOC};
use crate::execmem::binpack::workload::{bpf_size, Rng, BPF_SEED};
use crate::execmem::debugfs::buf::Buf;
use crate::execmem::debugfs::parse::{out_of_memory, parse_num};
use core::fmt::Write;
use kernel::{new_mutex, prelude::*, sync::Arc, sync::Mutex};

/// Most allocations one run makes.
const MAX_N: usize = 100_000;
/// Types of one module of the trace, in column order.
const TRACE_TYPES: [ExecmemType; 4] = [
    ExecmemType::Text,
    ExecmemType::Rodata,
    ExecmemType::RoAfterInit,
    ExecmemType::Data,
];

/// State of the `bench` file: the allocator, the trace, the last table.
#[pin_data]
pub struct BenchState {
    alloc: Arc<Allocator>,
    #[pin]
    inner: Mutex<Inner>,
}

struct Inner {
    trace: KVec<[u32; 4]>,
    last: Buf,
}

impl BenchState {
    /// New state for `alloc`.
    pub fn new(alloc: &Arc<Allocator>) -> Result<Arc<Self>> {
        Arc::pin_init(
            pin_init!(BenchState {
                alloc: alloc.clone(),
                inner <- new_mutex!(Inner { trace: KVec::new(), last: Buf::new() }),
            }),
            GFP_KERNEL,
        )
    }
}

/// Timings of one operation, and the most pokes one call of it made.
struct Samples {
    ns: KVec<u64>,
    max_pokes: u64,
    max_poke_bytes: u64,
    /// Calls that made any poke.
    poked: u64,
}

impl Samples {
    fn new() -> Self {
        Samples {
            ns: KVec::new(),
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
    /// Pages, packs and page-table entries while everything is live.
    fn footprint(&self, live: &[(Self::Handle, u64, (u64, u64))], run: &mut Run);
    /// After the last free: give back what is kept.
    fn release(&self) {}
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

    fn footprint(&self, live: &[(Area, u64, (u64, u64))], run: &mut Run) {
        run.pages = live
            .iter()
            .map(|(a, _, _)| (a.size() / PAGE_SIZE) as u64)
            .sum();
        run.ptes = run.pages;
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
        Ok(Allocator::alloc(self, r.ty, r.size, None, Requester::User)?)
    }

    fn write(&self, h: &mut Any, data: &[u8]) -> Result {
        h.write(0, data)
    }

    fn footprint(&self, _: &[(Any, u64, (u64, u64))], run: &mut Run) {
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

/// Allocates (and writes) every request, then frees everything, then
/// releases what is kept, timing each operation and counting its pokes.
fn measure<S: Subject>(s: &S, reqs: &[Req], write: bool, run: &mut Run) -> Result {
    let mut live: KVec<(S::Handle, u64, (u64, u64))> = KVec::with_capacity(reqs.len(), GFP_KERNEL)?;
    let start = direct_map_splits();
    for &r in reqs {
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
        let aw = t1.saturating_sub(t0).saturating_add(w);
        live.push((h, aw, delta(p0, s.pokes())), GFP_KERNEL)?;
    }
    s.footprint(live.as_slice(), run);
    run.after_alloc = Splits::since(start);
    for (h, aw, aw_pokes) in live.into_iter() {
        let p0 = s.pokes();
        let t0 = now_ns();
        drop(h);
        let f = now_ns().saturating_sub(t0);
        let pokes = delta(p0, s.pokes());
        run.free.push(f, pokes)?;
        let total = if write {
            &mut run.alloc_write_free
        } else {
            &mut run.alloc_free
        };
        total.push(
            aw.saturating_add(f),
            (aw_pokes.0 + pokes.0, aw_pokes.1 + pokes.1),
        )?;
    }
    run.after_free = Splits::since(start);
    s.release();
    run.after_release = Splits::since(start);
    Ok(())
}

struct Args {
    workload: u8,
    n: usize,
    size: usize,
    write: bool,
}

fn parse_run(words: &[&[u8]]) -> core::result::Result<Args, Failure> {
    let bad = |r| Failure::new(EINVAL, r);
    let mut a = Args {
        workload: 0,
        n: 1000,
        size: 512,
        write: false,
    };
    for w in words {
        let eq = w
            .iter()
            .position(|&c| c == b'=')
            .ok_or(bad("expected key=value"))?;
        let (k, v) = (w.get(..eq).unwrap_or(&[]), w.get(eq + 1..).unwrap_or(&[]));
        match k {
            b"workload" => {
                a.workload = match v {
                    b"fixed" => 0,
                    b"trace" => 1,
                    b"bpf" => 2,
                    _ => return Err(bad("workload must be fixed, trace or bpf")),
                }
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
            _ => return Err(bad("unknown parameter")),
        }
    }
    Ok(a)
}

fn requests(a: &Args, trace: &[[u32; 4]]) -> Result<KVec<Req>> {
    let mut v = KVec::new();
    match a.workload {
        0 => {
            for _ in 0..a.n {
                v.push(
                    Req {
                        ty: ExecmemType::Text,
                        size: a.size,
                    },
                    GFP_KERNEL,
                )?;
            }
        }
        1 => {
            for m in trace.iter().take(a.n) {
                for (ty, &size) in TRACE_TYPES.iter().zip(m.iter()) {
                    if size != 0 {
                        v.push(
                            Req {
                                ty: *ty,
                                size: size as usize,
                            },
                            GFP_KERNEL,
                        )?;
                    }
                }
            }
        }
        _ => {
            let mut rng = Rng::new(BPF_SEED);
            for _ in 0..a.n {
                v.push(
                    Req {
                        ty: ExecmemType::Bpf,
                        size: bpf_size(&mut rng),
                    },
                    GFP_KERNEL,
                )?;
            }
        }
    }
    Ok(v)
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
                inner.trace = KVec::new();
                out.push(b"ok\n").map_err(out_of_memory)
            }
            [b"trace", b"add", cols @ ..] if cols.len() == 4 => {
                let mut m = [0u32; 4];
                for (d, c) in m.iter_mut().zip(cols.iter()) {
                    *d = u32::try_from(parse_num(c)?).map_err(|_| bad("size above 4 GiB"))?;
                }
                if inner.trace.len() >= MAX_N {
                    // A run refuses more than MAX_N allocations anyway.
                    return Err(Failure::new(E2BIG, "trace above 100000 modules"));
                }
                inner.trace.push(m, GFP_KERNEL).map_err(out_of_memory)?;
                out.push(b"ok\n").map_err(out_of_memory)
            }
            [b"run", rest @ ..] => {
                let a = parse_run(rest)?;
                if a.workload == 1 && inner.trace.is_empty() {
                    return Err(bad("no trace loaded (trace add ...)"));
                }
                let reqs = requests(&a, inner.trace.as_slice()).map_err(out_of_memory)?;
                if reqs.len() > MAX_N {
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
                let wl = ["fixed", "trace", "bpf"]
                    .get(a.workload as usize)
                    .copied()
                    .unwrap_or("?");
                let hdr = writeln!(
                    t,
                    "workload={wl} allocations={} write={}\n\
                     {:<10} {:<17} {:>7} {:>10} {:>10} {:>9} {:>10} {:>7}",
                    reqs.len(),
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
                    .map_err(out_of_memory)?;
                out.push(t.as_bytes()).map_err(out_of_memory)?;
                inner.last = t;
                Ok(())
            }
            _ => Err(bad(
                "usage: run workload=fixed|trace|bpf ... | trace add T R A D | trace clear",
            )),
        }
    }
}
