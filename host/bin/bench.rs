// SPDX-License-Identifier: GPL-2.0

//! Benchmark: replays workloads through the execmem_rs engine and through
//! models of its peers, in the same run.
//!
//! Allocators (each instantiated once per permission class):
//! * `execmem_rs`: the engine in `execmem/binpack`, packs from a fake source.
//! * `vmalloc`: per-allocation vmalloc/execmem: page-rounded, 4 KiB PTEs,
//!   one guard page of address space each (footprint model only).
//! * `bpf_prog_pack`: 2 MiB packs in a list, 64 B chunks, first-fit
//!   `bitmap_find_next_zero_area` walk over the list, pack freed when
//!   empty; larger than a pack: page-rounded own allocation. Packs are
//!   mapped with 4 KiB pages on x86 (512 PTEs per pack).
//! * `rox_cache`: execmem's ROX cache: page granularity, first fit by
//!   address over an ordered map of free extents, grows by 2 MiB (PMD
//!   mapped), coalescing, PMD-aligned fully free 2 MiB areas released.
//!
//! Workloads: `real` (Debian 6.12.117 modules: load all, churn 30 % for 5
//! rounds), `bpf` (fleet-like BPF sizes, random lifetimes, steady live
//! size), `fill50`/`fill90` (alloc+free pairs at 50 % / 90 % occupancy of
//! 16 packs).
//!
//! Usage: `bench [--only ALLOC/WORKLOAD] [--setup-only] [--csv PATH]
//! [--tsv PATH] [--instr PATH] [--phases PATH]`. `--phases` writes
//! execmem_rs's bytes at the end of each phase of the `real` workload. With `--setup-only` the measured phase is
//! skipped (for callgrind: Ir(full) - Ir(setup-only) = measured phase).
//! `--instr` reads `alloc workload instr_per_op` lines (from
//! `scripts/bench.sh`) into the table and CSV.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Instant;

use execmem_core::{
    arch, bpf_size, Class, Engine, ExecmemType, FakeSource, Footprint, Handle, Module, ModuleChurn,
    Rng, StdStorage, Step, BPF_SEED,
};

const PACK: usize = arch::PACK_SIZE;
const PAGE: usize = arch::PAGE_SIZE;
const MIB: usize = 1 << 20;

// ---------------------------------------------------------------- rng ----

