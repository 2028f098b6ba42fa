// SPDX-License-Identifier: GPL-2.0

//! Unit tests of the type table and the engine.

use execmem_core::{
    arch, Class, Engine, Error, ExecmemType, FakeSource, Fill, StdStorage, MAX_ALLOC,
};

type E = Engine<StdStorage>;

const MIB: usize = 1 << 20;

#[test]
fn type_table() {
    let names = [
        "text",
        "data",
        "rodata",
        "ro_after_init",
        "bpf",
        "ftrace",
        "kprobes",
    ];
    for (t, n) in ExecmemType::ALL.iter().zip(names) {
        assert_eq!(t.name(), n);
        assert_eq!(ExecmemType::from_name(n.as_bytes()), Some(*t));
        let i = t.info();
        assert_eq!(i.granularity, 64);
        assert_eq!(i.align, 64);
        let want = match t {
            ExecmemType::Text | ExecmemType::Bpf | ExecmemType::Ftrace | ExecmemType::Kprobes => {
                Class::Rx
            }
            ExecmemType::Rodata | ExecmemType::RoAfterInit => Class::Ro,
            ExecmemType::Data => Class::Rw,
        };
        assert_eq!(i.class, want);
        let fill = if want == Class::Rx { 0xcc } else { 0 };
        assert_eq!(i.fill, Fill::byte(fill));
    }
    assert_eq!(ExecmemType::from_name(b"nope"), None);
    assert_eq!(ExecmemType::from_name(b"Text"), None);
    for (i, c) in Class::ALL.iter().enumerate() {
        assert_eq!(c.index(), i);
    }
    assert_eq!(Class::Rx.perms(), "r-x");
    assert_eq!(Class::Ro.perms(), "r--");
    assert_eq!(Class::Rw.perms(), "rw-");
    assert_eq!(Class::Ro.name(), "ro");
}

#[test]
fn basic_alloc_free() {
    let mut s = FakeSource::new();
    let mut e = E::new(Class::Rx);
    let a = e.alloc(&mut s, ExecmemType::Text, 100, None).unwrap();
    assert_eq!(a.size, 128);
    assert_eq!(a.offset, 0);
    assert_eq!(a.addr % arch::PACK_SIZE, 0);
    let b = e.alloc(&mut s, ExecmemType::Bpf, 1, None).unwrap();
    assert_eq!(b.size, 64);
    assert_eq!(b.pack, a.pack);
    assert_eq!(b.offset, 128);
    e.check().unwrap();
    let st = e.stats();
    assert_eq!(st.packs, 1);
    assert_eq!(st.used, 192);
    assert_eq!(st.live, 2);
    assert_eq!(st.used_by_type[ExecmemType::Bpf], 64);
    assert_eq!(e.find(b.addr), Ok(b.handle));
    assert_eq!(e.find(b.addr + 64), Err(Error::NotAllocated));
    assert_eq!(e.find_containing(a.addr + 100).unwrap().handle, a.handle);
    assert_eq!(e.find(a.addr + 64), Err(Error::NotAllocated));
    let f = e.free(&mut s, a.handle).unwrap();
    assert_eq!((f.addr, f.size, f.unmapped), (a.addr, 128, false));
    assert_eq!(e.free(&mut s, a.handle), Err(Error::NotAllocated));
    e.check().unwrap();
    e.free(&mut s, b.handle).unwrap();
    e.check().unwrap();
    // The last pack stays as the spare.
    let st = e.stats();
    assert_eq!((st.packs, st.spare, st.used, st.live), (1, 1, 0, 0));
    let info = e.pack_info(0).unwrap();
    assert_eq!(info.free_extents, 1);
    assert_eq!(info.largest_free, arch::PACK_SIZE);
    assert_eq!(e.release_spare(&mut s), Ok(true));
    assert_eq!(e.stats().packs, 0);
    assert_eq!(s.mapped, 0);
    e.check().unwrap();
}

