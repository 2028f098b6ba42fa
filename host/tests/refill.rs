// SPDX-License-Identifier: GPL-2.0

//! What a free does with its range: the written range, the decision, the
//! bounded queue of parked ranges. The kernel's allocator carries these out
//! (review finding 19: its parking logic had no host test).

use execmem_core::{
    arch, on_free, Class, Dirty, Engine, ExecmemType, FakeSource, FreeAction, Ring, Rng, StdStorage,
};

#[test]
fn dirty_covers_every_write_and_only_them() {
    let mut d = Dirty::clean();
    assert_eq!(d.range(), None);
    d.add(100, 0);
    assert!(d.is_clean(), "an empty write writes nothing");
    d.add(4096, 1);
    assert_eq!(d.range(), Some((4096, 1)));
    d.add(64, 10);
    assert_eq!(d.range(), Some((64, 4033)));
    d.add(5000, 8);
    assert_eq!(d.range(), Some((64, 5008 - 64)));
    // Saturates instead of wrapping.
    d.add(usize::MAX - 1, 10);
    assert_eq!(d.range(), Some((64, usize::MAX - 64)));
}

#[test]
fn free_decisions() {
    let clean = Dirty::clean();
    let mut one = Dirty::clean();
    one.add(0, 1);
    for class in Class::ALL {
        // Never written, or unmapped by the free: nothing to refill.
        for full in [false, true] {
            assert_eq!(on_free(class, &clean, false, full), FreeAction::Release);
            assert_eq!(on_free(class, &one, true, full), FreeAction::Release);
        }
    }
    assert_eq!(
        on_free(Class::Rw, &one, false, false),
        FreeAction::FillThenRelease
    );
    assert_eq!(
        on_free(Class::Rw, &one, false, true),
        FreeAction::FillThenRelease
    );
    for class in [Class::Rx, Class::Ro] {
        assert_eq!(on_free(class, &one, false, false), FreeAction::Park);
        assert_eq!(
            on_free(class, &one, false, true),
            FreeAction::RefillThenRelease
        );
    }
}

#[test]
fn ring_is_a_bounded_fifo() {
    let mut r: Ring<u32, StdStorage> = Ring::new(3).unwrap();
    assert!(r.is_empty() && !r.is_full());
    assert_eq!(r.pop(), None);
    for i in 0..3 {
        assert_eq!(r.push(i), Ok(()));
    }
    assert!(r.is_full());
    assert_eq!(r.push(9), Err(9), "a full ring gives the item back");
    assert_eq!(r.front(), Some(&0));
    assert_eq!(r.pop(), Some(0));
    assert_eq!(r.push(3), Ok(()));
    // Wraps around, in order.
    assert_eq!(
        (r.pop(), r.pop(), r.pop(), r.pop()),
        (Some(1), Some(2), Some(3), None)
    );
    assert_eq!(r.len(), 0);
    let mut z: Ring<u32, StdStorage> = Ring::new(0).unwrap();
    assert_eq!(z.push(1), Err(1));
    assert_eq!(z.pop(), None);
}

#[test]
fn frees_that_unmap_their_backing() {
    let mut s = FakeSource::new();
    let mut e = Engine::<StdStorage>::new(Class::Rx);
    let t = ExecmemType::Text;
    // A shared pack may be kept as the spare: its free must refill.
    let small = e.alloc(&mut s, t, 64, None).unwrap();
    assert!(!e.free_unmaps(small.handle));
    // An extent is released when empty: unmapped if it is its only one...
    let big = e.alloc(&mut s, t, 16 << 20, None).unwrap();
    assert!(e.free_unmaps(big.handle));
    // ... but not while its shared tail holds another allocation.
    let ext = e.alloc(&mut s, t, 3 * arch::PACK_SIZE / 2, None).unwrap();
    let tail = e.alloc(&mut s, t, arch::PACK_SIZE / 4, None).unwrap();
    assert_eq!(tail.pack, ext.pack);
    assert!(!e.free_unmaps(ext.handle));
    e.free(&mut s, tail.handle).unwrap();
    assert!(e.free_unmaps(ext.handle));
    let f = e.free(&mut s, ext.handle).unwrap();
    assert!(f.unmapped);
    let f = e.free(&mut s, big.handle).unwrap();
    assert!(f.unmapped);
    // A stale handle is not "unmapped".
    assert!(!e.free_unmaps(big.handle));
    e.check().unwrap();
}

/// arm64's trap is a 4-byte word: the range to refill is whole words that
/// cover every write, and no more than the words those writes touch, so
/// it stays inside a granule-sized, granule-aligned allocation. Checked
/// with the width given, whatever the host's own trap is.
#[test]
fn dirty_in_words_covers_whole_words() {
    let mut rng = Rng::new(7);
    for _ in 0..10_000 {
        let mut d = Dirty::clean();
        let (mut lo, mut hi) = (usize::MAX, 0);
        for _ in 0..1 + rng.below(4) {
            let off = rng.below(4096) as usize;
            let len = 1 + rng.below(64) as usize;
            d.add_in(off, len, 4);
            lo = lo.min(off);
            hi = hi.max(off + len);
        }
        let (o, n) = d.range().expect("written");
        assert_eq!((o % 4, n % 4), (0, 0), "whole words: {o} + {n}");
        assert!(o <= lo && o + n >= hi, "covers [{lo}, {hi}): {o} + {n}");
        assert_eq!(
            (o, o + n),
            (lo & !3, hi.next_multiple_of(4)),
            "no more than the words touched"
        );
    }
}
