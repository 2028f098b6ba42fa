// SPDX-License-Identifier: GPL-2.0

//! Regressions: exact sequences that once broke the engine, replayed as they
//! were reported. Each must leave the engine consistent (`check()`), and an
//! `Err` must leave it exactly as it was.

use execmem_core::{Engine, Error, ExecmemType, FakeSource, StdStorage};

type E = Engine<StdStorage>;

const T: ExecmemType = ExecmemType::Text;

/// Review finding 3: a bounded scan of 16 blocks of at least 2 MiB missed
/// the spare, `overflows()` refused because a spare existed, and the engine
/// mapped a new pack whose bookkeeping then failed with `Corrupted`
/// (`EFAULT`), leaking the mapping.
#[test]
fn spare_behind_sixteen_big_blocks() {
    let mut s = FakeSource::new();
    let mut e = E::new(execmem_core::Class::Rx);
    let mut big = Vec::new();
    for _ in 0..17 {
        big.push(e.alloc(&mut s, T, 0x300000, None).unwrap());
        e.alloc(&mut s, T, 0x100000, None).unwrap();
    }
    let small = e.alloc(&mut s, T, 64, None).unwrap();
    let last = big.pop().unwrap();
    e.free(&mut s, last.handle).unwrap();
    for _ in 0..256 {
        e.alloc(&mut s, T, 64, Some(0x200000)).unwrap();
    }
    e.alloc(&mut s, T, 64, Some(0x200000)).unwrap();
    while let Some(b) = big.pop() {
        e.free(&mut s, b.handle).unwrap();
        e.alloc(&mut s, T, 64, Some(0x200000)).unwrap();
    }
    e.free(&mut s, small.handle).unwrap();
    e.check().unwrap();
    let before = (e.stats(), s.mapped, s.pages, s.maps, s.unmaps);
    match e.alloc(&mut s, T, 0x200000, Some(0x200000)) {
        Ok(p) => {
            assert_eq!(p.offset % 0x200000, 0);
            e.check().unwrap();
        }
        Err(err) => {
            assert_ne!(
                err,
                Error::Corrupted,
                "a valid sequence must never be Corrupted"
            );
            // An error changes nothing, backing included.
            assert_eq!(
                (e.stats(), s.mapped, s.pages),
                (before.0, before.1, before.2)
            );
            e.check().unwrap();
        }
    }
}

/// Review finding 15: one free could unmap twice, the extent it emptied and
/// the idle spare, doubling the worst-case work of a free. Now a free unmaps
/// at most once; the idle spare decays at the next free instead.
#[test]
fn one_free_unmaps_at_most_once() {
    let mut s = FakeSource::new();
    let mut e = E::new(execmem_core::Class::Rx);
    let pinned = e.alloc(&mut s, T, 64, None).unwrap();
    let full = e
        .alloc(&mut s, T, execmem_core::arch::PACK_SIZE, None)
        .unwrap();
    e.free(&mut s, full.handle).unwrap();
    assert_eq!(e.stats().spare, 1);
    // An extent filled by its one allocation: its free always unmaps it.
    let x = e
        .alloc(&mut s, T, 2 * execmem_core::arch::PACK_SIZE, None)
        .unwrap();
    // Let the class go idle for longer than the hysteresis window.
    let small: Vec<_> = (0..=execmem_core::HYST_OPS)
        .map(|_| e.alloc(&mut s, T, 64, None).unwrap())
        .collect();
    let before = s.unmaps;
    e.free(&mut s, x.handle).unwrap();
    assert_eq!(s.unmaps - before, 1, "a free unmapped more than once");
    assert_eq!(e.stats().spare, 1);
    e.free(&mut s, small[0].handle).unwrap();
    assert_eq!(
        s.unmaps - before,
        2,
        "the idle spare did not decay at the next free"
    );
    assert_eq!(e.stats().spare, 0);
    e.free(&mut s, pinned.handle).unwrap();
    e.check().unwrap();
}