/// Uniform in [0, 1), from the shared PRNG.
fn unit(rng: &mut Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// Uniform in `0..n`.
fn below(rng: &mut Rng, n: usize) -> usize {
    rng.below(n as u64) as usize
}

// --------------------------------------------------------------- models ----

trait Model {
    type Token: Copy + Default;
    const NAME: &'static str;
    /// What `units` counts.
    const UNIT: &'static str;
    fn new() -> Self;
    fn alloc(&mut self, ty: ExecmemType, size: usize, align: usize) -> Self::Token;
    fn free(&mut self, ty: ExecmemType, tok: Self::Token, size: usize);
    fn foot(&self, c: Class) -> Footprint;
    fn debug(&self) {}
    /// Where the backing goes (execmem_rs only).
    fn breakdown(&self, _req: &[usize; 3]) -> String {
        String::new()
    }
}

// execmem_rs -----------------------------------------------------------------

struct Execmem {
    src: FakeSource,
    e: [Engine<StdStorage>; 3],
}

#[derive(Clone, Copy, Default)]
struct Tok(Option<Handle>);

impl Model for Execmem {
    type Token = Tok;
    const NAME: &'static str = "execmem_rs";
    const UNIT: &'static str = "2M packs";
    fn new() -> Self {
        Execmem {
            src: FakeSource::new(),
            e: [
                Engine::new(Class::Rx),
                Engine::new(Class::Ro),
                Engine::new(Class::Rw),
            ],
        }
    }
    fn alloc(&mut self, ty: ExecmemType, size: usize, align: usize) -> Tok {
        let e = &mut self.e[ty.class().index()];
        Tok(Some(
            e.alloc(&mut self.src, ty, size, Some(align))
                .expect("alloc")
                .handle,
        ))
    }
    fn free(&mut self, ty: ExecmemType, tok: Tok, _size: usize) {
        let e = &mut self.e[ty.class().index()];
        e.free(&mut self.src, tok.0.expect("token")).expect("free");
    }
    fn foot(&self, c: Class) -> Footprint {
        self.src.foot[c]
    }
    fn breakdown(&self, req: &[usize; 3]) -> String {
        let mut out = String::new();
        for e in &self.e {
            let st = e.stats();
            let (mut tail, mut free, mut over) = (0, 0, 0);
            for i in 0..e.pack_slots() {
                let Some(p) = e.pack_info(i) else { continue };
                if p.pages != 0 {
                    over += p.pages * PAGE - p.used;
                } else if p.dedicated {
                    tail += p.npacks * PACK - p.used;
                } else if p.used > 0 {
                    free += PACK - p.used;
                }
            }
            let q = req[e.class().index()];
            let _ = writeln!(
                out,
                "execmem_rs {}: backing {:.2}M = requested {:.2}M + 64B rounding {:.2}M + free space in used packs {:.2}M + free space in extents {:.2}M ({} extents) + page rounding of {} overflow extents {:.2}M ({} pages) + spare {:.2}M; lower bound ceil(used / 2M) = {} packs, ratio {:.3}",
                e.class().name(),
                st.backing as f64 / MIB as f64,
                q as f64 / MIB as f64,
                (st.used - q) as f64 / MIB as f64,
                free as f64 / MIB as f64,
                tail as f64 / MIB as f64,
                st.extents,
                st.overflow,
                over as f64 / MIB as f64,
                st.overflow_pages,
                (st.spare * PACK) as f64 / MIB as f64,
                st.used.div_ceil(PACK),
                (st.used.div_ceil(PACK) * PACK) as f64 / q as f64,
            );
        }
        out
    }
    fn debug(&self) {
        for e in &self.e {
            eprintln!("class {}", e.class().name());
            for i in 0..e.pack_slots() {
                if let Some(p) = e.pack_info(i) {
                    let m = e.pack_map(i).unwrap_or([b'?'; 64]);
                    eprintln!(
                        "  used {:>8} live {:>4} free {:>4} largest {:>8} {}",
                        p.used,
                        p.live,
                        p.free_extents,
                        p.largest_free,
                        String::from_utf8_lossy(&m)
                    );
                }
            }
        }
    }
}

// vmalloc per allocation ---------------------------------------------------------

struct Vmalloc {
    foot: [Footprint; 3],
}

impl Model for Vmalloc {
    type Token = ();
    const NAME: &'static str = "vmalloc";
    const UNIT: &'static str = "4K pages";
    fn new() -> Self {
        Vmalloc {
            foot: [Footprint::default(); 3],
        }
    }
    fn alloc(&mut self, ty: ExecmemType, size: usize, _align: usize) {
        let pages = size.div_ceil(PAGE);
        self.foot[ty.class().index()].add(pages * PAGE, pages, pages);
    }
    fn free(&mut self, ty: ExecmemType, _tok: (), size: usize) {
        let pages = size.div_ceil(PAGE);
        self.foot[ty.class().index()].sub(pages * PAGE, pages, pages);
    }
    fn foot(&self, c: Class) -> Footprint {
        self.foot[c.index()]
    }
}

// bpf_prog_pack ------------------------------------------------------------------

const CHUNK: usize = 64;
const CHUNKS: usize = PACK / CHUNK;
const WORDS: usize = CHUNKS / 64;

struct BpfPack {
    ptr: usize,
    bitmap: Box<[u64; WORDS]>,
}

/// `find_next_bit` (want = true) / `find_next_zero_bit` (want = false)
/// over `size` bits, word at a time as in lib/find_bit.c.
fn find_next(map: &[u64; WORDS], size: usize, start: usize, want: bool) -> usize {
    if start >= size {
        return size;
    }
    let mut i = start / 64;
    let flip = if want { 0 } else { u64::MAX };
    let mut w = (map[i] ^ flip) & (u64::MAX << (start % 64));
    loop {
        if w != 0 {
            return (i * 64 + w.trailing_zeros() as usize).min(size);
        }
        i += 1;
        if i * 64 >= size {
            return size;
        }
        w = map[i] ^ flip;
    }
}

/// `bitmap_find_next_zero_area(map, size, start, nr, 0)`.
fn find_zero_area(map: &[u64; WORDS], size: usize, mut start: usize, nr: usize) -> usize {
    loop {
        let index = find_next(map, size, start, false);
        let end = index + nr;
        if end > size {
            return end;
        }
        let i = find_next(map, end, index, true);
        if i < end {
            start = i + 1;
            continue;
        }
        return index;
    }
}

fn bitmap_set(map: &mut [u64; WORDS], pos: usize, nr: usize, on: bool) {
    let mut p = pos;
    let end = pos + nr;
    while p < end {
        let w = p / 64;
        let lo = p % 64;
        let n = (64 - lo).min(end - p);
        let mask = if n == 64 {
            u64::MAX
        } else {
            ((1u64 << n) - 1) << lo
        };
        if on {
            map[w] |= mask;
        } else {
            map[w] &= !mask;
        }
        p += n;
    }
}

struct BpfClass {
    packs: Vec<BpfPack>,
    next: usize,
    foot: Footprint,
}

struct BpfProgPack {
    c: [BpfClass; 3],
}

impl BpfClass {
    fn new() -> Self {
        BpfClass {
            packs: Vec::new(),
            next: 0xffff_b000_0000_0000,
            foot: Footprint::default(),
        }
    }
    fn alloc(&mut self, size: usize, align: usize) -> usize {
        // Callers that need more than chunk alignment over-ask.
        let size = size + align.saturating_sub(CHUNK);
        if size > PACK {
            let bytes = size.div_ceil(PAGE) * PAGE;
            let p = self.next;
            self.next += bytes + PACK;
            self.foot.add(bytes, bytes / PAGE, 0);
            return p;
        }
        let nbits = size.div_ceil(CHUNK);
        for pack in &mut self.packs {
            let pos = find_zero_area(&pack.bitmap, CHUNKS, 0, nbits);
            if pos < CHUNKS {
                bitmap_set(&mut pack.bitmap, pos, nbits, true);
                return pack.ptr + pos * CHUNK;
            }
        }
        let ptr = self.next;
        self.next += 2 * PACK;
        // x86: the pack is vmalloc'ed with 4 KiB pages.
        self.foot.add(PACK, PACK / PAGE, 1);
        let mut bitmap = Box::new([0u64; WORDS]);
        bitmap_set(&mut bitmap, 0, nbits, true);
        self.packs.push(BpfPack { ptr, bitmap });
        ptr
    }
    fn free(&mut self, ptr: usize, size: usize, align: usize) {
        let size = size + align.saturating_sub(CHUNK);
        if size > PACK {
            let bytes = size.div_ceil(PAGE) * PAGE;
            self.foot.sub(bytes, bytes / PAGE, 0);
            return;
        }
        let Some(i) = self
            .packs
            .iter()
            .position(|p| ptr >= p.ptr && ptr < p.ptr + PACK)
        else {
            panic!("bpf_prog_pack_free: not found");
        };
        let nbits = size.div_ceil(CHUNK);
        let pos = (ptr - self.packs[i].ptr) / CHUNK;
        bitmap_set(&mut self.packs[i].bitmap, pos, nbits, false);
        if find_zero_area(&self.packs[i].bitmap, CHUNKS, 0, CHUNKS) == 0 {
            self.packs.remove(i);
            self.foot.sub(PACK, PACK / PAGE, 1);
        }
    }
}

#[derive(Clone, Copy, Default)]
struct Addr(usize, usize);

impl Model for BpfProgPack {
    type Token = Addr;
    const NAME: &'static str = "bpf_prog_pack";
    const UNIT: &'static str = "2M packs";
    fn new() -> Self {
        BpfProgPack {
            c: [BpfClass::new(), BpfClass::new(), BpfClass::new()],
        }
    }
    fn alloc(&mut self, ty: ExecmemType, size: usize, align: usize) -> Addr {
        Addr(self.c[ty.class().index()].alloc(size, align), align)
    }
    fn free(&mut self, ty: ExecmemType, t: Addr, size: usize) {
        self.c[ty.class().index()].free(t.0, size, t.1);
    }
    fn foot(&self, c: Class) -> Footprint {
        self.c[c.index()].foot
    }
}

// execmem ROX cache ------------------------------------------------------------

struct RoxClass {
    /// start -> len (maple tree `free_areas`).
    free: BTreeMap<usize, usize>,
    /// start -> len (maple tree `busy_areas`).
    busy: BTreeMap<usize, usize>,
    next: usize,
    foot: Footprint,
}

impl RoxClass {
    fn new() -> Self {
        RoxClass {
            free: BTreeMap::new(),
            busy: BTreeMap::new(),
            next: 0xffff_c000_0000_0000,
            foot: Footprint::default(),
        }
    }
    /// `execmem_cache_add`: insert and coalesce with both neighbours.
    fn add(&mut self, mut start: usize, mut len: usize) -> (usize, usize) {
        if let Some((&s, &l)) = self.free.range(..start).next_back() {
            if s + l == start {
                self.free.remove(&s);
                start = s;
                len += l;
            }
        }
        if let Some(&l) = self.free.get(&(start + len)) {
            self.free.remove(&(start + len));
            len += l;
        }
        self.free.insert(start, len);
        (start, len)
    }
    fn try_alloc(&mut self, size: usize) -> Option<usize> {
        // mas_for_each over free_areas: first fit by address.
        let (&s, &l) = self.free.iter().find(|(_, &l)| l >= size)?;
        self.free.remove(&s);
        if l > size {
            self.free.insert(s + size, l - size);
        }
        self.busy.insert(s, size);
        Some(s)
    }
    fn alloc(&mut self, size: usize, align: usize) -> usize {
        // Page granularity; a page-aligned base satisfies every module
        // alignment seen (<= 256 B), larger ones over-ask.
        let size = (size + align.saturating_sub(PAGE)).div_ceil(PAGE) * PAGE;
        if let Some(a) = self.try_alloc(size) {
            return a;
        }
        // execmem_cache_populate: round_up(size, PMD_SIZE), PMD mapped.
        let len = size.div_ceil(PACK) * PACK;
        let base = self.next;
        self.next += len + PACK;
        self.foot.add(len, len / PACK, len / PACK);
        self.add(base, len);
        self.try_alloc(size).expect("populated")
    }
    fn free(&mut self, ptr: usize) {
        let len = self.busy.remove(&ptr).expect("busy area");
        let (s, l) = self.add(ptr, len);
        // execmem_cache_clean: release PMD-aligned, PMD-multiple free areas.
        // (The kernel's work item rescans all free areas; checking only the
        // merged one gives the same result at lower cost.)
        if s % PACK == 0 && l % PACK == 0 {
            self.free.remove(&s);
            self.foot.sub(l, l / PACK, l / PACK);
        }
    }
}

struct RoxCache {
    c: [RoxClass; 3],
}

impl Model for RoxCache {
    type Token = usize;
    const NAME: &'static str = "rox_cache";
    const UNIT: &'static str = "2M packs";
    fn new() -> Self {
        RoxCache {
            c: [RoxClass::new(), RoxClass::new(), RoxClass::new()],
        }
    }
    fn alloc(&mut self, ty: ExecmemType, size: usize, align: usize) -> usize {
        self.c[ty.class().index()].alloc(size, align)
    }
    fn free(&mut self, ty: ExecmemType, t: usize, _size: usize) {
        self.c[ty.class().index()].free(t);
    }
    fn foot(&self, c: Class) -> Footprint {
        self.c[c.index()].foot
    }
}

// -------------------------------------------------------------- workloads ----

#[derive(Clone, Copy)]
enum Ev {
    Alloc {
        id: u32,
        ty: ExecmemType,
        size: u32,
        align: u32,
    },
    Free {
        id: u32,
    },
}

/// A replayable trace plus its allocator-independent accounting.
struct Trace {
    /// Ops before `measured` are setup (state building); the rest are timed.
    ev: Vec<Ev>,
    measured: usize,
    nids: usize,
    /// Requested bytes per class: final, and peak.
    req_final: [usize; 3],
    req_peak: [usize; 3],
    /// How many ops make one reported "op" (2 for alloc+free pairs).
    per_op: usize,
    /// Phases of the module-trace replay.
    phases: Vec<Phase>,
}

/// The end of one phase of a trace: which, after how many events, and the
/// bytes requested per class then (exact, and rounded up to the engine's
/// 64 B granule: no allocator of that granule can back less).
#[derive(Clone, Copy)]
struct Phase {
    phase: u32,
    at: usize,
    req: [usize; 3],
    granules: [usize; 3],
}

struct Builder {
    ev: Vec<Ev>,
    live: Vec<Option<(ExecmemType, usize)>>,
    req: [usize; 3],
    granules: [usize; 3],
    peak: [usize; 3],
    phases: Vec<Phase>,
}

impl Builder {
    fn new() -> Self {
        Builder {
            ev: Vec::new(),
            live: Vec::new(),
            req: [0; 3],
            granules: [0; 3],
            peak: [0; 3],
            phases: Vec::new(),
        }
    }
    fn alloc(&mut self, ty: ExecmemType, size: usize, align: usize) -> u32 {
        let id = self.live.len() as u32;
        self.live.push(Some((ty, size)));
        self.ev.push(Ev::Alloc {
            id,
            ty,
            size: size as u32,
            align: align as u32,
        });
        let c = ty.class().index();
        self.req[c] += size;
        self.granules[c] += size.next_multiple_of(arch::GRANULE);
        self.peak[c] = self.peak[c].max(self.req[c]);
        id
    }
    fn free(&mut self, id: u32) {
        let (ty, size) = self.live[id as usize].take().expect("live");
        self.req[ty.class().index()] -= size;
        self.granules[ty.class().index()] -= size.next_multiple_of(arch::GRANULE);
        self.ev.push(Ev::Free { id });
    }
    fn phase(&mut self, phase: u32) {
        self.phases.push(Phase {
            phase,
            at: self.ev.len(),
            req: self.req,
            granules: self.granules,
        });
    }
    fn finish(self, measured: usize, per_op: usize) -> Trace {
        Trace {
            measured,
            nids: self.live.len(),
            ev: self.ev,
            req_final: self.req,
            req_peak: self.peak,
            per_op,
            phases: self.phases,
        }
    }
}

fn read_modules(path: &str) -> Vec<Module> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("module\t"))
        .map(|line| {
            let cols: Vec<u64> = line
                .split('\t')
                .skip(1)
                .map(|x| x.parse().expect("number"))
                .collect();
            Module::from_columns(&cols).unwrap_or_else(|e| panic!("{path}: {e}: {line}"))
        })
        .collect()
}

