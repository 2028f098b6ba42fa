// SPDX-License-Identifier: GPL-2.0

//! Property tests: long random alloc/free/realloc sequences over all types,
//! sizes and alignments against a reference model.

use execmem_core::{
    arch, Class, Engine, Error, ExecmemType, FakeSource, Handle, Placement, StdStorage, MAX_ALLOC,
};
use proptest::prelude::*;
use proptest::strategy::ValueTree;

const PACK: usize = arch::PACK_SIZE;

#[derive(Clone, Debug)]
enum Op {
    Alloc {
        ty: usize,
        size: usize,
        align: Option<usize>,
    },
    Free(usize),
    Realloc(usize, usize),
    FreeStale(usize),
    FreeForeign(usize),
    FindForeign(usize),
    /// Free one live allocation larger than a pack (an extent's own), if any.
    FreeBig(usize),
    /// Free the most recent allocation.
    FreeLast,
}

fn size_strategy() -> impl Strategy<Value = usize> {
    prop_oneof![
        6 => 1usize..=512,
        4 => 1usize..=4096,
        3 => 1usize..=65536,
        1 => 65536usize..=PACK,
        1 => (PACK - 256)..=(PACK + 256),
        1 => PACK..=(5 * PACK),
    ]
}

fn align_strategy() -> impl Strategy<Value = Option<usize>> {
    prop_oneof![
        6 => Just(None),
        3 => (0u32..=12).prop_map(|s| Some(1usize << s)),
        1 => (13u32..=21).prop_map(|s| Some(1usize << s)),
    ]
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => (0usize..7, size_strategy(), align_strategy())
            .prop_map(|(ty, size, align)| Op::Alloc { ty, size, align }),
        7 => any::<usize>().prop_map(Op::Free),
        2 => (any::<usize>(), size_strategy()).prop_map(|(i, s)| Op::Realloc(i, s)),
        1 => any::<usize>().prop_map(Op::FreeStale),
        1 => any::<usize>().prop_map(Op::FreeForeign),
        1 => any::<usize>().prop_map(Op::FindForeign),
    ]
}

#[derive(Clone, Copy, Debug)]
struct Live {
    p: Placement,
    class: Class,
    req: usize,
    align: usize,
}

struct World {
    src: FakeSource,
    engines: [Engine<StdStorage>; 3],
    live: Vec<Live>,
    dead: Vec<(Class, Handle)>,
}

impl World {
    fn new() -> Self {
        Self::on(FakeSource::new())
    }

    /// Every operation, checked after each, then everything freed.
    fn run(mut self, ops: &[Op]) {
        for op in ops {
            self.step(op);
            self.check();
        }
        self.drain();
    }

    fn on(src: FakeSource) -> Self {
        World {
            src,
            engines: [
                Engine::new(Class::Rx),
                Engine::new(Class::Ro),
                Engine::new(Class::Rw),
            ],
            live: Vec::new(),
            dead: Vec::new(),
        }
    }

    /// What an engine and the source show from outside: an `Err` must
    /// leave all of it exactly as it was.
    fn snapshot(&self, class: Class) -> impl PartialEq + std::fmt::Debug {
        let e = &self.engines[class.index()];
        let packs: Vec<_> = (0..e.pack_slots())
            .map(|i| (e.pack_info(i), e.pack_map(i)))
            .collect();
        let st = e.stats();
        (
            st.live,
            st.used,
            st.backing,
            st.packs,
            st.spare,
            st.extents,
            st.overflow_pages,
            packs,
            self.src.regions.clone(),
            self.src.slots.clone(),
        )
    }

