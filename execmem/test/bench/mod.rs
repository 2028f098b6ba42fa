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

mod run;
mod subject;
mod workload;

use crate::execmem::allocator::Allocator;
use crate::execmem::backend::debugfs::{Failure, FileOps};
use crate::execmem::binpack::workload::{Module, MODULE_COLUMNS};
use crate::execmem::debugfs::buf::Buf;
use crate::execmem::debugfs::parse::{out_of_memory, parse_num};
use core::fmt::Write;
use kernel::{new_mutex, prelude::*, sync::Arc, sync::Mutex};
use run::{measure, phases, Run};
use subject::Baseline;
use workload::{parse_run, requests, Op, WORKLOADS};

/// Most allocations one run makes, and most modules in the trace.
pub(super) const MAX_N: usize = 100_000;

/// Most words a command has (`trace add` has 14): more is `EINVAL`, and
/// the words fit on the stack.
const MAX_WORDS: usize = 16;
/// Most churn rounds of `workload=real`.
pub(super) const MAX_ROUNDS: u32 = 20;

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

/// `bench`: write a command, read the table.
pub struct Bench(Arc<BenchState>);

impl FileOps for Bench {
    type Shared = BenchState;
    const WRITABLE: bool = true;

    fn open(shared: &Arc<BenchState>) -> Result<Self> {
        Ok(Bench(shared.clone()))
    }

    fn show(&self, out: &mut Buf) -> Result {
        out.push(self.0.inner.lock().last.as_bytes())
    }

    fn command(&self, input: &[u8], out: &mut Buf) -> core::result::Result<(), Failure> {
        let bad = |r| Failure::new(EINVAL, r);
        let mut words: [&[u8]; MAX_WORDS] = [&[]; MAX_WORDS];
        let mut n = 0;
        for w in input
            .split(|c| c.is_ascii_whitespace())
            .filter(|w| !w.is_empty())
        {
            *words.get_mut(n).ok_or(bad("too many words"))? = w;
            n += 1;
        }
        // A failed command changes nothing: room for the short replies
        // before the trace changes.
        out.reserve(3).map_err(out_of_memory)?;
        let mut inner = self.0.inner.lock();
        match words.get(..n).unwrap_or(&[]) {
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
