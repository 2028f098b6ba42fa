// SPDX-License-Identifier: GPL-2.0

//! What the benchmarks and stress runs replay, shared by the host crate and
//! the kernel's test harness so that both quote the same workloads: the
//! PRNG, the BPF program-size distribution, one module of the module trace
//! ([`Module`], a row of `data/modules-6.12.117.tsv`) and the order in
//! which the module-trace replay loads and unloads them ([`ModuleChurn`]),
//! expanded into allocations and frees ([`expand`]).
//! Integer-only: the kernel has no floating point.

use super::types::{arch::PAGE_SIZE, ExecmemType, MAX_ALLOC};

/// The seed of the BPF-size stream of the `bpf` workloads (host and
/// kernel bench).
pub const BPF_SEED: u64 = 0x5eed_0002;

/// xorshift64*: a fast, seedable, deterministic PRNG (not for crypto).
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`; every seed (0 included) gives a usable,
    /// distinct stream.
    pub const fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64().checked_rem(n).unwrap_or(0)
    }
}

/// A BPF program size drawn from `rng`: half below 500 B, three quarters
/// below 2 KiB, a fifth from 2 to 16 KiB, a tail up to 64 KiB (the
/// published fleet numbers, `Documentation/performance.rst`).
pub fn bpf_size(rng: &mut Rng) -> usize {
    let (lo, span) = match rng.below(100) {
        0..=49 => (64, 436),
        50..=74 => (500, 1548),
        75..=94 => (2048, 14336),
        _ => (16384, 49152),
    };
    let r = usize::try_from(rng.below(span)).unwrap_or(0);
    r.saturating_add(lo)
}

/// The seed of the module-trace replay's random choices; a run's own seed
/// (`BENCH_SEED` on the host, `seed=` in the kernel bench) is xored in.
pub const MODULE_SEED: u64 = 0x5eed_0001;

/// Numeric columns of one module row of `data/modules-6.12.117.tsv` (after
/// the name): the sizes of text, init_text, rodata, ro_after_init, data and
/// init_data, then their alignments in the same order.
pub const MODULE_COLUMNS: usize = 12;

/// Sections of a module, in column order: the memory type, and whether the
/// loader frees the section after the module's init.
const SECTIONS: [(ExecmemType, bool); 6] = [
    (ExecmemType::Text, false),
    (ExecmemType::Text, true),
    (ExecmemType::Rodata, false),
    (ExecmemType::RoAfterInit, false),
    (ExecmemType::Data, false),
    (ExecmemType::Data, true),
];

/// Smallest alignment a module section is given (one granule): the module
/// loader's sections are laid out in cache lines.
const MIN_ALIGN: usize = 64;

/// One module of the trace: what loading it allocates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Module {
    sizes: [u32; 6],
    aligns: [u32; 6],
}

impl Module {
    /// A module from its [`MODULE_COLUMNS`] numeric columns, or why not.
    pub fn from_columns(cols: &[u64]) -> Result<Self, &'static str> {
        let (Some(sizes), Some(aligns), MODULE_COLUMNS) =
            (cols.get(..6), cols.get(6..), cols.len())
        else {
            return Err("a module has 12 columns: 6 sizes, 6 alignments");
        };
        let mut m = Module::default();
        for (i, (&size, &align)) in sizes.iter().zip(aligns).enumerate() {
            let size = u32::try_from(size)
                .ok()
                .filter(|&s| (s as usize) <= MAX_ALLOC)
                .ok_or("section size above 64 MiB")?;
            let align = u32::try_from(align)
                .ok()
                .filter(|a| a.is_power_of_two() || *a == 0)
                .ok_or("alignment not a power of two")?;
            if let (Some(s), Some(a)) = (m.sizes.get_mut(i), m.aligns.get_mut(i)) {
                (*s, *a) = (size, align);
            }
        }
        Ok(m)
    }

    /// (type, size, alignment) of each non-empty section the loader frees
    /// after init (`init`) or keeps until unload (`!init`), in column
    /// order. The alignment is the section's, between 64 B and a page.
    pub fn sections(&self, init: bool) -> impl Iterator<Item = (ExecmemType, usize, usize)> + '_ {
        SECTIONS
            .iter()
            .zip(self.sizes.iter().zip(self.aligns.iter()))
            .filter(move |((_, i), (&size, _))| *i == init && size != 0)
            .map(|((ty, _), (&size, &align))| {
                (
                    *ty,
                    size as usize,
                    (align as usize).clamp(MIN_ALIGN, PAGE_SIZE),
                )
            })
    }
}

/// One step of the module-trace replay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Load module `m`: allocate its sections (core then init), then free
    /// its init sections.
    Load(usize),
    /// Unload module `m`: free its core sections.
    Unload(usize),
    /// A phase ended: 0 when every module is loaded, `r` after churn round `r`.
    Phase(u32),
}

/// Percentage of the modules each churn round unloads and reloads.
pub const CHURN_PERCENT: u64 = 30;

enum Stage {
    Load,
    Unload,
    Done,
}

/// The module-trace replay as a sequence of [`Step`]s: load every module in
/// a random order, then `rounds` times unload a random [`CHURN_PERCENT`] %
/// of them (in module order) and load them again in a random order.
///
/// # Invariants
///
/// `pos <= set <= order.len() <= u32::MAX`; `order[..set]` are the modules
/// of the current stage.
pub struct ModuleChurn<'a> {
    rng: Rng,
    order: &'a mut [u32],
    rounds: u32,
    round: u32,
    set: usize,
    pos: usize,
    stage: Stage,
}

impl<'a> ModuleChurn<'a> {
    /// The replay of `order.len()` modules (`order` is its scratch space,
    /// one entry per module) with `seed` and `rounds` churn rounds; `None`
    /// if there are more than `u32::MAX` modules.
    pub fn new(order: &'a mut [u32], seed: u64, rounds: u32) -> Option<Self> {
        for (i, o) in order.iter_mut().enumerate() {
            *o = u32::try_from(i).ok()?;
        }
        let mut rng = Rng::new(MODULE_SEED ^ seed);
        shuffle(&mut rng, order);
        Some(ModuleChurn {
            rng,
            set: order.len(),
            order,
            rounds,
            round: 0,
            pos: 0,
            stage: Stage::Load,
        })
    }

    fn at(&self, i: usize) -> usize {
        self.order.get(i).map_or(0, |&m| m as usize)
    }

    /// Picks the modules of the next round into `order[..set]`.
    fn pick(&mut self) {
        let mut k = 0;
        for m in 0..self.order.len() {
            if self.rng.below(100) < CHURN_PERCENT {
                if let Some(o) = self.order.get_mut(k) {
                    // `m < order.len() <= u32::MAX` (invariant).
                    *o = m as u32;
                    k = k.saturating_add(1);
                }
            }
        }
        (self.set, self.pos) = (k, 0);
    }
}

impl Iterator for ModuleChurn<'_> {
    type Item = Step;

    fn next(&mut self) -> Option<Step> {
        loop {
            match self.stage {
                Stage::Done => return None,
                Stage::Load | Stage::Unload if self.pos < self.set => {
                    let m = self.at(self.pos);
                    self.pos = self.pos.saturating_add(1);
                    return Some(match self.stage {
                        Stage::Unload => Step::Unload(m),
                        _ => Step::Load(m),
                    });
                }
                Stage::Unload => {
                    let set = self.set;
                    if let Some(s) = self.order.get_mut(..set) {
                        shuffle(&mut self.rng, s);
                    }
                    (self.pos, self.stage) = (0, Stage::Load);
                }
                Stage::Load => {
                    let phase = self.round;
                    if self.round >= self.rounds {
                        self.stage = Stage::Done;
                    } else {
                        self.round = self.round.saturating_add(1);
                        self.pick();
                        self.stage = Stage::Unload;
                    }
                    return Some(Step::Phase(phase));
                }
            }
        }
    }
}

/// One event of the module-trace replay, per allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// Allocate (type, size, alignment): the replay's next allocation,
    /// numbered from 0 in this order.
    Alloc(ExecmemType, usize, usize),
    /// Free allocation number `n`.
    Free(usize),
    /// A phase ended ([`Step::Phase`]).
    Phase(u32),
}

/// Expands `steps` over `mods` into [`Event`]s for `emit`: a load allocates
/// the module's core sections, then its init sections, then frees the init
/// ones; an unload frees the core ones. `core` is scratch space, one entry
/// per module (the number of its first core allocation, and how many). The
/// first error of `emit` ends the expansion.
pub fn expand<E>(
    mods: &[Module],
    steps: ModuleChurn<'_>,
    core: &mut [(usize, usize)],
    mut emit: impl FnMut(Event) -> Result<(), E>,
) -> Result<(), E> {
    // The number the next allocation gets.
    let mut next = 0usize;
    for step in steps {
        match step {
            Step::Load(m) => {
                let (Some(module), Some(slot)) = (mods.get(m), core.get_mut(m)) else {
                    continue;
                };
                let first = next;
                for (ty, size, align) in module.sections(false) {
                    emit(Event::Alloc(ty, size, align))?;
                    next = next.saturating_add(1);
                }
                *slot = (first, next.saturating_sub(first));
                let init = next;
                for (ty, size, align) in module.sections(true) {
                    emit(Event::Alloc(ty, size, align))?;
                    next = next.saturating_add(1);
                }
                for n in init..next {
                    emit(Event::Free(n))?;
                }
            }
            Step::Unload(m) => {
                let (first, count) = core.get(m).copied().unwrap_or((0, 0));
                for n in first..first.saturating_add(count) {
                    emit(Event::Free(n))?;
                }
            }
            Step::Phase(p) => emit(Event::Phase(p))?,
        }
    }
    Ok(())
}

/// Fisher-Yates shuffle of `v` with `rng`.
fn shuffle(rng: &mut Rng, v: &mut [u32]) {
    for i in (1..v.len()).rev() {
        let j = usize::try_from(rng.below((i as u64).saturating_add(1))).unwrap_or(0);
        if j <= i {
            v.swap(i, j);
        }
    }
}