    fn alloc(&mut self, ty: ExecmemType, size: usize, align: Option<usize>) {
        let class = ty.class();
        let before = self.snapshot(class);
        let had_spare = self.engines[class.index()].stats().spare == 1;
        let maps = self.src.maps;
        let e = &mut self.engines[class.index()];
        let r = e.alloc(&mut self.src, ty, size, align);
        if had_spare && size <= PACK && r.is_ok() {
            // A mapped, empty pack holds any request up to a pack at any
            // alignment up to a pack: growing instead is a missed fit.
            assert_eq!(self.src.maps, maps, "mapped while a spare pack was free");
        }
        let bad_align = align.is_some_and(|a| !a.is_power_of_two() || a > PACK);
        if let Err(err) = r {
            assert_ne!(err, Error::Corrupted, "alloc({ty:?}, {size:#x}, {align:?})");
            assert_eq!(
                self.snapshot(class),
                before,
                "a failed alloc changed the engine"
            );
        }
        if size == 0 || bad_align {
            assert_eq!(r, Err(Error::Invalid));
        } else if size > MAX_ALLOC {
            assert_eq!(r, Err(Error::TooBig));
        } else if r == Err(Error::NoMemory) {
            // Only the pack slots are finite here: every slot is mapped.
            assert_eq!(self.engines[class.index()].pack_slots(), arch::MAX_PACKS);
        } else {
            let p = r.expect("alloc must succeed with an infinite source");
            let align = align.unwrap_or(64).max(64);
            self.live.push(Live {
                p,
                class,
                req: size,
                align,
            });
        }
    }

    fn free(&mut self, i: usize) {
        if self.live.is_empty() {
            return;
        }
        let l = self.live.swap_remove(i % self.live.len());
        let e = &mut self.engines[l.class.index()];
        let f = e
            .free(&mut self.src, l.p.handle)
            .expect("free of a live handle");
        assert_eq!((f.addr, f.size, f.ty), (l.p.addr, l.p.size, l.p.ty));
        self.dead.push((l.class, l.p.handle));
    }

    fn check(&self) {
        let mut all: Vec<(usize, usize)> = Vec::new();
        for l in &self.live {
            let p = &l.p;
            assert_eq!(p.size, l.req.div_ceil(64) * 64);
            assert_eq!(p.addr % l.align, 0, "alignment");
            assert_eq!(p.addr % 64, 0);
            assert!(p.align >= l.align);
            assert!(
                self.src.contains(l.class, p.addr, p.size),
                "outside backing"
            );
            let e = &self.engines[l.class.index()];
            let info = e.pack_info(p.pack.index()).expect("pack of a live alloc");
            assert_eq!(
                self.src.slots.get(&(l.class.index(), p.pack.index())),
                Some(&info.base),
                "PackId is not the slot the source mapped"
            );
            assert!(p.addr >= info.base && p.addr + p.size <= info.base + info.npacks * PACK);
            assert_eq!(p.addr - info.base, p.offset);
            if p.size > PACK {
                // An extent of at least ceil(size / 2 MiB) packs, whose
                // free tail other allocations may share.
                assert!(info.dedicated);
                assert!(info.npacks >= p.size.div_ceil(PACK));
                assert!(info.live >= 1);
            }
            assert_eq!(e.find(p.addr), Ok(p.handle));
            // placement() gives the address's natural alignment (up to
            // MAX_ALIGN), at least what was asked.
            let again = e.placement(p.handle).unwrap();
            assert_eq!(
                again,
                Placement {
                    align: again.align,
                    ..*p
                }
            );
            assert!(again.align >= p.align);
            all.push((p.addr, p.addr + p.size));
        }
        all.sort();
        for w in all.windows(2) {
            assert!(w[0].1 <= w[1].0, "overlap {:x?}", w);
        }
        for (ci, e) in self.engines.iter().enumerate() {
            e.check().expect("engine invariants");
            let class = Class::ALL[ci];
            let st = e.stats();
            let mine: Vec<_> = self.live.iter().filter(|l| l.class == class).collect();
            assert_eq!(st.used, mine.iter().map(|l| l.p.size).sum::<usize>());
            assert_eq!(st.live, mine.len());
            for t in ExecmemType::ALL {
                let want: usize = mine.iter().filter(|l| l.p.ty == t).map(|l| l.p.size).sum();
                assert_eq!(st.used_by_type[t], want);
            }
            assert_eq!(st.backing, self.src.backing(class));
            assert!(st.spare <= 1);
            let empty = (0..e.pack_slots())
                .filter_map(|i| e.pack_info(i))
                .filter(|p| p.used == 0)
                .count();
            assert!(empty <= 1, "more than one empty pack");
            assert_eq!(empty, st.spare);
        }
    }

