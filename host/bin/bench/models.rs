// SPDX-License-Identifier: GPL-2.0

//! The allocators the benchmark replays: execmem_rs's engine and models of
//! its peers (per-allocation vmalloc, bpf_prog_pack, the ROX cache), each
//! one instance per permission class.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use execmem_core::{Class, Engine, ExecmemType, FakeSource, Footprint, Handle, StdStorage};

use crate::{MIB, PACK, PAGE};

// --------------------------------------------------------------- models ----

pub trait Model {
    type Token: Copy + Default;
    const NAME: &'static str;
    /// What `units` counts.
    const UNIT: &'static str;
    fn new() -> Self;
    fn alloc(&mut self, ty: ExecmemType, size: usize, align: usize) -> Self::Token;
    fn free(&mut self, ty: ExecmemType, tok: Self::Token, size: usize);
    fn foot(&self, c: Class) -> Footprint;
    fn debug(&self) {}
    /// Where the backing goes (execmem_rs only).
    fn breakdown(&self, _req: &[usize; 3]) -> String {
        String::new()
    }
}

// execmem_rs -----------------------------------------------------------------

pub struct Execmem {
    pub src: FakeSource,
    pub e: [Engine<StdStorage>; 3],
}

#[derive(Clone, Copy, Default)]
pub struct Tok(Option<Handle>);

impl Model for Execmem {
    type Token = Tok;
    const NAME: &'static str = "execmem_rs";
    const UNIT: &'static str = "2M packs";
    fn new() -> Self {
        Execmem {
            src: FakeSource::new(),
            e: [
                Engine::new(Class::Rx),
                Engine::new(Class::Ro),
                Engine::new(Class::Rw),
            ],
        }
    }
    fn alloc(&mut self, ty: ExecmemType, size: usize, align: usize) -> Tok {
        let e = &mut self.e[ty.class().index()];
        Tok(Some(
            e.alloc(&mut self.src, ty, size, Some(align))
                .expect("alloc")
                .handle,
        ))
    }
    fn free(&mut self, ty: ExecmemType, tok: Tok, _size: usize) {
        let e = &mut self.e[ty.class().index()];
        e.free(&mut self.src, tok.0.expect("token")).expect("free");
    }
    fn foot(&self, c: Class) -> Footprint {
        self.src.foot[c]
    }
    fn breakdown(&self, req: &[usize; 3]) -> String {
        let mut out = String::new();
        for e in &self.e {
            let st = e.stats();
            let (mut tail, mut free, mut over) = (0, 0, 0);
            for i in 0..e.pack_slots() {
                let Some(p) = e.pack_info(i) else { continue };
                if p.pages != 0 {
                    over += p.pages * PAGE - p.used;
                } else if p.dedicated {
                    tail += p.npacks * PACK - p.used;
                } else if p.used > 0 {
                    free += PACK - p.used;
                }
            }
            let q = req[e.class().index()];
            let _ = writeln!(
                out,
                "execmem_rs {}: backing {:.2}M = requested {:.2}M + 64B rounding {:.2}M + free space in used packs {:.2}M + free space in extents {:.2}M ({} extents) + page rounding of {} overflow extents {:.2}M ({} pages) + spare {:.2}M; lower bound ceil(used / 2M) = {} packs, ratio {:.3}",
                e.class().name(),
                st.backing as f64 / MIB as f64,
                q as f64 / MIB as f64,
                (st.used - q) as f64 / MIB as f64,
                free as f64 / MIB as f64,
                tail as f64 / MIB as f64,
                st.extents,
                st.overflow,
                over as f64 / MIB as f64,
                st.overflow_pages,
                (st.spare * PACK) as f64 / MIB as f64,
                st.used.div_ceil(PACK),
                (st.used.div_ceil(PACK) * PACK) as f64 / q as f64,
            );
        }
        out
    }
    fn debug(&self) {
        for e in &self.e {
            eprintln!("class {}", e.class().name());
            for i in 0..e.pack_slots() {
                if let Some(p) = e.pack_info(i) {
                    let m = e.pack_map(i).unwrap_or([b'?'; 64]);
                    eprintln!(
                        "  used {:>8} live {:>4} free {:>4} largest {:>8} {}",
                        p.used,
                        p.live,
                        p.free_extents,
                        p.largest_free,
                        String::from_utf8_lossy(&m)
                    );
                }
            }
        }
    }
}

// vmalloc per allocation ---------------------------------------------------------

pub struct Vmalloc {
    pub foot: [Footprint; 3],
}

