// SPDX-License-Identifier: GPL-2.0

//! What a free does with its range: the written range, the decision, the
//! bounded queue of parked ranges. The kernel's allocator carries these out
//! (review finding 19: its parking logic had no host test).

use execmem_core::{
    arch, chain, on_free, Class, Dirty, Engine, ExecmemType, FakeSource, FreeAction, Parked, Ring,
    Rng, Span, StdStorage, CHAIN, GAP,
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

/// A parked block's memory on the host: `[addr, addr + len)`; `tag` stands
/// for what the kernel's window also compares (its permissions).
#[derive(Debug, PartialEq)]
struct Block {
    addr: usize,
    len: usize,
    tag: u8,
}

impl Span for Block {
    fn addr(&self) -> usize {
        self.addr
    }
    fn bytes(&self) -> usize {
        self.len
    }
    fn join(self, next: Self) -> Result<Self, (Self, Self)> {
        if self.addr + self.len == next.addr && self.tag == next.tag {
            Ok(Block {
                len: self.len + next.len,
                ..self
            })
        } else {
            Err((self, next))
        }
    }
}

/// Parks block `h` at `addr` of `len` bytes with `[off, off + n)` written.
fn park(
    q: &mut Ring<Parked<u32, Block>, StdStorage>,
    h: u32,
    addr: usize,
    len: usize,
    off: usize,
    n: usize,
) {
    let mut dirty = Dirty::clean();
    dirty.add(off, n);
    let win = Block { addr, len, tag: 0 };
    q.push(Parked {
        handle: h,
        win,
        dirty,
        since: u64::from(h) * 10,
    })
    .unwrap_or_else(|_| panic!("ring full"));
}

/// One chain off `q`: `(span, offset, len, handles)`.
fn take(q: &mut Ring<Parked<u32, Block>, StdStorage>) -> Option<(Block, usize, usize, Vec<u32>)> {
    let mut done = [None; CHAIN];
    let (w, off, len) = chain(q, &mut done)?;
    let hs: Vec<u32> = done
        .iter()
        .map_while(|d| *d)
        .map(|(h, since)| {
            assert_eq!(since, u64::from(h) * 10, "park time kept with its handle");
            h
        })
        .collect();
    Some((w, off, len, hs))
}

/// Frees in address order (a module unload) chain: one poke for up to
/// CHAIN blocks, over the span from the first written byte to the last.
#[test]
fn chain_joins_frees_in_address_order() {
    let mut q = Ring::new(256).unwrap();
    let n = CHAIN as u32 + 8;
    for h in 0..n {
        // 256-byte blocks from 0x10000, each written from byte 16 to 200.
        park(&mut q, h, 0x10000 + 256 * h as usize, 256, 16, 184);
    }
    let (w, off, len, hs) = take(&mut q).unwrap();
    assert_eq!(hs, (0..CHAIN as u32).collect::<Vec<_>>());
    assert_eq!((w.addr, w.len), (0x10000, 256 * CHAIN));
    assert_eq!((off, off + len), (16, 256 * (CHAIN - 1) + 200));
    let (w, off, len, hs) = take(&mut q).unwrap();
    assert_eq!(hs, (CHAIN as u32..n).collect::<Vec<_>>());
    assert_eq!(
        (w.addr, w.len, off, len),
        (0x10000 + 256 * CHAIN, 256 * 8, 16, 256 * 7 + 184)
    );
    assert!(take(&mut q).is_none() && q.is_empty());
}

/// A chain stops at a block that does not continue the span in memory,
/// and at one whose written bytes start more than GAP after the last ones.
#[test]
fn chain_stops_at_a_hole_or_a_long_gap() {
    // Written at the end of block 0 and the start of block 1: joined;
    // block 2 written from its start, 4 * GAP - 8 bytes after: not.
    let big = 4 * GAP;
    let mut q = Ring::new(16).unwrap();
    park(&mut q, 0, 0, big, big - 8, 8);
    park(&mut q, 1, big, big, 0, 8);
    park(&mut q, 2, 2 * big, big, 0, 8);
    let (w, off, len, hs) = take(&mut q).unwrap();
    assert_eq!((hs, w.len, off, len), (vec![0, 1], 2 * big, big - 8, 16));
    assert_eq!(take(&mut q).unwrap().3, vec![2]);
    // Blocks of GAP bytes, written [0, 8) then from `at`: GAP unwritten
    // bytes between the two ranges join, GAP + 8 do not.
    for (at, want) in [(8, vec![vec![0, 1]]), (16, vec![vec![0], vec![1]])] {
        let mut q = Ring::new(16).unwrap();
        park(&mut q, 0, 0, GAP, 0, 8);
        park(&mut q, 1, GAP, GAP, at, 8);
        let got: Vec<Vec<u32>> = core::iter::from_fn(|| take(&mut q).map(|c| c.3)).collect();
        assert_eq!(got, want, "second range written at {at}");
    }
    // Not adjacent (one byte apart): another chain.
    let mut q = Ring::new(16).unwrap();
    park(&mut q, 0, 0, 256, 0, 256);
    park(&mut q, 1, 257, 256, 0, 8);
    park(&mut q, 2, 513, 256, 0, 8);
    // Left in the queue, in order: block 1 then block 2, which continues it.
    assert_eq!(take(&mut q).unwrap().3, vec![0]);
    assert_eq!(take(&mut q).unwrap().3, vec![1, 2]);
}

/// A block the embedder will not join (other permissions) goes back to
/// the end of the queue: every parked range comes out of some chain
/// exactly once, whatever the order and the joins.
#[test]
fn chain_loses_nothing() {
    let mut rng = Rng::new(11);
    for _ in 0..2000 {
        let mut q = Ring::new(64).unwrap();
        let mut addr = 0usize;
        let n = 1 + rng.below(64) as u32;
        for h in 0..n {
            let len = 64 * (1 + rng.below(128) as usize);
            let off = 64 * rng.below(len as u64 / 64) as usize;
            let mut dirty = Dirty::clean();
            dirty.add(off, 1 + rng.below((len - off) as u64) as usize);
            let tag = u8::from(rng.below(8) == 0);
            // Mostly adjacent, sometimes a hole.
            addr += if rng.below(4) == 0 { 4096 } else { 0 };
            q.push(Parked {
                handle: h,
                win: Block { addr, len, tag },
                dirty,
                since: u64::from(h) * 10,
            })
            .unwrap_or_else(|_| panic!("ring full"));
            addr += len;
        }
        let mut seen = vec![0u32; n as usize];
        while let Some((w, off, len, hs)) = take(&mut q) {
            assert!(!hs.is_empty() && hs.len() <= CHAIN);
            assert!(off + len <= w.len, "the range to refill lies in the span");
            for h in hs {
                seen[h as usize] += 1;
            }
        }
        assert!(
            seen.iter().all(|&c| c == 1),
            "each range refilled once: {seen:?}"
        );
    }
}
