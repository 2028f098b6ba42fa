// SPDX-License-Identifier: GPL-2.0

//! The workloads as replayable traces: the module trace (the shared
//! [`ModuleChurn`], measured at every phase), fleet-like BPF lifetimes,
//! and alloc+free pairs at a fixed fill.

use execmem_core::{
    arch, bpf_size, expand, Class, Event, ExecmemType, Module, ModuleChurn, Rng, BPF_SEED,
};

use crate::{MIB, PACK};

// ---------------------------------------------------------------- rng ----

/// Uniform in [0, 1), from the shared PRNG.
pub fn unit(rng: &mut Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// Uniform in `0..n`.
pub fn below(rng: &mut Rng, n: usize) -> usize {
    rng.below(n as u64) as usize
}

// -------------------------------------------------------------- workloads ----

#[derive(Clone, Copy)]
pub enum Ev {
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
pub struct Trace {
    /// Ops before `measured` are setup (state building); the rest are timed.
    pub ev: Vec<Ev>,
    pub measured: usize,
    pub nids: usize,
    /// Requested bytes per class: final, and peak.
    pub req_final: [usize; 3],
    pub req_peak: [usize; 3],
    /// How many ops make one reported "op" (2 for alloc+free pairs).
    pub per_op: usize,
    /// Phases of the module-trace replay.
    pub phases: Vec<Phase>,
}

/// The end of one phase of a trace: which, after how many events, and the
/// bytes requested per class then (exact, and rounded up to the engine's
/// 64 B granule: no allocator of that granule can back less).
#[derive(Clone, Copy)]
pub struct Phase {
    pub phase: u32,
    pub at: usize,
    pub req: [usize; 3],
    pub granules: [usize; 3],
}

pub struct Builder {
    pub ev: Vec<Ev>,
    pub live: Vec<Option<(ExecmemType, usize)>>,
    pub req: [usize; 3],
    pub granules: [usize; 3],
    pub peak: [usize; 3],
    pub phases: Vec<Phase>,
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

pub fn read_modules(path: &str) -> Vec<Module> {
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
pub fn real_trace(mods: &[Module]) -> Trace {
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|r| r.parse().ok())
            .unwrap_or(d)
    };
    let mut b = Builder::new();
    let mut order = vec![0u32; mods.len()];
    let mut core = vec![(0, 0); mods.len()];
    let churn = ModuleChurn::new(
        &mut order,
        env("BENCH_SEED", 0),
        env("BENCH_ROUNDS", 5) as u32,
    )
    .expect("modules");
    // Builder ids are numbered like the expansion's allocations: in order.
    expand(mods, churn, &mut core, |ev| -> Result<(), ()> {
        match ev {
            Event::Alloc(t, s, a) => {
                b.alloc(t, s, a);
            }
            Event::Free(n) => b.free(n as u32),
            Event::Phase(r) => b.phase(r),
        }
        Ok(())
    })
    .expect("replay");
    b.finish(0, 1)
}

/// Random lifetimes around a steady 16 MiB of live programs.
pub fn bpf_trace() -> Trace {
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
pub fn fill_trace(pct: usize, pairs: usize) -> Trace {
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