#[test]
fn edge_cases() {
    let mut s = FakeSource::new();
    let mut e = E::new(Class::Rx);
    let t = ExecmemType::Text;
    assert_eq!(e.alloc(&mut s, t, 0, None), Err(Error::Invalid));
    assert_eq!(e.alloc(&mut s, t, MAX_ALLOC + 1, None), Err(Error::TooBig));
    assert_eq!(e.alloc(&mut s, t, usize::MAX, None), Err(Error::TooBig));
    assert_eq!(e.alloc(&mut s, t, 64, Some(0)), Err(Error::Invalid));
    assert_eq!(e.alloc(&mut s, t, 64, Some(96)), Err(Error::Invalid));
    assert_eq!(e.alloc(&mut s, t, 64, Some(4 * MIB)), Err(Error::Invalid));
    assert_eq!(
        e.alloc(&mut s, ExecmemType::Data, 64, None),
        Err(Error::Invalid)
    );
    assert_eq!(s.maps, 0);
    // Small alignments are the granule.
    let a = e.alloc(&mut s, t, 1, Some(1)).unwrap();
    let b = e.alloc(&mut s, t, 1, Some(8)).unwrap();
    assert_eq!(b.offset, 64);
    assert_eq!(a.align, 64);
    // MAX_ALLOC itself works, as a dedicated extent.
    let big = e.alloc(&mut s, t, MAX_ALLOC, None).unwrap();
    assert_eq!(e.stats().extent_packs, 32);
    e.check().unwrap();
    // Foreign handles: another engine of the same class.
    let mut s2 = FakeSource::new();
    let mut e2 = E::new(Class::Rx);
    let x = e2.alloc(&mut s2, t, 64, None).unwrap();
    assert_eq!(e.free(&mut s, x.handle), Err(Error::NotAllocated));
    assert_eq!(e2.free(&mut s2, a.handle), Err(Error::NotAllocated));
    // Foreign addresses.
    assert_eq!(e.find(0), Err(Error::NotAllocated));
    assert_eq!(e.find(usize::MAX), Err(Error::NotAllocated));
    assert_eq!(
        e.find(x.addr + 7 * arch::PACK_SIZE),
        Err(Error::NotAllocated)
    );
    // Stale handle: free, reallocate the same spot, old handle fails.
    e.free(&mut s, a.handle).unwrap();
    let c = e.alloc(&mut s, t, 1, None).unwrap();
    assert_eq!(c.addr, a.addr);
    assert_ne!(c.handle, a.handle);
    assert_eq!(e.free(&mut s, a.handle), Err(Error::NotAllocated));
    assert_eq!(e.placement(a.handle), Err(Error::NotAllocated));
    assert_eq!(e.placement(c.handle).unwrap().addr, c.addr);
    let f = e.free(&mut s, big.handle).unwrap();
    assert!(f.unmapped);
    assert_eq!(e.free(&mut s, big.handle), Err(Error::NotAllocated));
    e.check().unwrap();
    e.free(&mut s, b.handle).unwrap();
    e.free(&mut s, c.handle).unwrap();
    e.check().unwrap();
    assert_eq!(e.release_all(&mut s), 0);
    assert_eq!(s.mapped, 0);
}

#[test]
fn alignment() {
    let mut s = FakeSource::new();
    let mut e = E::new(Class::Ro);
    let t = ExecmemType::Rodata;
    let _a = e.alloc(&mut s, t, 64, None).unwrap();
    for shift in 6..=21 {
        let al = 1usize << shift;
        let p = e.alloc(&mut s, t, 100, Some(al)).unwrap();
        assert_eq!(p.addr % al, 0, "align {al}");
        assert_eq!(p.align, al);
        e.check().unwrap();
    }
    // A 2 MiB aligned, 2 MiB sized allocation takes a whole pack.
    let w = e
        .alloc(&mut s, t, arch::PACK_SIZE, Some(arch::PACK_SIZE))
        .unwrap();
    assert_eq!(w.offset, 0);
    e.check().unwrap();
}

