// SPDX-License-Identifier: GPL-2.0

//! The benchmark's output: the table and CSV of every allocator and
//! workload, and the module trace's phases.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use execmem_core::{Class, Footprint};

use crate::{Result1, MIB, PACK};

/// execmem_rs's phases of the module-trace replay in bytes, one
/// `phase=P class=C requested=R execmem_rs=B` line each: what
/// `scripts/replay-compare.sh` compares with the kernel bench's lines.
pub fn phase_lines(results: &[Result1]) -> String {
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
pub fn phase_table(results: &[Result1]) -> String {
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

pub fn render(results: &[Result1], instr: &BTreeMap<(String, String), f64>) -> (String, String) {
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
pub fn row(
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