    fn step(&mut self, op: &Op) {
        match *op {
            Op::Alloc { ty, size, align } => self.alloc(ExecmemType::ALL[ty], size, align),
            Op::Free(i) => self.free(i),
            Op::Realloc(i, size) => {
                if !self.live.is_empty() {
                    let i = i % self.live.len();
                    let (ty, align) = (self.live[i].p.ty, self.live[i].align);
                    self.free(i);
                    self.alloc(ty, size, Some(align));
                }
            }
            Op::FreeStale(i) => {
                if !self.dead.is_empty() {
                    let (c, h) = self.dead[i % self.dead.len()];
                    let e = &mut self.engines[c.index()];
                    assert_eq!(e.free(&mut self.src, h), Err(Error::NotAllocated));
                    assert_eq!(e.placement(h), Err(Error::NotAllocated));
                }
            }
            Op::FreeForeign(i) => {
                if !self.live.is_empty() {
                    let l = self.live[i % self.live.len()];
                    let other = (l.class.index() + 1 + i % 2) % 3;
                    let e = &mut self.engines[other];
                    assert_eq!(e.free(&mut self.src, l.p.handle), Err(Error::NotAllocated));
                    assert_eq!(e.find(l.p.addr), Err(Error::NotAllocated));
                }
            }
            Op::FreeLast => {
                if let Some(i) = self.live.len().checked_sub(1) {
                    self.free(i);
                }
            }
            Op::FreeBig(i) => {
                let big: Vec<usize> = (0..self.live.len())
                    .filter(|&j| self.live[j].p.size > PACK)
                    .collect();
                // Half the time the one in the highest slot, as a module
                // unloaded last-loaded-first would.
                let top = big
                    .iter()
                    .copied()
                    .max_by_key(|&j| self.live[j].p.pack.index());
                match top {
                    Some(j) if i % 2 == 0 => self.free(j),
                    Some(_) => self.free(big[i / 2 % big.len()]),
                    None => {}
                }
            }
            Op::FindForeign(i) => {
                // An address inside a live block but not its start, or
                // one far away, is never found as an allocation start.
                let addr = if self.live.is_empty() {
                    i
                } else {
                    let l = self.live[i % self.live.len()];
                    l.p.addr + 64 * (1 + i % (l.p.size / 64).max(1))
                };
                for e in &self.engines {
                    if let Ok(h) = e.find(addr) {
                        let l = self
                            .live
                            .iter()
                            .find(|l| l.p.handle == h)
                            .expect("found a live one");
                        assert_eq!(l.p.addr, addr);
                    }
                }
            }
        }
    }