/// The module-trace replay of [`ModuleChurn`]: load every module (init
/// sections freed after "init"), then `BENCH_ROUNDS` (5) rounds of
/// unloading and reloading a random 30 %, with seed `BENCH_SEED` (0).
fn real_trace(mods: &[Module]) -> Trace {
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|r| r.parse().ok())
            .unwrap_or(d)
    };
    let mut b = Builder::new();
    let mut loaded: Vec<Vec<u32>> = vec![Vec::new(); mods.len()];
    let mut order = vec![0u32; mods.len()];
    let churn = ModuleChurn::new(
        &mut order,
        env("BENCH_SEED", 0),
        env("BENCH_ROUNDS", 5) as u32,
    )
    .expect("modules");
    for step in churn {
        match step {
            Step::Load(m) => {
                loaded[m] = mods[m]
                    .sections(false)
                    .map(|(t, s, a)| b.alloc(t, s, a))
                    .collect();
                let init: Vec<u32> = mods[m]
                    .sections(true)
                    .map(|(t, s, a)| b.alloc(t, s, a))
                    .collect();
                for id in init {
                    b.free(id);
                }
            }
            Step::Unload(m) => {
                for id in std::mem::take(&mut loaded[m]) {
                    b.free(id);
                }
            }
            Step::Phase(r) => b.phase(r),
        }
    }
    b.finish(0, 1)
}