#[test]
fn coalesce_and_reuse() {
    let mut s = FakeSource::new();
    let mut e = E::new(Class::Rw);
    let t = ExecmemType::Data;
    let v: Vec<_> = (0..100)
        .map(|i| e.alloc(&mut s, t, 64 * (1 + i % 7), None).unwrap())
        .collect();
    e.check().unwrap();
    // Free every other one, then the rest: everything coalesces.
    for p in v.iter().step_by(2) {
        e.free(&mut s, p.handle).unwrap();
        e.check().unwrap();
    }
    assert!(e.pack_info(0).unwrap().free_extents >= 49);
    for p in v.iter().skip(1).step_by(2) {
        e.free(&mut s, p.handle).unwrap();
        e.check().unwrap();
    }
    let info = e.pack_info(0).unwrap();
    assert_eq!((info.free_extents, info.used, info.live), (1, 0, 0));
    assert_eq!(e.pack_map(0).unwrap(), [b'.'; 64]);
}

#[test]
fn pack_boundary_ping_pong_maps_once() {
    let mut s = FakeSource::new();
    let mut e = E::new(Class::Rx);
    let t = ExecmemType::Text;
    // Fill one pack exactly.
    let full = e.alloc(&mut s, t, arch::PACK_SIZE, None).unwrap();
    assert_eq!(e.stats().packs, 1);
    assert_eq!(e.pack_map(full.pack.index()).unwrap(), [b'#'; 64]);
    for _ in 0..1000 {
        let p = e.alloc(&mut s, t, 64, None).unwrap();
        e.free(&mut s, p.handle).unwrap();
    }
    assert_eq!((s.maps, s.unmaps), (2, 0));
    assert_eq!((e.stats().maps, e.stats().unmaps), (2, 0));
    assert_eq!(e.stats().spare, 1);
    // A second empty pack is released, keeping one spare.
    let a = e.alloc(&mut s, t, 64, None).unwrap();
    let b = e.alloc(&mut s, t, arch::PACK_SIZE, None).unwrap();
    assert_eq!(s.maps, 3);
    e.free(&mut s, full.handle).unwrap();
    e.free(&mut s, a.handle).unwrap();
    assert_eq!(e.stats().spare, 1);
    assert_eq!(s.unmaps, 1);
    e.check().unwrap();
    e.free(&mut s, b.handle).unwrap();
    assert_eq!(s.unmaps, 2);
    assert_eq!(e.stats().packs, 1);
    e.check().unwrap();
}

#[test]
fn slow_ping_pong_is_bounded_and_idle_spare_decays() {
    use execmem_core::binpack::engine::HYST_OPS;
    let mut s = FakeSource::new();
    let mut e = E::new(Class::Rx);
    let t = ExecmemType::Text;
    let full = e.alloc(&mut s, t, arch::PACK_SIZE, None).unwrap();
    let other = e.alloc(&mut s, t, 64, None).unwrap();
    let keep: Vec<_> = (0..8)
        .map(|_| e.alloc(&mut s, t, 64, None).unwrap())
        .collect();
    // The pack of `other` empties long after the class last grew: it is
    // released, not kept as a spare.
    for _ in 0..HYST_OPS {
        let x = e.alloc(&mut s, ExecmemType::Bpf, 64, None).unwrap();
        e.free(&mut s, x.handle).unwrap();
    }
    e.free(&mut s, other.handle).unwrap();
    for k in keep {
        e.free(&mut s, k.handle).unwrap();
    }
    // (The last free emptied it: not recent, so unmapped.)
    assert_eq!(e.stats().spare, 0);
    assert_eq!(e.stats().packs, 1);
    e.check().unwrap();
    // A fast ping-pong keeps its spare, and it decays once idle.
    let p = e.alloc(&mut s, t, 64, None).unwrap();
    e.free(&mut s, p.handle).unwrap();
    assert_eq!(e.stats().spare, 1);
    let maps = s.maps;
    for _ in 0..100 {
        let p = e.alloc(&mut s, t, 64, None).unwrap();
        e.free(&mut s, p.handle).unwrap();
    }
    assert_eq!(s.maps, maps);
    e.free(&mut s, full.handle).unwrap();
    e.check().unwrap();
    // An idle spare decays: allocations that never need it (they fit in
    // the hole of another pack) release it after HYST_OPS operations.
    let mut s = FakeSource::new();
    let mut e = E::new(Class::Rx);
    let half = e.alloc(&mut s, t, arch::PACK_SIZE / 2, None).unwrap();
    let b = e.alloc(&mut s, t, arch::PACK_SIZE, None).unwrap();
    e.free(&mut s, b.handle).unwrap();
    assert_eq!(e.stats().spare, 1);
    for _ in 0..=HYST_OPS {
        let x = e.alloc(&mut s, t, 64, None).unwrap();
        assert_eq!(x.pack, half.pack);
        e.free(&mut s, x.handle).unwrap();
    }
    assert_eq!(e.stats().spare, 0);
    assert_eq!((s.maps, s.unmaps), (2, 1));
    e.free(&mut s, half.handle).unwrap();
    e.check().unwrap();
}