impl Model for Vmalloc {
    type Token = ();
    const NAME: &'static str = "vmalloc";
    const UNIT: &'static str = "4K pages";
    fn new() -> Self {
        Vmalloc {
            foot: [Footprint::default(); 3],
        }
    }
    fn alloc(&mut self, ty: ExecmemType, size: usize, _align: usize) {
        let pages = size.div_ceil(PAGE);
        self.foot[ty.class().index()].add(pages * PAGE, pages, pages);
    }
    fn free(&mut self, ty: ExecmemType, _tok: (), size: usize) {
        let pages = size.div_ceil(PAGE);
        self.foot[ty.class().index()].sub(pages * PAGE, pages, pages);
    }
    fn foot(&self, c: Class) -> Footprint {
        self.foot[c.index()]
    }
}

// bpf_prog_pack ------------------------------------------------------------------

pub const CHUNK: usize = 64;
pub const CHUNKS: usize = PACK / CHUNK;
pub const WORDS: usize = CHUNKS / 64;

pub struct BpfPack {
    pub ptr: usize,
    pub bitmap: Box<[u64; WORDS]>,
}

/// `find_next_bit` (want = true) / `find_next_zero_bit` (want = false)
/// over `size` bits, word at a time as in lib/find_bit.c.
pub fn find_next(map: &[u64; WORDS], size: usize, start: usize, want: bool) -> usize {
    if start >= size {
        return size;
    }
    let mut i = start / 64;
    let flip = if want { 0 } else { u64::MAX };
    let mut w = (map[i] ^ flip) & (u64::MAX << (start % 64));
    loop {
        if w != 0 {
            return (i * 64 + w.trailing_zeros() as usize).min(size);
        }
        i += 1;
        if i * 64 >= size {
            return size;
        }
        w = map[i] ^ flip;
    }
}

/// `bitmap_find_next_zero_area(map, size, start, nr, 0)`.
pub fn find_zero_area(map: &[u64; WORDS], size: usize, mut start: usize, nr: usize) -> usize {
    loop {
        let index = find_next(map, size, start, false);
        let end = index + nr;
        if end > size {
            return end;
        }
        let i = find_next(map, end, index, true);
        if i < end {
            start = i + 1;
            continue;
        }
        return index;
    }
}

pub fn bitmap_set(map: &mut [u64; WORDS], pos: usize, nr: usize, on: bool) {
    let mut p = pos;
    let end = pos + nr;
    while p < end {
        let w = p / 64;
        let lo = p % 64;
        let n = (64 - lo).min(end - p);
        let mask = if n == 64 {
            u64::MAX
        } else {
            ((1u64 << n) - 1) << lo
        };
        if on {
            map[w] |= mask;
        } else {
            map[w] &= !mask;
        }
        p += n;
    }
}

pub struct BpfClass {
    pub packs: Vec<BpfPack>,
    pub next: usize,
    pub foot: Footprint,
}

pub struct BpfProgPack {
    pub c: [BpfClass; 3],
}

impl BpfClass {
    fn new() -> Self {
        BpfClass {
            packs: Vec::new(),
            next: 0xffff_b000_0000_0000,
            foot: Footprint::default(),
        }
    }
    fn alloc(&mut self, size: usize, align: usize) -> usize {
        // Callers that need more than chunk alignment over-ask.
        let size = size + align.saturating_sub(CHUNK);
        if size > PACK {
            let bytes = size.div_ceil(PAGE) * PAGE;
            let p = self.next;
            self.next += bytes + PACK;
            self.foot.add(bytes, bytes / PAGE, 0);
            return p;
        }
        let nbits = size.div_ceil(CHUNK);
        for pack in &mut self.packs {
            let pos = find_zero_area(&pack.bitmap, CHUNKS, 0, nbits);
            if pos < CHUNKS {
                bitmap_set(&mut pack.bitmap, pos, nbits, true);
                return pack.ptr + pos * CHUNK;
            }
        }
        let ptr = self.next;
        self.next += 2 * PACK;
        // x86: the pack is vmalloc'ed with 4 KiB pages.
        self.foot.add(PACK, PACK / PAGE, 1);
        let mut bitmap = Box::new([0u64; WORDS]);
        bitmap_set(&mut bitmap, 0, nbits, true);
        self.packs.push(BpfPack { ptr, bitmap });
        ptr
    }
    fn free(&mut self, ptr: usize, size: usize, align: usize) {
        let size = size + align.saturating_sub(CHUNK);
        if size > PACK {
            let bytes = size.div_ceil(PAGE) * PAGE;
            self.foot.sub(bytes, bytes / PAGE, 0);
            return;
        }
        let Some(i) = self
            .packs
            .iter()
            .position(|p| ptr >= p.ptr && ptr < p.ptr + PACK)
        else {
            panic!("bpf_prog_pack_free: not found");
        };
        let nbits = size.div_ceil(CHUNK);
        let pos = (ptr - self.packs[i].ptr) / CHUNK;
        bitmap_set(&mut self.packs[i].bitmap, pos, nbits, false);
        if find_zero_area(&self.packs[i].bitmap, CHUNKS, 0, CHUNKS) == 0 {
            self.packs.remove(i);
            self.foot.sub(PACK, PACK / PAGE, 1);
        }
    }
}