/// Random lifetimes around a steady 16 MiB of live programs.
fn bpf_trace() -> Trace {
    let mut rng = Rng::new(BPF_SEED);
    let mut b = Builder::new();
    let mut live: Vec<u32> = Vec::new();
    let target = 16 * MIB;
    for _ in 0..150_000 {
        let fill = b.req[Class::Rx.index()] as f64 / target as f64;
        let p_alloc = (0.5 + 0.5 * (1.0 - fill)).clamp(0.05, 0.95);
        if live.is_empty() || unit(&mut rng) < p_alloc {
            live.push(b.alloc(ExecmemType::Bpf, bpf_size(&mut rng), 64));
        } else {
            let i = below(&mut rng, live.len());
            b.free(live.swap_remove(i));
        }
    }
    b.finish(0, 1)
}

/// Fill 16 packs' worth with BPF-sized programs, free randomly down to
/// `pct` % occupancy, then time `pairs` alloc+free pairs.
fn fill_trace(pct: usize, pairs: usize) -> Trace {
    let mut rng = Rng::new(0x5eed_0003 + pct as u64);
    let mut b = Builder::new();
    let mut live: Vec<u32> = Vec::new();
    let cap = 16 * PACK;
    while b.req[0] < cap * 97 / 100 {
        live.push(b.alloc(ExecmemType::Bpf, bpf_size(&mut rng), 64));
    }
    while b.req[0] > cap * pct / 100 {
        let i = below(&mut rng, live.len());
        b.free(live.swap_remove(i));
    }
    let measured = b.ev.len();
    for _ in 0..pairs {
        live.push(b.alloc(ExecmemType::Bpf, bpf_size(&mut rng), 64));
        let i = below(&mut rng, live.len());
        b.free(live.swap_remove(i));
    }
    b.finish(measured, 2)
}

