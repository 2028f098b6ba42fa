// SPDX-License-Identifier: GPL-2.0

//! The bench's workloads as steps: the arguments of `run`, and what each
//! workload allocates and frees (the module workloads through the shared
//! [`crate::execmem::binpack::workload`]).

use super::{MAX_N, MAX_ROUNDS};
use crate::execmem::backend::debugfs::Failure;
use crate::execmem::binpack::types::{ExecmemType, MAX_ALLOC};
use crate::execmem::binpack::workload::{
    bpf_size, expand, Event, Module, ModuleChurn, Rng, BPF_SEED,
};
use crate::execmem::debugfs::parse::{out_of_memory, parse_num};
use kernel::prelude::*;

/// One allocation request of a workload.
#[derive(Clone, Copy)]
pub(super) struct Req {
    pub(super) ty: ExecmemType,
    pub(super) size: usize,
    pub(super) align: Option<usize>,
}

/// One step of a workload.
#[derive(Clone, Copy)]
pub(super) enum Op {
    Alloc(Req),
    /// Free what the `n`th [`Op::Alloc`] of the workload allocated.
    Free(usize),
    /// A phase of the module-trace replay ended ([`Event::Phase`]).
    Phase(u32),
}

/// Workloads, in `workload=` order.
pub(super) const WORKLOADS: [&str; 4] = ["fixed", "trace", "bpf", "real"];

pub(super) struct Args {
    /// Index into [`WORKLOADS`].
    pub(super) workload: usize,
    pub(super) n: usize,
    pub(super) size: usize,
    pub(super) write: bool,
    pub(super) rounds: u32,
    pub(super) seed: u64,
}

pub(super) fn parse_run(words: &[&[u8]]) -> core::result::Result<Args, Failure> {
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
pub(super) fn push(ops: &mut KVVec<Op>, op: Op) -> core::result::Result<(), Failure> {
    if ops.len() >= MAX_N.saturating_mul(2) {
        return Err(Failure::new(E2BIG, "workload above 200000 steps"));
    }
    ops.push(op, GFP_KERNEL).map_err(out_of_memory)
}

/// The steps of workload `a` (the module workloads over `trace`).
pub(super) fn requests(a: &Args, trace: &[Module]) -> core::result::Result<KVVec<Op>, Failure> {
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
            // Scratch space of the expansion: one entry per module.
            let mut core = KVVec::with_capacity(mods.len(), GFP_KERNEL).map_err(out_of_memory)?;
            for _ in mods {
                order.push(0u32, GFP_KERNEL).map_err(out_of_memory)?;
                core.push((0usize, 0usize), GFP_KERNEL)
                    .map_err(out_of_memory)?;
            }
            let churn = ModuleChurn::new(order.as_mut_slice(), a.seed, a.rounds)
                .ok_or(Failure::new(E2BIG, "too many modules"))?;
            expand(mods, churn, core.as_mut_slice(), |ev| {
                let op = match ev {
                    Event::Alloc(ty, size, align) => Op::Alloc(Req {
                        ty,
                        size,
                        align: Some(align),
                    }),
                    Event::Free(n) => Op::Free(n),
                    Event::Phase(p) => Op::Phase(p),
                };
                push(&mut v, op)
            })?;
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
