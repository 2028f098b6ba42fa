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

mod models;
mod report;
mod traces;

use std::collections::BTreeMap;
use std::time::Instant;

use execmem_core::{arch, Class, ExecmemType, Footprint};

use models::{BpfProgPack, Execmem, Model, RoxCache, Vmalloc};
use report::{phase_lines, phase_table, render};
use traces::{bpf_trace, fill_trace, read_modules, real_trace, Ev, Phase, Trace};

const PACK: usize = arch::PACK_SIZE;
const PAGE: usize = arch::PAGE_SIZE;
const MIB: usize = 1 << 20;

// ---------------------------------------------------------------- replay ----

pub struct Result1 {
    pub alloc: &'static str,
    pub unit: &'static str,
    pub workload: &'static str,
    pub ops: usize,
    pub ns: f64,
    pub foot: [Footprint; 3],
    pub breakdown: String,
    pub trace_req_final: [usize; 3],
    pub trace_req_peak: [usize; 3],
    /// Each phase of the trace and the backing per class at its end.
    pub phases: Vec<(Phase, [usize; 3])>,
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