    fn drain(&mut self) {
        while !self.live.is_empty() {
            self.free(0);
        }
        self.check();
        for e in &self.engines {
            let st = e.stats();
            assert!(st.packs <= 1 && st.extents == 0);
            for i in 0..e.pack_slots() {
                if let Some(p) = e.pack_info(i) {
                    assert_eq!((p.used, p.free_extents, p.largest_free), (0, 1, PACK));
                    assert_eq!(e.pack_map(i), Some([b'.'; 64]));
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn random_sequences(ops in prop::collection::vec(op_strategy(), 1..400)) {
        World::new().run(&ops);
    }

    /// The same on a source that maps at the lowest free base, as vmalloc
    /// does: a new pack or extent may land below live ones (the engine's
    /// address index then inserts in the middle).
    #[test]
    fn random_sequences_reusing_bases(ops in prop::collection::vec(op_strategy(), 1..400)) {
        World::on(FakeSource::reusing()).run(&ops);
    }

    #[test]
    fn small_churn(ops in prop::collection::vec(
        prop_oneof![
            3 => (0usize..7, 1usize..=3000, Just(None))
                .prop_map(|(ty, size, align)| Op::Alloc { ty, size, align }),
            2 => any::<usize>().prop_map(Op::Free),
        ], 1..1500)) {
        let mut w = World::new();
        for (n, op) in ops.iter().enumerate() {
            w.step(op);
            if n % 16 == 0 {
                w.check();
            }
        }
        w.check();
        w.drain();
    }

    #[test]
    fn invalid_arguments(ty in 0usize..7, size in any::<usize>(), align in any::<usize>()) {
        let mut w = World::new();
        w.alloc(ExecmemType::ALL[ty], size % (2 * MAX_ALLOC), Some(align % (4 * PACK)));
        w.alloc(ExecmemType::ALL[ty], size, Some(align));
        w.check();
        w.drain();
    }
}

/// Long, skewed runs in one class: many multi-pack extents (3 MiB, their
/// 1 MiB tails shared), 2 MiB-aligned small allocations that pin pack and
/// extent boundaries, 64 KiB churn that fragments the packs into overflow
/// extents, and frees. Short uniform sequences never reach "overflow budget
/// spent + at least 16 extents + a spare pack"; these must, and there every
/// allocation must still succeed or fail without changing anything.
fn skewed_ops() -> impl Strategy<Value = Vec<Op>> {
    let rx = || prop_oneof![Just(0usize), Just(4), Just(5), Just(6)];
    let alloc = |ty, size, align| Op::Alloc { ty, size, align };
    // Bursts, as module loads and unloads come: extents with a live 1 MiB
    // neighbour in their tail, 2 MiB-aligned small allocations, extents
    // freed and their fronts pinned at once, churn, frees, 2 MiB requests.
    let burst = prop_oneof![
        3 => (1usize..20, rx()).prop_map(move |(n, ty)| (0..n)
            .flat_map(|_| [alloc(ty, 3 * PACK / 2 * 2, None), alloc(ty, PACK / 2, None)])
            .collect::<Vec<_>>()),
        2 => (1usize..300, rx()).prop_map(move |(n, ty)| vec![alloc(ty, 64, Some(PACK)); n]),
        4 => (1usize..20, any::<usize>(), rx()).prop_map(move |(n, i, ty)| (0..n)
            .flat_map(|k| [Op::FreeBig(i.wrapping_add(2 * k)), alloc(ty, 64, Some(PACK))])
            .collect()),
        2 => prop::collection::vec((rx(), 1usize..=320).prop_map(move |(ty, k)| alloc(ty, k << 10, None)), 1..50),
        2 => prop::collection::vec(any::<usize>().prop_map(Op::Free), 1..80),
        2 => (rx(), 1usize..4096).prop_map(move |(ty, size)| vec![alloc(ty, size, None), Op::FreeLast]),
        3 => (rx(), (PACK - 65536)..=PACK).prop_map(move |(ty, size)| vec![alloc(ty, size, Some(PACK))]),
    ];
    prop::collection::vec(burst, 200).prop_map(|v| v.into_iter().flatten().collect())
}

#[test]
fn long_skewed_sequences_reach_the_corners() {
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = skewed_ops();
    let mut corner_allocs = 0usize;
    for _case in 0..6 {
        let ops = strategy.new_tree(&mut runner).unwrap().current();
        let mut w = World::new();
        for (n, op) in ops.iter().enumerate() {
            let st = w.engines[0].stats();
            // This allocation cannot take an overflow extent (the budget is
            // spent for its size), a spare pack is mapped, and at least 16
            // extents offer large free blocks ahead of it.
            let corner = match *op {
                Op::Alloc { size, .. } => {
                    st.spare == 1
                        && st.extents >= 16
                        && st.overflow_pages + size.div_ceil(arch::PAGE_SIZE)
                            > execmem_core::OVERFLOW_PAGES as usize
                }
                _ => false,
            };
            corner_allocs += usize::from(corner);
            w.step(op);
            if corner || n % 64 == 0 {
                w.check();
            }
        }
        w.check();
        w.drain();
    }
    assert!(
        corner_allocs >= 50,
        "only {corner_allocs} allocations in the corner state; the test no longer reaches it"
    );
    eprintln!("{corner_allocs} allocations in the corner state");
}

// ---- the provider's address map against a BTreeMap --------------------------

#[derive(Clone, Debug)]
enum MapOp {
    Insert(usize),
    Remove(usize),
    Bump(usize),
}

/// Keys as the JIT's allocations have them: 64-byte aligned, clustered in
/// a few 2 MiB packs, so runs form and the backward shift is exercised.
fn map_op() -> impl Strategy<Value = MapOp> {
    let key =
        (0usize..4, 0usize..512).prop_map(|(p, o)| 0xffff_ffff_c000_0000 + (p << 21) + (o << 6));
    prop_oneof![
        3 => key.clone().prop_map(MapOp::Insert),
        2 => key.clone().prop_map(MapOp::Remove),
        1 => key.prop_map(MapOp::Bump),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn addrmap_matches_btreemap(ops in prop::collection::vec(map_op(), 1..1500)) {
        let mut m = execmem_core::AddrMap::<u64, StdStorage>::new();
        let mut model = std::collections::BTreeMap::new();
        let mut peak = 0;
        for (n, op) in ops.iter().enumerate() {
            let n = n as u64;
            match *op {
                MapOp::Insert(k) => {
                    let r = m.insert(k, n);
                    if let std::collections::btree_map::Entry::Vacant(e) = model.entry(k) {
                        prop_assert_eq!(r, Ok(()));
                        e.insert(n);
                    } else {
                        prop_assert_eq!(r, Err((Error::Invalid, n)));
                    }
                }
                MapOp::Remove(k) => prop_assert_eq!(m.remove(k), model.remove(&k)),
                MapOp::Bump(k) => {
                    if let Some(v) = m.get_mut(k) {
                        *v += 1;
                    }
                    if let Some(v) = model.get_mut(&k) {
                        *v += 1;
                    }
                }
            }
            peak = peak.max(model.len());
            prop_assert_eq!(m.len(), model.len());
            let cap = m.capacity();
            // At most half full, a power of two, and not oversized: at
            // most 16 slots, or at least an eighth full since the last
            // shrink could have happened.
            prop_assert!(cap == 0 || cap.is_power_of_two());
            prop_assert!(m.len() * 2 <= cap || cap == 0 && m.is_empty());
            prop_assert!(cap <= 16 || m.len() * 8 >= cap / 2);
        }
        for (k, v) in &model {
            prop_assert_eq!(m.get_mut(*k).copied(), Some(*v));
        }
        let keys: Vec<usize> = model.keys().copied().collect();
        for k in keys {
            prop_assert_eq!(m.remove(k), model.remove(&k));
        }
        prop_assert!(m.is_empty());
        prop_assert!(m.capacity() <= 16 || peak == 0);
    }
}

/// An operation of the shortcut's differential test, on the rx class.
#[derive(Clone, Debug)]
enum ShortOp {
    Alloc {
        ty: usize,
        size: usize,
        align: Option<usize>,
    },
    Free(usize),
}

/// Mostly the JIT's shape (small, unaligned), with enough frees and
/// larger or aligned requests that size lists hold one block, several, or
/// blocks in several packs.
fn short_op() -> impl Strategy<Value = ShortOp> {
    let ty = prop_oneof![Just(0usize), Just(4), Just(5), Just(6)];
    let size = prop_oneof![
        8 => 1usize..=4096,
        2 => 4096usize..=65536,
        1 => 65536usize..=PACK,
        1 => PACK..=(3 * PACK),
    ];
    let align = prop_oneof![
        8 => Just(None),
        2 => (0u32..=21).prop_map(|s| Some(1usize << s)),
    ];
    prop_oneof![
        3 => (ty, size, align).prop_map(|(ty, size, align)| ShortOp::Alloc { ty, size, align }),
        2 => any::<usize>().prop_map(ShortOp::Free),
    ]
}

/// Two rx engines given the same operations, one with the search's
/// shortcut for a list's sole block (`sole_block`, and the in-place carve
/// it may choose) and one that always walks the lists and `carve`s: every
/// placement, free and, at the end, every pack must be the same.
struct Twin {
    src: [FakeSource; 2],
    e: [Engine<StdStorage>; 2],
    live: Vec<[Handle; 2]>,
}

impl Twin {
    fn new() -> Self {
        let mut e = [Engine::<StdStorage>::new(Class::Rx), Engine::new(Class::Rx)];
        e[1].search_always();
        Twin {
            src: [FakeSource::new(), FakeSource::new()],
            e,
            live: Vec::new(),
        }
    }

    /// Allocates in both; the placement (or error) must be the same.
    /// Returns its pack slot.
    fn alloc(
        &mut self,
        ty: ExecmemType,
        size: usize,
        align: Option<usize>,
    ) -> Result<Option<usize>, TestCaseError> {
        let r0 = self.e[0].alloc(&mut self.src[0], ty, size, align);
        let r1 = self.e[1].alloc(&mut self.src[1], ty, size, align);
        let key = |r: &Result<Placement, Error>| {
            r.map(|p| (p.addr, p.size, p.offset, p.align, p.pack.index(), p.ty))
        };
        prop_assert_eq!(
            key(&r0),
            key(&r1),
            "alloc({:?}, {:#x}, {:?})",
            ty,
            size,
            align
        );
        let slot = r0.as_ref().ok().map(|p| p.pack.index());
        if let (Ok(p0), Ok(p1)) = (r0, r1) {
            self.live.push([p0.handle, p1.handle]);
        }
        Ok(slot)
    }

    /// Frees live allocation `i` in both; the results must be the same.
    fn free(&mut self, i: usize) -> Result<(), TestCaseError> {
        let [h0, h1] = self.live.swap_remove(i);
        prop_assert_eq!(
            self.e[0].free(&mut self.src[0], h0),
            self.e[1].free(&mut self.src[1], h1)
        );
        Ok(())
    }

    /// Both engines are consistent and hold the same packs and regions.
    fn same_packs(&self) -> Result<(), TestCaseError> {
        let e = &self.e;
        prop_assert_eq!(e[0].check(), Ok(()));
        prop_assert_eq!(e[1].check(), Ok(()));
        prop_assert_eq!(e[0].pack_slots(), e[1].pack_slots());
        for i in 0..e[0].pack_slots() {
            prop_assert_eq!(e[0].pack_info(i), e[1].pack_info(i));
        }
        prop_assert_eq!(&self.src[0].regions, &self.src[1].regions);
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// The shortcut places as the search does (see [`Twin`]), over random
    /// operations of the JIT's shape and others.
    #[test]
    fn shortcut_places_as_the_search(ops in prop::collection::vec(short_op(), 1..600)) {
        let mut t = Twin::new();
        for op in &ops {
            match *op {
                ShortOp::Alloc { ty, size, align } => {
                    t.alloc(ExecmemType::ALL[ty], size, align)?;
                }
                ShortOp::Free(i) if !t.live.is_empty() => t.free(i % t.live.len())?,
                ShortOp::Free(_) => {}
            }
        }
        t.same_packs()?;
    }
}

/// The shortcut places as the search does (see [`Twin`]) where the random
/// sequences cannot go: a list whose sole pack is past the first 64 (its
/// bit in the second word of the list's row), and a list with blocks in
/// packs 64 slots or more apart, where the walk takes the higher pack's
/// (the tighter fit).
#[test]
fn shortcut_places_as_the_search_past_64_packs() -> Result<(), TestCaseError> {
    const KIB: usize = 1024;
    let mut t = Twin::new();
    let text = ExecmemType::ALL[0];
    // 66 packs full, slot 1 with a 9 728-byte piece (152 granules) first,
    // then 4 KiB pieces and one of 2 560 bytes to its end; slot 66 takes
    // one 4 KiB piece.
    for _ in 0..512 {
        t.alloc(text, 4 * KIB, None)?;
    }
    let odd = t.live.len();
    t.alloc(text, 9728, None)?;
    for _ in 0..509 {
        t.alloc(text, 4 * KIB, None)?;
    }
    t.alloc(text, 2560, None)?;
    prop_assert_eq!(
        t.e[0].pack_info(1).map(|p| (p.live, p.free_extents)),
        Some((511, 0))
    );
    while t.e[0].pack_slots() < 67 {
        t.alloc(text, 4 * KIB, None)?;
    }
    prop_assert_eq!(t.e[0].pack_info(66).map(|p| p.live), Some(1));
    // The JIT's shape, off slot 66's free tail: each its list's sole block.
    let jit = [1000, 312, 4000, 64, 2900, 777];
    for size in jit {
        t.alloc(text, size, None)?;
    }
    // Holes in slot 66: several blocks of one pack.
    let n = t.live.len();
    t.free(n - 2)?;
    t.free(n - 5)?;
    for size in jit {
        t.alloc(text, size, None)?;
    }
    // A hole of 8 320 bytes (130 granules) in slot 66 before a guard (only
    // the tail holds its 64 KiB, so it follows at once), then
    // slot 1's 9 728 bytes: one list, blocks in both words of its row. An
    // 8 000-byte request fits both; the walk takes slot 66's.
    prop_assert_eq!(t.alloc(text, 8320, None)?, Some(66));
    t.alloc(text, 64 * KIB, None)?;
    let n = t.live.len();
    t.free(n - 2)?;
    t.free(odd)?;
    prop_assert_eq!(t.e[0].pack_info(1).map(|p| p.free_extents), Some(1));
    prop_assert_eq!(t.alloc(text, 8000, None)?, Some(66));
    t.same_packs()
}