#[derive(Clone, Copy, Default)]
pub struct Addr(usize, usize);

impl Model for BpfProgPack {
    type Token = Addr;
    const NAME: &'static str = "bpf_prog_pack";
    const UNIT: &'static str = "2M packs";
    fn new() -> Self {
        BpfProgPack {
            c: [BpfClass::new(), BpfClass::new(), BpfClass::new()],
        }
    }
    fn alloc(&mut self, ty: ExecmemType, size: usize, align: usize) -> Addr {
        Addr(self.c[ty.class().index()].alloc(size, align), align)
    }
    fn free(&mut self, ty: ExecmemType, t: Addr, size: usize) {
        self.c[ty.class().index()].free(t.0, size, t.1);
    }
    fn foot(&self, c: Class) -> Footprint {
        self.c[c.index()].foot
    }
}

// execmem ROX cache ------------------------------------------------------------

pub struct RoxClass {
    /// start -> len (maple tree `free_areas`).
    pub free: BTreeMap<usize, usize>,
    /// start -> len (maple tree `busy_areas`).
    pub busy: BTreeMap<usize, usize>,
    pub next: usize,
    pub foot: Footprint,
}

impl RoxClass {
    fn new() -> Self {
        RoxClass {
            free: BTreeMap::new(),
            busy: BTreeMap::new(),
            next: 0xffff_c000_0000_0000,
            foot: Footprint::default(),
        }
    }
    /// `execmem_cache_add`: insert and coalesce with both neighbours.
    fn add(&mut self, mut start: usize, mut len: usize) -> (usize, usize) {
        if let Some((&s, &l)) = self.free.range(..start).next_back() {
            if s + l == start {
                self.free.remove(&s);
                start = s;
                len += l;
            }
        }
        if let Some(&l) = self.free.get(&(start + len)) {
            self.free.remove(&(start + len));
            len += l;
        }
        self.free.insert(start, len);
        (start, len)
    }
    fn try_alloc(&mut self, size: usize) -> Option<usize> {
        // mas_for_each over free_areas: first fit by address.
        let (&s, &l) = self.free.iter().find(|(_, &l)| l >= size)?;
        self.free.remove(&s);
        if l > size {
            self.free.insert(s + size, l - size);
        }
        self.busy.insert(s, size);
        Some(s)
    }
    fn alloc(&mut self, size: usize, align: usize) -> usize {
        // Page granularity; a page-aligned base satisfies every module
        // alignment seen (<= 256 B), larger ones over-ask.
        let size = (size + align.saturating_sub(PAGE)).div_ceil(PAGE) * PAGE;
        if let Some(a) = self.try_alloc(size) {
            return a;
        }
        // execmem_cache_populate: round_up(size, PMD_SIZE), PMD mapped.
        let len = size.div_ceil(PACK) * PACK;
        let base = self.next;
        self.next += len + PACK;
        self.foot.add(len, len / PACK, len / PACK);
        self.add(base, len);
        self.try_alloc(size).expect("populated")
    }
    fn free(&mut self, ptr: usize) {
        let len = self.busy.remove(&ptr).expect("busy area");
        let (s, l) = self.add(ptr, len);
        // execmem_cache_clean: release PMD-aligned, PMD-multiple free areas.
        // (The kernel's work item rescans all free areas; checking only the
        // merged one gives the same result at lower cost.)
        if s % PACK == 0 && l % PACK == 0 {
            self.free.remove(&s);
            self.foot.sub(l, l / PACK, l / PACK);
        }
    }
}

pub struct RoxCache {
    pub c: [RoxClass; 3],
}

impl Model for RoxCache {
    type Token = usize;
    const NAME: &'static str = "rox_cache";
    const UNIT: &'static str = "2M packs";
    fn new() -> Self {
        RoxCache {
            c: [RoxClass::new(), RoxClass::new(), RoxClass::new()],
        }
    }
    fn alloc(&mut self, ty: ExecmemType, size: usize, align: usize) -> usize {
        self.c[ty.class().index()].alloc(size, align)
    }
    fn free(&mut self, ty: ExecmemType, t: usize, _size: usize) {
        self.c[ty.class().index()].free(t);
    }
    fn foot(&self, c: Class) -> Footprint {
        self.c[c.index()].foot
    }
}