#[test]
fn extent_tail_is_shared() {
    let mut s = FakeSource::new();
    let mut e = E::new(Class::Ro);
    let t = ExecmemType::Rodata;
    let big = e.alloc(&mut s, t, arch::PACK_SIZE + MIB, None).unwrap();
    let st = e.stats();
    assert_eq!((st.extents, st.extent_packs, st.packs), (1, 2, 0));
    // Small allocations go into the extent's free tail, no new pack.
    let small: Vec<_> = (0..4)
        .map(|_| e.alloc(&mut s, t, 4096, None).unwrap())
        .collect();
    assert_eq!(s.maps, 1);
    for x in &small {
        assert_eq!(x.pack, big.pack);
        assert!(x.offset >= arch::PACK_SIZE + MIB);
    }
    e.check().unwrap();
    // Freeing the big one keeps the extent while the tail is in use; its
    // front is a free block that small or big allocations can reuse.
    let f = e.free(&mut s, big.handle).unwrap();
    assert!(!f.unmapped);
    let again = e.alloc(&mut s, t, arch::PACK_SIZE + MIB, None).unwrap();
    assert_eq!((again.pack, again.offset), (big.pack, 0));
    assert_eq!(s.maps, 1);
    e.check().unwrap();
    e.free(&mut s, again.handle).unwrap();
    // The extent is released as soon as it is empty, never kept as spare.
    for x in small {
        e.free(&mut s, x.handle).unwrap();
        e.check().unwrap();
    }
    let st = e.stats();
    assert_eq!((st.extents, st.packs, st.spare, s.mapped), (0, 0, 0, 0));
}

#[test]
fn dense_packs_preferred() {
    let mut s = FakeSource::new();
    let mut e = E::new(Class::Rx);
    let t = ExecmemType::Bpf;
    // Two packs: the first almost full, the second nearly empty.
    let a = e.alloc(&mut s, t, arch::PACK_SIZE - 4096, None).unwrap();
    let b = e.alloc(&mut s, t, 8192, None).unwrap();
    assert_ne!(a.pack, b.pack);
    // A small allocation goes into the fuller pack's small hole.
    let c = e.alloc(&mut s, t, 512, None).unwrap();
    assert_eq!(c.pack, a.pack);
    e.check().unwrap();
}

#[test]
fn pack_map_cells() {
    let mut s = FakeSource::new();
    let mut e = E::new(Class::Rx);
    let t = ExecmemType::Text;
    let a = e.alloc(&mut s, t, 32 * 1024 + 64, None).unwrap();
    let m = e.pack_map(a.pack.index()).unwrap();
    assert_eq!(&m[..3], b"#:.");
    assert_eq!(e.pack_map(99), None);
}

#[test]
fn map_failure_changes_nothing() {
    let mut fail = FakeSource::failing_after(0);
    let mut e = E::new(Class::Rx);
    assert_eq!(
        e.alloc(&mut fail, ExecmemType::Text, 64, None),
        Err(Error::NoMemory)
    );
    assert_eq!(
        e.alloc(&mut fail, ExecmemType::Text, 8 * MIB, None),
        Err(Error::NoMemory)
    );
    e.check().unwrap();
    assert_eq!(e.stats().packs, 0);
}