// ---------------------------------------------------------------- replay ----

struct Result1 {
    alloc: &'static str,
    unit: &'static str,
    workload: &'static str,
    ops: usize,
    ns: f64,
    foot: [Footprint; 3],
    breakdown: String,
    trace_req_final: [usize; 3],
    trace_req_peak: [usize; 3],
    /// Each phase of the trace and the backing per class at its end.
    phases: Vec<(Phase, [usize; 3])>,
}

fn replay<M: Model>(t: &Trace, workload: &'static str, setup_only: bool) -> Result1 {
    let mut m = M::new();
    let mut tok: Vec<(M::Token, ExecmemType, usize)> =
        vec![(M::Token::default(), ExecmemType::Text, 0); t.nids];
    let mut run = |m: &mut M, evs: &[Ev]| {
        for ev in evs {
            match *ev {
                Ev::Alloc {
                    id,
                    ty,
                    size,
                    align,
                } => {
                    let k = m.alloc(ty, size as usize, align as usize);
                    tok[id as usize] = (k, ty, size as usize);
                }
                Ev::Free { id } => {
                    let (k, ty, size) = tok[id as usize];
                    m.free(ty, k, size);
                }
            }
        }
    };
    run(&mut m, &t.ev[..t.measured]);
    let timed = if setup_only {
        &t.ev[..0]
    } else {
        &t.ev[t.measured..]
    };
    // Backing per class at the end of each phase inside the timed events.
    let mut phases = Vec::new();
    let start = Instant::now();
    let mut done = 0;
    for p in t
        .phases
        .iter()
        .filter(|p| p.at >= t.measured && p.at - t.measured <= timed.len())
    {
        let to = p.at - t.measured;
        run(&mut m, &timed[done..to]);
        done = to;
        phases.push((*p, Class::ALL.map(|c| m.foot(c).backing)));
    }
    run(&mut m, &timed[done..]);
    let el = start.elapsed().as_nanos() as f64;
    if std::env::var("BENCH_DEBUG").is_ok() {
        m.debug();
    }
    let breakdown = m.breakdown(&t.req_final);
    let ops = (t.ev.len() - t.measured) / t.per_op;
    Result1 {
        alloc: M::NAME,
        unit: M::UNIT,
        workload,
        ops,
        ns: el / ops.max(1) as f64,
        foot: [m.foot(Class::Rx), m.foot(Class::Ro), m.foot(Class::Rw)],
        breakdown,
        trace_req_final: t.req_final,
        trace_req_peak: t.req_peak,
        phases,
    }
}

