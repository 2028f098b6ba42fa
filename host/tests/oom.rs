// SPDX-License-Identifier: GPL-2.0

//! Simulated OOM: metadata pushes and pack maps fail on the Nth call. Every
//! failure must be an `Err(NoMemory)` that leaves the engine exactly as it
//! was, and the engine must keep working afterwards.

use std::cell::Cell;

use execmem_core::{Class, Engine, Error, ExecmemType, FakeSource, PackInfo, Rng, Storage, Vector};

thread_local! {
    /// Pushes left before the next one fails (`u64::MAX`: never).
    static PUSHES_LEFT: Cell<u64> = const { Cell::new(u64::MAX) };
}

/// A `Vec` whose pushes fail when the thread's countdown reaches zero.
struct FailVec<T>(Vec<T>);

/// Counts one growth down: `NoMemory` when the countdown is at zero.
fn grow() -> Result<(), Error> {
    let left = PUSHES_LEFT.get();
    if left == 0 {
        return Err(Error::NoMemory);
    }
    PUSHES_LEFT.set(left.saturating_sub(1));
    Ok(())
}

impl<T> Vector<T> for FailVec<T> {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn get(&self, i: usize) -> Option<&T> {
        self.0.get(i)
    }
    fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        self.0.get_mut(i)
    }
    fn try_push(&mut self, v: T) -> Result<(), Error> {
        grow()?;
        self.0.push(v);
        Ok(())
    }
    fn pop(&mut self) -> Option<T> {
        self.0.pop()
    }
    fn try_reserve(&mut self, additional: usize) -> Result<(), Error> {
        if self.0.capacity() - self.0.len() >= additional {
            return Ok(());
        }
        grow()?;
        self.0.reserve(additional);
        Ok(())
    }
    fn push_within_capacity(&mut self, v: T) -> Result<(), T> {
        if self.0.len() < self.0.capacity() {
            self.0.push(v);
            Ok(())
        } else {
            Err(v)
        }
    }
}

struct FailStorage;

impl Storage for FailStorage {
    type Vec<T> = FailVec<T>;
    fn new_vec<T>() -> FailVec<T> {
        FailVec(Vec::new())
    }
}

type E = Engine<FailStorage>;

fn snapshot(e: &E) -> (execmem_core::ClassStats, Vec<(usize, PackInfo, [u8; 64])>) {
    let packs = (0..e.pack_slots())
        .filter_map(|i| Some((i, e.pack_info(i)?, e.pack_map(i)?)))
        .collect();
    (e.stats(), packs)
}

#[test]
fn every_failure_is_clean() {
    let sizes = [1usize, 64, 100, 4096, 65536, 1 << 20, 3 << 20, 200, 3000];
    let mut failures = 0;
    for seed in 1..=40u64 {
        let mut rng = Rng::new(seed);
        let mut src = FakeSource::new();
        let mut e = E::new(Class::Rx);
        let mut live = Vec::new();
        for _ in 0..300 {
            // Arm a failure within the next few pushes or maps.
            match rng.next_u64() % 4 {
                0 => PUSHES_LEFT.set(rng.next_u64() % 4),
                1 => src.maps_left = rng.next_u64() % 2,
                _ => {
                    PUSHES_LEFT.set(u64::MAX);
                    src.maps_left = u64::MAX;
                }
            }
            if live.is_empty() || !rng.next_u64().is_multiple_of(3) {
                let size = sizes[(rng.next_u64() % sizes.len() as u64) as usize];
                let align = if rng.next_u64().is_multiple_of(4) {
                    Some(1 << (rng.next_u64() % 22))
                } else {
                    None
                };
                let before = snapshot(&e);
                let mapped = (src.mapped, src.pages);
                match e.alloc(&mut src, ExecmemType::Bpf, size, align) {
                    Ok(p) => live.push(p.handle),
                    Err(err) => {
                        assert_eq!(err, Error::NoMemory);
                        assert_eq!(snapshot(&e), before, "failed alloc changed state");
                        assert_eq!(
                            (src.mapped, src.pages),
                            mapped,
                            "failed alloc leaked a mapping"
                        );
                        failures += 1;
                    }
                }
            } else {
                // Free never allocates, so it never fails.
                let i = (rng.next_u64() % live.len() as u64) as usize;
                let h = live.swap_remove(i);
                e.free(&mut src, h).expect("free");
            }
            e.check().expect("invariants after every step");
        }
        PUSHES_LEFT.set(u64::MAX);
        src.maps_left = u64::MAX;
        for h in live.drain(..) {
            e.free(&mut src, h).expect("free");
        }
        e.check().expect("invariants");
        assert!(e.stats().packs <= 1);
        e.release_all(&mut src);
        assert_eq!((src.mapped, src.pages), (0, 0));
    }
    assert!(failures > 100, "only {failures} injected failures hit");
}