#[test]
fn misaligned_base_rejected() {
    struct Bad(u32);
    impl execmem_core::PackSource for Bad {
        fn map(&mut self, _: Class, _slot: usize, _: usize) -> Result<usize, Error> {
            Ok(0x1000)
        }
        fn unmap(&mut self, _: Class, _slot: usize, _: usize, _: usize) {
            self.0 += 1;
        }
        fn map_pages(
            &mut self,
            _: Class,
            _slot: usize,
            _: usize,
            _: usize,
        ) -> Result<usize, Error> {
            Ok(0x1001)
        }
        fn unmap_pages(&mut self, _: Class, _slot: usize, _: usize, _: usize) {
            self.0 += 1;
        }
    }
    let mut e = E::new(Class::Rx);
    let mut b = Bad(0);
    assert_eq!(
        e.alloc(&mut b, ExecmemType::Text, 64, None),
        Err(Error::Invalid)
    );
    assert_eq!(b.0, 1);
    e.check().unwrap();
}

#[test]
fn pack_limit_is_an_error() {
    let mut s = FakeSource::new();
    let mut e = E::new(Class::Rw);
    let t = ExecmemType::Data;
    let mut v = Vec::new();
    for _ in 0..arch::MAX_PACKS {
        v.push(e.alloc(&mut s, t, arch::PACK_SIZE, None).unwrap());
    }
    assert_eq!(e.alloc(&mut s, t, 64, None), Err(Error::NoMemory));
    e.check().unwrap();
    e.free(&mut s, v.pop().unwrap().handle).unwrap();
    e.alloc(&mut s, t, 64, None).unwrap();
    e.check().unwrap();
}

#[test]
fn metadata_sizes() {
    use execmem_core::binpack::engine::{Node, Pack};
    // Documented in Documentation/engine.rst and engine/mod.rs.
    assert_eq!(std::mem::size_of::<Node>(), 36);
    assert!(
        std::mem::size_of::<Pack>() <= 280,
        "{}",
        std::mem::size_of::<Pack>()
    );
    // Small enough to build on a 16 KiB kernel stack and to reset in place
    // (review finding 12: it was ~4.3 KiB, built on the stack before boxing
    // and again in release_all); the per-list pack bitmaps are on the heap.
    assert!(
        std::mem::size_of::<E>() <= 1024,
        "{}",
        std::mem::size_of::<E>()
    );
    eprintln!(
        "node {} pack {} engine {}",
        std::mem::size_of::<Node>(),
        std::mem::size_of::<Pack>(),
        std::mem::size_of::<E>()
    );
}

/// One pack of 32 x 64 KiB, every other one freed: 1 MiB free in total,
/// no hole above 64 KiB.
fn fragmented<P: execmem_core::PackSource>(s: &mut P) -> (E, Vec<execmem_core::Placement>) {
    let mut e = E::new(Class::Rx);
    let all: Vec<_> = (0..32)
        .map(|_| e.alloc(s, ExecmemType::Text, 64 * 1024, None).unwrap())
        .collect();
    for p in all.iter().skip(1).step_by(2) {
        e.free(s, p.handle).unwrap();
    }
    assert_eq!((e.stats().packs, e.stats().spare), (1, 0));
    (e, all.into_iter().step_by(2).collect())
}

#[test]
fn fragmented_packs_overflow_to_pages() {
    let mut s = FakeSource::new();
    let (mut e, _kept) = fragmented(&mut s);
    let p = e.alloc(&mut s, ExecmemType::Bpf, 96 * 1024, None).unwrap();
    let st = e.stats();
    assert_eq!((st.packs, st.overflow, st.overflow_pages), (1, 1, 24));
    assert_eq!(st.backing, arch::PACK_SIZE + 96 * 1024);
    assert_eq!((s.mapped, s.pages), (1, 24));
    assert_eq!(e.find_containing(p.addr + 4096).unwrap().handle, p.handle);
    assert_eq!(e.find(p.addr + 64), Err(Error::NotAllocated));
    assert_eq!(e.pack_info(p.pack.index()).unwrap().pages, 24);
    e.check().unwrap();
    let f = e.free(&mut s, p.handle).unwrap();
    assert!(f.unmapped);
    assert_eq!((e.stats().overflow, s.pages), (0, 0));
    e.check().unwrap();
}

#[test]
fn overflow_honours_alignment() {
    let mut s = FakeSource::new();
    let (mut e, _kept) = fragmented(&mut s);
    let a = e
        .alloc(&mut s, ExecmemType::Text, 70_000, Some(1 << 17))
        .unwrap();
    let b = e.alloc(&mut s, ExecmemType::Text, 70_000, None).unwrap();
    assert_eq!(s.page_aligns, [1 << 17, arch::PAGE_SIZE]);
    assert_eq!(a.addr % (1 << 17), 0);
    assert_eq!(b.addr % arch::PAGE_SIZE, 0);
    assert_eq!(e.stats().overflow_pages, 2 * 70_000usize.div_ceil(4096));
    e.check().unwrap();
}