// ------------------------------------------------------------------ main ----

fn main() {
    let mut only: Option<String> = None;
    let mut setup_only = false;
    let mut csv = String::from("out/bench.csv");
    let mut tsv = String::from("data/modules-6.12.117.tsv");
    let mut instr_path: Option<String> = None;
    let mut phases_path: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--only" => only = args.next(),
            "--setup-only" => setup_only = true,
            "--csv" => csv = args.next().expect("--csv PATH"),
            "--tsv" => tsv = args.next().expect("--tsv PATH"),
            "--instr" => instr_path = args.next(),
            "--phases" => phases_path = args.next(),
            _ => {
                eprintln!("usage: bench [--only ALLOC/WORKLOAD] [--setup-only] [--csv PATH] [--tsv PATH] [--instr PATH] [--phases PATH]");
                std::process::exit(2);
            }
        }
    }
    let allocs = ["execmem_rs", "vmalloc", "bpf_prog_pack", "rox_cache"];
    let workloads = ["real", "bpf", "fill50", "fill90"];
    let want = |a: &str, w: &str| !matches!(only.as_ref(), Some(o) if *o != format!("{a}/{w}"));
    let mut instr: BTreeMap<(String, String), f64> = BTreeMap::new();
    if let Some(p) = &instr_path {
        for l in std::fs::read_to_string(p).expect("instr file").lines() {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() == 3 {
                instr.insert((f[0].into(), f[1].into()), f[2].parse().expect("instr"));
            }
        }
    }
    let mut results = Vec::new();
    let mut mods = None;
    for w in workloads {
        if !allocs.iter().any(|a| want(a, w)) {
            continue;
        }
        let t = match w {
            "real" => real_trace(mods.get_or_insert_with(|| read_modules(&tsv))),
            "bpf" => bpf_trace(),
            "fill50" => fill_trace(50, 20_000),
            _ => fill_trace(90, 20_000),
        };
        for a in allocs {
            if !want(a, w) {
                continue;
            }
            let r = match a {
                "execmem_rs" => replay::<Execmem>(&t, w, setup_only),
                "vmalloc" => replay::<Vmalloc>(&t, w, setup_only),
                "bpf_prog_pack" => replay::<BpfProgPack>(&t, w, setup_only),
                _ => replay::<RoxCache>(&t, w, setup_only),
            };
            println!("ops {} {} {}", a, w, r.ops);
            results.push(r);
        }
    }
    if let Some(p) = &phases_path {
        std::fs::write(p, phase_lines(&results)).expect("write phases");
    }
    if only.is_some() {
        return;
    }
    let (table, rows) = render(&results, &instr);
    print!("{table}");
    println!();
    for r in results.iter().filter(|r| r.workload == "real") {
        print!("{}", r.breakdown);
    }
    println!();
    print!("{}", phase_table(&results));
    if let Some(dir) = std::path::Path::new(&csv).parent() {
        std::fs::create_dir_all(dir).ok();
    }
    std::fs::write(&csv, rows).expect("write csv");
    println!("csv: {csv}");
}