/// The provider's address map: a failed growth gives the value back and
/// leaves the map as it was; a failed shrink leaves a working table; no
/// value is ever dropped by the map but by its owner.
#[test]
fn addrmap_failures_are_clean() {
    use execmem_core::AddrMap;
    use std::rc::Rc;

    let token = Rc::new(());
    let mut m = AddrMap::<Rc<()>, FailStorage>::new();
    let key = |i: usize| 0xffff_ffff_c000_0000usize + (i << 6);
    let mut refused = 0;
    for i in 0..200 {
        // Every 7th insert may need to grow: fail its first push.
        PUSHES_LEFT.set(if i % 7 == 0 { 0 } else { u64::MAX });
        let before = m.capacity();
        match m.insert(key(i), token.clone()) {
            Ok(_) => {}
            Err((e, v)) => {
                assert_eq!(e, Error::NoMemory);
                assert_eq!(m.capacity(), before);
                drop(v);
                refused += 1;
            }
        }
        PUSHES_LEFT.set(u64::MAX);
        assert_eq!(Rc::strong_count(&token), 1 + m.len());
    }
    assert!(refused > 0, "no growth met a failure");
    let held: Vec<usize> = (0..200).filter(|&i| m.get_mut(key(i)).is_some()).collect();
    assert_eq!(held.len(), m.len());
    // Shrinking fails throughout: every removal still works.
    PUSHES_LEFT.set(0);
    for &i in &held {
        assert!(m.remove(key(i)).is_some());
        assert_eq!(Rc::strong_count(&token), 1 + m.len());
    }
    PUSHES_LEFT.set(u64::MAX);
    assert!(m.is_empty());
}

/// A 2-pack extent whose 4 MiB - 64 allocation was freed: its free front
/// is mapped, and the class's other space is merely fragmented (so a
/// request below a pack's size asks for an overflow extent first). Returns
/// the extent's live 64-byte tail.
fn extent_with_free_front() -> (FakeSource, E, execmem_core::Placement) {
    let mut src = FakeSource::new();
    let mut e = E::new(Class::Rx);
    let big = e
        .alloc(&mut src, ExecmemType::Text, (4 << 20) - 64, None)
        .expect("a 2-pack extent");
    let tail = e
        .alloc(&mut src, ExecmemType::Text, 64, None)
        .expect("its 64-byte tail");
    assert_eq!(tail.pack, big.pack, "the tail is the extent's");
    e.free(&mut src, big.handle).expect("free");
    (src, e, tail)
}

/// An overflow extent that cannot be mapped does not end the search: free
/// space of a pack's size or more in an extent (here the front a freed
/// 4 MiB module left) serves the request without mapping anything.
#[test]
fn failed_overflow_falls_back_to_extent_space() {
    let (mut src, mut e, tail) = extent_with_free_front();
    // The front is free and mapped; the overflow extent would need a map.
    src.maps_left = 0;
    let mapped = (src.mapped, src.pages);
    let r = e.alloc(&mut src, ExecmemType::Text, 512 << 10, None);
    let p = r.expect("served from the extent's free front, not refused");
    assert_eq!(src.refused, 1, "the overflow extent was tried first");
    assert_eq!(p.pack, tail.pack, "placed in the extent");
    assert_eq!((src.mapped, src.pages), mapped, "nothing mapped");
    e.check().expect("invariants");
    src.maps_left = u64::MAX;
    e.free(&mut src, p.handle).expect("free");
    e.free(&mut src, tail.handle).expect("free");
    e.release_all(&mut src);
    assert_eq!((src.mapped, src.pages), (0, 0));
}

/// The same request through a source that only probes (the kernel
/// allocator's first pass, which maps nothing): its `WouldGrow` ends the
/// request with the engine exactly as it was, so that the real pass that
/// follows places it once. (Had the probe's refusal let the search go on,
/// the probe would have placed it in the extent, and the real pass again:
/// a block no handle frees.)
#[test]
fn probe_refusing_to_grow_places_nothing() {
    let (mut src, mut e, tail) = extent_with_free_front();
    let before = snapshot(&e);
    src.maps_left = 0;
    src.refusal = Error::WouldGrow;
    let r = e.alloc(&mut src, ExecmemType::Text, 512 << 10, None);
    assert_eq!(r.map(|p| p.pack), Err(Error::WouldGrow));
    assert_eq!(src.refused, 1, "the overflow extent was asked for");
    assert_eq!(snapshot(&e), before, "the probe changed the engine");
    e.check().expect("invariants");
    // The real pass maps the overflow extent and places it there.
    src.maps_left = u64::MAX;
    let p = e
        .alloc(&mut src, ExecmemType::Text, 512 << 10, None)
        .expect("placed");
    assert_eq!(e.stats().overflow, 1, "in an overflow extent");
    e.free(&mut src, p.handle).expect("free");
    e.free(&mut src, tail.handle).expect("free");
    assert_eq!(e.stats().live, 0);
    e.release_all(&mut src);
    assert_eq!((src.mapped, src.pages), (0, 0));
}