#[test]
fn overflow_budget_then_a_pack() {
    let mut s = FakeSource::new();
    let (mut e, _kept) = fragmented(&mut s);
    // 96 KiB is 24 pages: 10 fit the 256-page budget, the 11th gets a pack.
    for i in 1..=10 {
        e.alloc(&mut s, ExecmemType::Text, 96 * 1024, None).unwrap();
        assert_eq!(e.stats().overflow, i);
    }
    assert_eq!(execmem_core::OVERFLOW_PAGES, 256);
    e.alloc(&mut s, ExecmemType::Text, 96 * 1024, None).unwrap();
    let st = e.stats();
    assert_eq!((st.overflow, st.overflow_pages, st.packs), (10, 240, 2));
    e.check().unwrap();
}

#[test]
fn growth_maps_a_pack_not_overflow() {
    let mut s = FakeSource::new();
    let mut e = E::new(Class::Ro);
    // A full pack has no room at all: the next allocation is growth.
    e.alloc(&mut s, ExecmemType::Rodata, arch::PACK_SIZE - 4096, None)
        .unwrap();
    e.alloc(&mut s, ExecmemType::Rodata, 8192, None).unwrap();
    assert_eq!((e.stats().packs, e.stats().overflow), (2, 0));
    // The first allocation of a class maps a pack too.
    let mut f = E::new(Class::Rw);
    f.alloc(&mut s, ExecmemType::Data, 64, None).unwrap();
    assert_eq!((f.stats().packs, f.stats().overflow), (1, 0));
    e.check().unwrap();
}

/// The shared BPF-size workload has the distribution its docs quote: half
/// below 500 B, three quarters below 2 KiB, nothing outside 64 B..64 KiB.
#[test]
fn bpf_size_distribution() {
    let mut rng = execmem_core::Rng::new(execmem_core::BPF_SEED);
    let n = 100_000;
    let sizes: Vec<usize> = (0..n).map(|_| execmem_core::bpf_size(&mut rng)).collect();
    let frac = |lim: usize| sizes.iter().filter(|&&s| s < lim).count() as f64 / n as f64;
    assert!(
        (frac(500) - 0.50).abs() < 0.01,
        "below 500 B: {}",
        frac(500)
    );
    assert!(
        (frac(2048) - 0.75).abs() < 0.01,
        "below 2 KiB: {}",
        frac(2048)
    );
    assert!(sizes.iter().all(|&s| (64..65536).contains(&s)));
    // Every seed, 0 included, gives its own stream.
    let first = |seed| execmem_core::Rng::new(seed).next_u64();
    assert_ne!(first(0), first(1));
    assert_ne!(first(0), 0);
}

/// `PerType`/`PerClass` index by the enum, in `ALL` order.
#[test]
fn per_key_arrays_index_by_the_enum() {
    use execmem_core::binpack::types::{PerClass, PerType};
    let mut t = PerType::<u8>::default();
    t[ExecmemType::Bpf] = 5;
    t[ExecmemType::Text] = 1;
    assert_eq!(
        t.values().copied().collect::<Vec<_>>(),
        [1, 0, 0, 0, 5, 0, 0]
    );
    assert!(t.iter().all(|(ty, &v)| v == t[ty]));
    let c = PerClass::new(["a", "b", "c"]);
    assert_eq!(c[Class::Ro], "b");
    assert_eq!(Class::Rw.name(), "rw");
    assert_eq!(Class::Rx.fill(), arch::TRAP);
    assert_eq!(Class::Ro.perms(), "r--");
}