/// execmem_rs's phases of the module-trace replay in bytes, one
/// `phase=P class=C requested=R execmem_rs=B` line each: what
/// `scripts/replay-compare.sh` compares with the kernel bench's lines.
fn phase_lines(results: &[Result1]) -> String {
    let mut t = String::new();
    for r in results
        .iter()
        .filter(|r| r.workload == "real" && r.alloc == "execmem_rs")
    {
        for (p, backing) in &r.phases {
            for c in Class::ALL.into_iter().filter(|c| p.req[c.index()] != 0) {
                let _ = writeln!(
                    t,
                    "phase={} class={} requested={} execmem_rs={}",
                    p.phase,
                    c.name(),
                    p.req[c.index()],
                    backing[c.index()]
                );
            }
        }
    }
    t
}

/// backing/requested of every allocator at the end of every phase of the
/// module-trace replay, beside two lower bounds: `granule` (every
/// allocation rounded to 64 B, what any allocator of that granule needs)
/// and `packs` (that, rounded up to whole 2 MiB packs: what an allocator
/// without page-granular overflow needs).
fn phase_table(results: &[Result1]) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "{:<14} {:<5} {:<7} {:>12} {:>12} {:>7} {:>7} {:>7}",
        "phase", "class", "alloc", "requested", "backing", "ratio", "granule", "packs"
    );
    for r in results.iter().filter(|r| r.workload == "real") {
        for (p, backing) in &r.phases {
            let name = if p.phase == 0 {
                "loaded".to_string()
            } else {
                format!("churn{}", p.phase)
            };
            for c in Class::ALL {
                let (q, g, b) = (p.req[c.index()], p.granules[c.index()], backing[c.index()]);
                if q == 0 {
                    continue;
                }
                let _ = writeln!(
                    t,
                    "phase {:<8} {:<5} {:<7} {:>11.2}M {:>11.2}M {:>7.3} {:>7.3} {:>7.3}",
                    name,
                    c.name(),
                    r.alloc.split('_').next().unwrap_or(r.alloc),
                    q as f64 / MIB as f64,
                    b as f64 / MIB as f64,
                    b as f64 / q as f64,
                    g as f64 / q as f64,
                    g.next_multiple_of(PACK) as f64 / q as f64,
                );
            }
        }
    }
    t
}

