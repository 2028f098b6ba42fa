// SPDX-License-Identifier: GPL-2.0

//! debugfs `stats`: `key value` counters per type, per class and in total.

use super::buf::Buf;
use super::show::ShowFile;
use crate::execmem::allocator::{Allocator, ClassReport, TypeCounters};
use crate::execmem::backend::window::poke_max_bytes;
use crate::execmem::binpack::types::{Class, ExecmemType};
use core::fmt::Write;
use kernel::{prelude::*, sync::Arc};

/// `stats`: counters, `key value` per line.
pub struct StatsFile;

/// Per-type keys, in file order (values: [`type_values`]).
const TYPE_KEYS: [&str; 5] = ["allocs", "frees", "live", "live_bytes", "kernel_allocs"];

fn type_values(c: &TypeCounters) -> [u64; 5] {
    [c.allocs, c.frees, c.live, c.live_bytes, c.kernel_allocs]
}

/// Per-class keys, in file order, and whether the value is summed into a
/// `total.*` line (a wait, a queue length or a gauge is not); values:
/// [`class_values`].
const CLASS_KEYS: [(&str, bool); 14] = [
    ("packs", true),
    ("huge_packs", true),
    ("fallback_packs", true),
    ("map_failures", true),
    ("overflow_extents", true),
    ("overflow_pages", true),
    ("backing_bytes", true),
    ("pending", false),
    ("pokes", true),
    ("poke_bytes", true),
    ("refill_pokes", false),
    ("refill_max_ns", false),
    ("running", false),
    ("refilling", false),
];

fn class_values(r: &ClassReport) -> [u64; 14] {
    let e = &r.engine;
    let n = |v: usize| v as u64;
    [
        n(e.packs.saturating_add(e.extents)),
        r.huge_packs,
        r.fallback_packs,
        r.map_failures,
        n(e.overflow),
        n(e.overflow_pages),
        n(e.backing),
        n(r.pending),
        r.pokes,
        r.poke_bytes,
        r.refill_pokes,
        r.refill_max_ns,
        r.running,
        r.refilling,
    ]
}

/// Adds `values` into `sums`, position by position.
fn add<const N: usize>(sums: &mut [u64; N], values: [u64; N]) {
    for (s, v) in sums.iter_mut().zip(values) {
        *s = s.wrapping_add(v);
    }
}

impl ShowFile for StatsFile {
    type Shared = Allocator;

    fn show(alloc: &Arc<Allocator>, out: &mut Buf) -> Result {
        let (mut types, mut classes) = ([0u64; 5], [0u64; 14]);
        for class in Class::ALL {
            let r = alloc.report(class);
            for ty in ExecmemType::ALL.into_iter().filter(|t| t.class() == class) {
                let values = type_values(&r.types[ty]);
                for (key, v) in TYPE_KEYS.into_iter().zip(values) {
                    Buf::result(writeln!(out, "{}.{key} {v}", ty.name()))?;
                }
                add(&mut types, values);
            }
            let values = class_values(&r);
            for ((key, _), v) in CLASS_KEYS.into_iter().zip(values) {
                Buf::result(writeln!(out, "{}.{key} {v}", class.name()))?;
            }
            add(&mut classes, values);
        }
        // The totals: every per-type key, then the summed per-class keys,
        // with the allocator's mapped bytes after the backing bytes, then
        // the longest text-patching call.
        for (key, v) in TYPE_KEYS.into_iter().zip(types) {
            Buf::result(writeln!(out, "total.{key} {v}"))?;
        }
        for ((key, summed), v) in CLASS_KEYS.into_iter().zip(classes) {
            if summed {
                Buf::result(writeln!(out, "total.{key} {v}"))?;
            }
            if key == "backing_bytes" {
                Buf::result(writeln!(out, "total.mapped_bytes {}", alloc.mapped_bytes()))?;
            }
        }
        Buf::result(writeln!(out, "total.poke_max_bytes {}", poke_max_bytes()))?;
        Ok(())
    }
}