/// A fill is a byte or a 4-byte little-endian word, repeated; `types`
/// prints it in its own width.
#[test]
fn fill_patterns() {
    let int3 = Fill::byte(0xcc);
    assert_eq!(int3.width(), 1);
    assert_eq!(int3.as_byte(), Some(0xcc));
    assert_eq!(int3.as_word(), 0xcccc_cccc);
    assert_eq!(int3.to_string(), "0xcc");
    assert_eq!(Fill::byte(0).to_string(), "0x00");
    let brk = Fill::word(0xd420_2000);
    assert_eq!(brk.width(), 4);
    assert_eq!(brk.as_byte(), None);
    assert_eq!(brk.as_word(), 0xd420_2000);
    assert_eq!(brk.to_string(), "0xd4202000");
    let bytes: Vec<u8> = (0..8).map(|i| brk.byte_at(i)).collect();
    assert_eq!(bytes, [0x00, 0x20, 0x20, 0xd4, 0x00, 0x20, 0x20, 0xd4]);
    assert_eq!(Fill::word(0x4141_4141).as_byte(), Some(0x41));
    assert_eq!(arch::GRANULE % arch::TRAP.width(), 0);
}

/// The module-trace replay loads every module once, then each round
/// unloads a set of loaded modules (about 30 %) and loads exactly those
/// again; a phase ends with every module loaded; the same seed gives the
/// same steps and another seed others.
#[test]
fn module_churn_steps() {
    use execmem_core::{ModuleChurn, Step};
    let n = 1000;
    let steps = |seed| {
        let mut order = vec![0u32; n];
        ModuleChurn::new(&mut order, seed, 3)
            .unwrap()
            .collect::<Vec<_>>()
    };
    let s = steps(0);
    let mut loaded = vec![false; n];
    let (mut phases, mut unloads, mut first) = (0, 0, Vec::new());
    for st in &s {
        match *st {
            Step::Load(m) => {
                assert!(!loaded[m], "module {m} loaded twice");
                loaded[m] = true;
                if phases == 0 {
                    first.push(m);
                }
            }
            Step::Unload(m) => {
                assert!(loaded[m], "module {m} unloaded while not loaded");
                loaded[m] = false;
                unloads += 1;
            }
            Step::Phase(p) => {
                assert_eq!(p, phases, "phases in order");
                assert!(
                    loaded.iter().all(|&l| l),
                    "phase {p} ends with every module loaded"
                );
                phases += 1;
            }
        }
    }
    assert_eq!(phases, 4, "the load phase and 3 rounds");
    assert!(
        (3 * n * 25 / 100..3 * n * 35 / 100).contains(&unloads),
        "{unloads} unloads"
    );
    assert_ne!(
        first,
        (0..n).collect::<Vec<_>>(),
        "the load order is shuffled"
    );
    assert_eq!(s, steps(0));
    assert_ne!(s, steps(1));
}

/// A module row: 6 sizes then 6 alignments; sections split into core and
/// init; alignments clamped to 64 B..4 KiB; bad rows refused with a reason.
#[test]
fn module_row() {
    use execmem_core::{ExecmemType as T, Module};
    let m = Module::from_columns(&[100, 10, 0, 30, 40, 50, 16, 8192, 32, 8, 64, 1]).unwrap();
    let core: Vec<_> = m.sections(false).collect();
    let init: Vec<_> = m.sections(true).collect();
    assert_eq!(
        core,
        [
            (T::Text, 100, 64),
            (T::RoAfterInit, 30, 64),
            (T::Data, 40, 64)
        ]
    );
    assert_eq!(init, [(T::Text, 10, 4096), (T::Data, 50, 64)]);
    assert!(Module::from_columns(&[1; 11]).is_err());
    assert!(Module::from_columns(&[1; 13]).is_err());
    let mut bad = [1u64; 12];
    bad[7] = 48;
    assert_eq!(
        Module::from_columns(&bad),
        Err("alignment not a power of two")
    );
    bad[7] = 1;
    bad[0] = 65 << 20;
    assert_eq!(Module::from_columns(&bad), Err("section size above 64 MiB"));
}