fn render(results: &[Result1], instr: &BTreeMap<(String, String), f64>) -> (String, String) {
    let mut t = String::new();
    let mut c = String::from(
        "workload,allocator,class,requested_final,backing_final,ratio_final,requested_peak,backing_peak,ratio_peak,unit,units_final,units_peak,ptes_final,ptes_peak,ns_per_op,instr_per_op\n",
    );
    let mut last = "";
    for r in results {
        if r.workload != last {
            last = r.workload;
            let op = if r.workload.starts_with("fill") {
                "alloc+free"
            } else {
                "op"
            };
            let _ = writeln!(
                t,
                "\n== workload {} ({} measured ops; time and instructions per {op}) ==",
                r.workload, r.ops
            );
            let _ =
                writeln!(
                t,
                "{:<14} {:<5} {:>12} {:>12} {:>6} {:>12} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
                "allocator", "class", "req final", "backing", "ratio", "peak back", "ratio",
                "units", "peak", "PTEs", "peak PTEs", "ns/op", "instr/op"
            );
        }
        let ins = instr
            .get(&(r.alloc.to_string(), r.workload.to_string()))
            .copied();
        let mut tot = Footprint::default();
        let (mut rq, mut rp) = (0, 0);
        for (ci, cl) in Class::ALL.iter().enumerate() {
            let f = r.foot[ci];
            let (q, p) = (r.trace_req_final[ci], r.trace_req_peak[ci]);
            rq += q;
            rp += p;
            tot.backing += f.backing;
            tot.peak_backing += f.peak_backing;
            tot.units += f.units;
            tot.peak_units += f.peak_units;
            tot.ptes += f.ptes;
            tot.peak_ptes += f.peak_ptes;
            if p == 0 {
                continue;
            }
            row(&mut t, &mut c, r, cl.name(), q, p, &f, ins);
        }
        row(&mut t, &mut c, r, "all", rq, rp, &tot, ins);
    }
    (t, c)
}

#[allow(clippy::too_many_arguments)]
fn row(
    t: &mut String,
    c: &mut String,
    r: &Result1,
    class: &str,
    q: usize,
    p: usize,
    f: &Footprint,
    ins: Option<f64>,
) {
    let ratio = |b: usize, q: usize| {
        if q == 0 {
            f64::NAN
        } else {
            b as f64 / q as f64
        }
    };
    let mb = |x: usize| format!("{:.2}M", x as f64 / MIB as f64);
    let ins_s = ins.map_or("-".to_string(), |i| format!("{i:.0}"));
    let ns = if r.alloc == "vmalloc" {
        "-".to_string()
    } else {
        format!("{:.0}", r.ns)
    };
    let _ = writeln!(
        t,
        "{:<14} {:<5} {:>12} {:>12} {:>6.3} {:>12} {:>6.3} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        r.alloc,
        class,
        mb(q),
        mb(f.backing),
        ratio(f.backing, q),
        mb(f.peak_backing),
        ratio(f.peak_backing, p),
        f.units,
        f.peak_units,
        f.ptes,
        f.peak_ptes,
        ns,
        ins_s
    );
    let _ = writeln!(
        c,
        "{},{},{},{},{},{:.4},{},{},{:.4},{},{},{},{},{},{},{}",
        r.workload,
        r.alloc,
        class,
        q,
        f.backing,
        ratio(f.backing, q),
        p,
        f.peak_backing,
        ratio(f.peak_backing, p),
        r.unit,
        f.units,
        f.peak_units,
        f.ptes,
        f.peak_ptes,
        if r.alloc == "vmalloc" {
            String::new()
        } else {
            format!("{:.1}", r.ns)
        },
        ins.map_or(String::new(), |i| format!("{i:.1}"))
    );
}