/// The expansion of the replay numbers allocations in order, frees each
/// init section right after its module's load and each core section once
/// at its unload, and ends every phase with exactly the core sections of
/// every module live.
#[test]
fn module_churn_expand() {
    use execmem_core::{expand, Event, Module, ModuleChurn};
    let mods: Vec<Module> = (0..50u64)
        .map(|i| {
            Module::from_columns(&[100 + i, i % 3, 50, 0, 20 + i, 7, 16, 16, 8, 8, 64, 8]).unwrap()
        })
        .collect();
    let core_per_module: Vec<usize> = mods.iter().map(|m| m.sections(false).count()).collect();
    let mut order = vec![0u32; mods.len()];
    let mut core = vec![(0, 0); mods.len()];
    let churn = ModuleChurn::new(&mut order, 7, 3).unwrap();
    let (mut live, mut allocs, mut phases) = (Vec::<bool>::new(), 0usize, 0u32);
    expand(&mods, churn, &mut core, |ev| -> Result<(), ()> {
        match ev {
            Event::Alloc(..) => {
                live.push(true);
                allocs += 1;
            }
            Event::Free(n) => {
                assert!(live[n], "allocation {n} freed twice or never made");
                live[n] = false;
            }
            Event::Phase(p) => {
                assert_eq!(p, phases);
                phases += 1;
                let want: usize = core_per_module.iter().sum();
                assert_eq!(live.iter().filter(|&&l| l).count(), want, "phase {p}");
            }
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(phases, 4);
    assert!(allocs > mods.len() * 3, "{allocs} allocations");
    // An error from the consumer ends the expansion with it.
    let mut order = vec![0u32; mods.len()];
    let churn = ModuleChurn::new(&mut order, 7, 3).unwrap();
    let mut seen = 0;
    let r = expand(&mods, churn, &mut core, |_| {
        seen += 1;
        if seen == 10 {
            Err("stop")
        } else {
            Ok(())
        }
    });
    assert_eq!((r, seen), (Err("stop"), 10));
}

/// The JIT's pattern: allocations carved one after the other from a
/// pack's free tail (the tail stays in its size list, so the engine keeps
/// it in place and takes the front with a new node). Each lands right
/// after the previous one, every lookup finds its block, and frees in any
/// order merge back to one free pack.
#[test]
fn tail_carves_are_contiguous_and_merge_back() {
    let mut s = FakeSource::new();
    let mut e = E::new(Class::Rx);
    let first = e.alloc(&mut s, ExecmemType::Bpf, 4000, None).unwrap();
    let mut live = vec![first];
    let mut next = first.offset + first.size;
    for i in 0..300usize {
        let size = 64 + (i * 397) % 1900;
        let pl = e.alloc(&mut s, ExecmemType::Bpf, size, None).unwrap();
        assert_eq!((pl.pack, pl.offset), (first.pack, next), "allocation {i}");
        next = pl.offset + pl.size;
        live.push(pl);
        e.check().unwrap();
    }
    for pl in &live {
        assert_eq!(e.find(pl.addr), Ok(pl.handle));
        assert_eq!(
            e.find_containing(pl.addr + pl.size - 1).unwrap().handle,
            pl.handle
        );
    }
    let info = e.pack_info(first.pack.index()).unwrap();
    assert_eq!(
        (info.free_extents, info.largest_free),
        (1, arch::PACK_SIZE - next)
    );
    // Free every other one, then the rest: holes, then merges both ways.
    for pl in live.iter().step_by(2).chain(live.iter().skip(1).step_by(2)) {
        e.free(&mut s, pl.handle).unwrap();
        e.check().unwrap();
    }
    let info = e.pack_info(first.pack.index()).unwrap();
    assert_eq!((info.free_extents, info.largest_free), (1, arch::PACK_SIZE));
    // A pack's first block carved from the front: it becomes the first.
    // 1 100 granules: the 64-byte remainder stays in its size list.
    let big = e.alloc(&mut s, ExecmemType::Bpf, 1100 * 64, None).unwrap();
    let after = e.alloc(&mut s, ExecmemType::Bpf, 64, None).unwrap();
    e.free(&mut s, big.handle).unwrap();
    let front = e.alloc(&mut s, ExecmemType::Bpf, 64, None).unwrap();
    assert_eq!((front.pack, front.offset), (big.pack, big.offset));
    e.check().unwrap();
    assert_eq!(e.find(front.addr), Ok(front.handle));
    e.free(&mut s, after.handle).unwrap();
    e.free(&mut s, front.handle).unwrap();
    e.check().unwrap();
}
