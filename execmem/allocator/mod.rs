// SPDX-License-Identifier: GPL-2.0

//! The allocator and its safe API.
//!
//! [`Allocator::alloc`] takes a type, a size and an optional alignment and
//! returns an owning handle; the handle frees its range on drop. What a
//! handle can do follows from its type, so misuse does not compile:
//!
//! | handle       | types                          | write/fill | read | call | seal |
//! |--------------|--------------------------------|------------|------|------|------|
//! | [`Code`]     | text, bpf, ftrace, kprobes     | text_poke  | yes  | yes  | -    |
//! | [`ReadOnly`] | rodata, ro_after_init          | text_poke  | yes  | -    | yes  |
//! | [`Sealed`]   | a sealed [`ReadOnly`]          | -          | yes  | -    | -    |
//! | [`Data`]     | data                           | memcpy     | yes  | -    | -    |
//!
//! No handle ever gives out `&mut [u8]` (or `&[u8]`) to the memory: reads
//! and writes copy, and writes into RO/RX memory go through `text_poke`.
//! Every access is bounds-checked against the allocation's own size, so a
//! handle cannot touch a neighbour in the same pack.
//!
//! Freed memory is refilled with the class's fill byte (INT3 for code, zero
//! otherwise) before the engine may hand it out again, so new allocations
//! start clean and freed code is never handed to a new owner. Bytes never
//! written still hold the fill byte (packs are filled when mapped), so an
//! allocation that was never written goes straight back to the engine and
//! costs no `text_poke`; neither does one in an overflow extent, which its
//! free unmaps. A written RO/RX allocation is parked instead: up to
//! [`PENDING`] freed ranges per class wait, unusable, and are then refilled
//! together, adjacent ranges merged into one `text_poke_set()`, before the
//! engine gets them back. A `text_poke` costs the same for 64 bytes as for
//! a few KiB (its fixed cost is mapping the poking alias and flushing it), so
//! batching makes a free cheap. The price: a freed function stays executable
//! until its batch is refilled, at most [`PENDING`] - 1 frees of its class
//! later or when the owner calls [`Allocator::flush`] (every debugfs session
//! does on close, the stress runner and benchmark at the end). Nothing in
//! execmem_rs can reach it meanwhile: its handle is gone and the range is not
//! reallocated.
//!
//! Locking: one mutex per permission class, held for every operation on
//! that class (engine, pack table, writes). All callers run in process
//! context and every operation may sleep (vmalloc, `text_poke` takes
//! `text_mutex`), so a mutex is the right primitive. Classes are
//! independent; writes to RO/RX memory serialise on `text_mutex` anyway, so
//! finer locking inside a class would buy little.

use crate::execmem::backend::mem::{Area, PageInfo};
use crate::execmem::backend::storage::KernelStorage;
use crate::execmem::core_engine::{
    engine::{ClassStats, Engine, PackInfo, Placement},
    storage::Error as CoreError,
    types::{Class, ExecmemType},
};
use crate::execmem::packs::{Packs, LEVEL_2M};
use kernel::{
    new_mutex,
    prelude::*,
    sync::{Arc, Mutex},
};

/// Freed, written RO/RX ranges a class parks before refilling them in one
/// batch.
pub const PENDING: usize = 32;

/// A freed range waiting for its refill.
#[derive(Clone, Copy)]
struct Pending {
    pl: Placement,
    slot: usize,
    area_off: usize,
}

/// Maps an engine error to the errno the ABI documents.
pub fn errno(e: CoreError) -> Error {
    match e {
        CoreError::Invalid => EINVAL,
        CoreError::TooBig => E2BIG,
        CoreError::NoMemory => ENOMEM,
        CoreError::NotAllocated => ENOENT,
        CoreError::Corrupted => EFAULT,
    }
}

/// Per-type counters.
#[derive(Clone, Copy, Default)]
pub struct TypeCounters {
    /// Successful allocations.
    pub allocs: u64,
    /// Frees.
    pub frees: u64,
    /// Live allocations.
    pub live: u64,
    /// Bytes requested by the live allocations.
    pub live_bytes: u64,
}

/// Everything one class owns, under its mutex.
pub struct ClassState {
    engine: KBox<Engine<KernelStorage>>,
    packs: Packs,
    counters: Counters,
    pending: [Option<Pending>; PENDING],
    npending: usize,
}

/// The counters of one class.
#[derive(Clone, Copy, Default)]
struct Counters {
    types: [TypeCounters; 7],
    pokes: u64,
    poke_bytes: u64,
}

/// A snapshot of one class's counters.
pub struct ClassReport {
    /// The engine's counters (packs, backing bytes, ...).
    pub engine: ClassStats,
    /// Packs mapped with 2 MiB pages so far.
    pub huge_packs: u64,
    /// Packs that fell back to 4 KiB pages so far.
    pub fallback_packs: u64,
    /// Freed ranges parked for a batched refill.
    pub pending: usize,
    /// `text_poke_copy()`/`text_poke_set()` calls.
    pub pokes: u64,
    /// Bytes written by them.
    pub poke_bytes: u64,
    /// Per-type counters, by `ExecmemType::index()`.
    pub types: [TypeCounters; 7],
}

/// One pack, for the `packs` file.
pub struct PackReport {
    /// Pack number within its class (as `info` prints it).
    pub index: usize,
    /// Engine view.
    pub info: PackInfo,
    /// 64-cell occupancy picture.
    pub map: [u8; 64],
    /// Whether the pack is mapped with 2 MiB pages.
    pub huge: bool,
}

impl ClassState {
    /// Built straight into a box: the state is a few KiB, and three of them
    /// (plus the copies `pin_init!` makes) would overflow the 16 KiB kernel
    /// stack of `init`.
    fn new(class: Class) -> Result<KBox<Self>> {
        let engine = KBox::new(Engine::new(class), GFP_KERNEL)?;
        KBox::new(
            ClassState {
                engine,
                packs: Packs::new(),
                counters: Counters::default(),
                pending: [None; PENDING],
                npending: 0,
            },
            GFP_KERNEL,
        )
        .map_err(Into::into)
    }

    /// Refills every parked range, merging adjacent ones, and gives them
    /// back to the engine.
    fn flush(&mut self, class: Class) {
        let n = self.npending;
        self.npending = 0;
        let Some(parked) = self.pending.get_mut(..n) else {
            return;
        };
        // Insertion sort by place: at most 32 entries, and no scratch buffer
        // on the stack (core's sort keeps 4 KiB there).
        let key = |p: &Option<Pending>| p.map(|p| (p.slot, p.area_off));
        for i in 1..parked.len() {
            let mut j = i;
            while j > 0 && key(&parked[j - 1]) > key(&parked[j]) {
                parked.swap(j - 1, j);
                j -= 1;
            }
        }
        let mut run: Option<(usize, usize, usize)> = None; // (slot, start, end)
        for p in parked.iter().flatten() {
            let end = p.area_off.saturating_add(p.pl.size);
            run = match run {
                Some((slot, start, e)) if slot == p.slot && e == p.area_off => {
                    Some((slot, start, end))
                }
                other => {
                    if let Some(r) = other {
                        refill(&self.packs, &mut self.counters, class, r);
                    }
                    Some((p.slot, p.area_off, end))
                }
            };
        }
        if let Some(r) = run {
            refill(&self.packs, &mut self.counters, class, r);
        }
        for p in parked.iter_mut() {
            if let Some(p) = p.take() {
                if let Err(e) = self.engine.free(&mut self.packs, p.pl.handle) {
                    pr_err!("free of a parked range failed: {:?}\n", e);
                }
            }
        }
    }
}

/// Refills `[start, end)` of the area in `slot` with the class's fill byte.
fn refill(
    packs: &Packs,
    counters: &mut Counters,
    class: Class,
    (slot, start, end): (usize, usize, usize),
) {
    let len = end.saturating_sub(start);
    match packs
        .area(slot)
        .ok_or(EFAULT)
        .and_then(|a| a.fill(start, class.fill(), len))
    {
        Ok(()) => counters.count_poke(class, len),
        Err(e) => pr_err!("refill of freed {} memory failed: {:?}\n", class.name(), e),
    }
}

impl Counters {
    fn of(&mut self, ty: ExecmemType) -> &mut TypeCounters {
        let [a, b, c, d, e, f, g] = &mut self.types;
        match ty {
            ExecmemType::Text => a,
            ExecmemType::Data => b,
            ExecmemType::Rodata => c,
            ExecmemType::RoAfterInit => d,
            ExecmemType::Bpf => e,
            ExecmemType::Ftrace => f,
            ExecmemType::Kprobes => g,
        }
    }

    fn count_poke(&mut self, class: Class, len: usize) {
        if class != Class::Rw && len != 0 {
            self.pokes = self.pokes.wrapping_add(1);
            self.poke_bytes = self.poke_bytes.wrapping_add(len as u64);
        }
    }
}

/// The allocator: one engine and pack table per permission class.
#[pin_data(PinnedDrop)]
pub struct Allocator {
    #[pin]
    rx: Mutex<KBox<ClassState>>,
    #[pin]
    ro: Mutex<KBox<ClassState>>,
    #[pin]
    rw: Mutex<KBox<ClassState>>,
}

impl Allocator {
    /// A new allocator with no packs; maps nothing until the first alloc.
    pub fn new() -> Result<Arc<Self>> {
        let (rx, ro, rw) = (
            ClassState::new(Class::Rx)?,
            ClassState::new(Class::Ro)?,
            ClassState::new(Class::Rw)?,
        );
        Arc::pin_init(
            pin_init!(Allocator {
                rx <- new_mutex!(rx),
                ro <- new_mutex!(ro),
                rw <- new_mutex!(rw),
            }),
            GFP_KERNEL,
        )
    }

    fn class(&self, c: Class) -> &Mutex<KBox<ClassState>> {
        match c {
            Class::Rx => &self.rx,
            Class::Ro => &self.ro,
            Class::Rw => &self.rw,
        }
    }

    /// Allocates `size` bytes of type `ty`, aligned to `align` (a power of
    /// two up to 2 MiB) or to the type's default.
    ///
    /// Errors: `EINVAL` (size 0, bad alignment), `E2BIG` (above the limit),
    /// `ENOMEM`.
    pub fn alloc(
        self: &Arc<Self>,
        ty: ExecmemType,
        size: usize,
        align: Option<usize>,
    ) -> Result<Any> {
        let raw = self.alloc_raw(ty, size, align)?;
        Ok(match ty.class() {
            Class::Rx => Any::Code(Code(raw)),
            Class::Ro => Any::ReadOnly(ReadOnly(raw)),
            Class::Rw => Any::Data(Data(raw)),
        })
    }

    /// Allocates code (`text`, `bpf`, `ftrace`, `kprobes`); `EINVAL` for
    /// other types.
    pub fn alloc_code(
        self: &Arc<Self>,
        ty: ExecmemType,
        size: usize,
        align: Option<usize>,
    ) -> Result<Code> {
        match self.alloc(ty, size, align)? {
            Any::Code(c) => Ok(c),
            _ => Err(EINVAL),
        }
    }

    fn alloc_raw(
        self: &Arc<Self>,
        ty: ExecmemType,
        size: usize,
        align: Option<usize>,
    ) -> Result<Allocation> {
        let class = ty.class();
        let mut st = self.class(class).lock();
        let st: &mut ClassState = &mut st;
        let pl = st
            .engine
            .alloc(&mut st.packs, ty, size, align)
            .map_err(errno)?;
        let slot = pl.pack.index();
        let Some(area_off) = st
            .packs
            .area(slot)
            .and_then(|a| pl.addr.checked_sub(a.addr()))
        else {
            // The engine placed it in a pack we do not know: give it back.
            let _ = st.engine.free(&mut st.packs, pl.handle);
            return Err(EFAULT);
        };
        let c = st.counters.of(ty);
        c.allocs = c.allocs.wrapping_add(1);
        c.live = c.live.wrapping_add(1);
        c.live_bytes = c.live_bytes.wrapping_add(size as u64);
        Ok(Allocation {
            owner: self.clone(),
            ty,
            size,
            pl,
            slot,
            area_off,
            dirty: 0,
        })
    }

    /// Refills and releases every parked freed range now (see the module
    /// documentation), so that no freed code stays executable.
    pub fn flush(&self) {
        for class in Class::ALL {
            self.class(class).lock().flush(class);
        }
    }

    /// Counters of `class`.
    pub fn report(&self, class: Class) -> ClassReport {
        let st = self.class(class).lock();
        ClassReport {
            engine: st.engine.stats(),
            huge_packs: st.packs.huge,
            fallback_packs: st.packs.fallback,
            pending: st.npending,
            pokes: st.counters.pokes,
            poke_bytes: st.counters.poke_bytes,
            types: st.counters.types,
        }
    }

    /// Calls `f` for every mapped pack of `class`, under the class lock.
    pub fn for_each_pack(&self, class: Class, mut f: impl FnMut(&PackReport) -> Result) -> Result {
        let st = self.class(class).lock();
        for i in 0..st.engine.pack_slots() {
            let (Some(info), Some(map)) = (st.engine.pack_info(i), st.engine.pack_map(i)) else {
                continue;
            };
            let huge = st
                .packs
                .area(i)
                .and_then(|a| a.probe(0).ok())
                .is_some_and(|p| p.level == LEVEL_2M);
            f(&PackReport {
                index: i,
                info,
                map,
                huge,
            })?;
        }
        Ok(())
    }
}

#[pinned_drop]
impl PinnedDrop for Allocator {
    fn drop(self: Pin<&mut Self>) {
        // Every handle holds an `Arc` to us, so nothing is live here; still,
        // unmap whatever the engines hold (the spare packs).
        for class in Class::ALL {
            let mut st = self.class(class).lock();
            let st: &mut ClassState = &mut st;
            st.flush(class);
            let leaked = st.engine.release_all(&mut st.packs);
            if leaked != 0 {
                pr_err!(
                    "{} allocation(s) of class {} leaked\n",
                    leaked,
                    class.name()
                );
            }
        }
    }
}

/// How an allocation's pages are mapped (`probe`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Mapping {
    /// Pages (4 KiB) the allocation touches.
    pub pages: usize,
    /// How many of them sit in a 2 MiB mapping.
    pub huge_pages: usize,
    /// Some page is present, writable.
    pub writable: bool,
    /// Some page is present, executable.
    pub executable: bool,
    /// Every page is present.
    pub present: bool,
}

/// An allocation of any type; the common part of every handle.
///
/// # Invariants
///
/// `pl` is a live placement of `owner`'s engine for class `ty.class()`,
/// `size <= pl.size`; the area in pack slot `slot` contains it at
/// `area_off`; `[0, dirty)` covers every byte written since it was
/// allocated, and every other byte holds the class's fill byte.
pub struct Allocation {
    owner: Arc<Allocator>,
    ty: ExecmemType,
    size: usize,
    pl: Placement,
    slot: usize,
    area_off: usize,
    dirty: usize,
}

impl Allocation {
    /// Type it was allocated as.
    pub fn ty(&self) -> ExecmemType {
        self.ty
    }

    /// Requested size in bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Alignment the address satisfies.
    pub fn align(&self) -> usize {
        self.pl.align
    }

    /// Index of the pack it lives in (as the `packs` file numbers them).
    pub fn pack(&self) -> usize {
        self.pl.pack.index()
    }

    /// Offset inside that pack.
    pub fn offset(&self) -> usize {
        self.pl.offset
    }

    fn span(&self, offset: usize, len: usize) -> Result<usize> {
        let end = offset.checked_add(len).ok_or(ERANGE)?;
        if end > self.size {
            return Err(ERANGE);
        }
        self.area_off.checked_add(offset).ok_or(ERANGE)
    }

    /// Runs `f` on our area and the class counters, under the class lock.
    fn with_area<R>(&self, f: impl FnOnce(&Area, &mut Counters) -> Result<R>) -> Result<R> {
        let mut st = self.owner.class(self.ty.class()).lock();
        let st: &mut ClassState = &mut st;
        // The pack cannot be unmapped while we are live (type invariant).
        let area = st.packs.area(self.slot).ok_or(EFAULT)?;
        f(area, &mut st.counters)
    }

    fn write(&mut self, offset: usize, data: &[u8]) -> Result {
        let at = self.span(offset, data.len())?;
        let class = self.ty.class();
        self.with_area(|a, st| {
            a.write(at, data)?;
            st.count_poke(class, data.len());
            Ok(())
        })?;
        self.dirty = self.dirty.max(offset + data.len());
        Ok(())
    }

    fn fill(&mut self, offset: usize, byte: u8, len: usize) -> Result {
        let at = self.span(offset, len)?;
        let class = self.ty.class();
        self.with_area(|a, st| {
            a.fill(at, byte, len)?;
            st.count_poke(class, len);
            Ok(())
        })?;
        self.dirty = self.dirty.max(offset + len);
        Ok(())
    }

    fn read(&self, offset: usize, out: &mut [u8]) -> Result {
        let at = self.span(offset, out.len())?;
        self.with_area(|a, _| a.read(at, out))
    }

    /// How its pages are mapped, from the page tables.
    pub fn probe(&self) -> Result<Mapping> {
        let first = self.area_off / crate::execmem::backend::mem::PAGE_SIZE;
        let last = (self.area_off + self.size.max(1) - 1) / crate::execmem::backend::mem::PAGE_SIZE;
        self.with_area(|a, _| {
            let mut m = Mapping {
                pages: 0,
                huge_pages: 0,
                writable: false,
                executable: false,
                present: true,
            };
            for page in first..=last {
                let off = (page * crate::execmem::backend::mem::PAGE_SIZE).max(self.area_off);
                let p: PageInfo = a.probe(off)?;
                m.pages += 1;
                m.huge_pages += usize::from(p.level == LEVEL_2M);
                m.present &= p.present;
                m.writable |= p.present && p.writable;
                m.executable |= p.present && p.executable;
            }
            Ok(m)
        })
    }
}

impl Drop for Allocation {
    fn drop(&mut self) {
        let class = self.ty.class();
        let mut st = self.owner.class(class).lock();
        let st: &mut ClassState = &mut st;
        let c = st.counters.of(self.ty);
        c.frees = c.frees.wrapping_add(1);
        c.live = c.live.wrapping_sub(1);
        c.live_bytes = c.live_bytes.wrapping_sub(self.size as u64);
        if self.dirty == 0 {
            // Never written: it still holds the fill byte.
        } else if st.engine.is_overflow(self.pl.pack) {
            // Its own area, unmapped (vfree()d with its permissions reset and
            // the TLB flushed) by this free: nothing to refill or park.
        } else if class == Class::Rw {
            // A plain memset: nothing to batch.
            refill(
                &st.packs,
                &mut st.counters,
                class,
                (self.slot, self.area_off, self.area_off + self.dirty),
            );
        } else {
            // Park it; the batch is refilled when full.
            if let Some(p) = st.pending.get_mut(st.npending) {
                *p = Some(Pending {
                    pl: self.pl,
                    slot: self.slot,
                    area_off: self.area_off,
                });
                st.npending += 1;
                if st.npending == PENDING {
                    st.flush(class);
                }
                return;
            }
        }
        if let Err(e) = st.engine.free(&mut st.packs, self.pl.handle) {
            pr_err!("free of a {} allocation failed: {:?}\n", self.ty.name(), e);
        }
    }
}

/// Code: `text`, `bpf`, `ftrace`, `kprobes`. Read-only and executable;
/// written through `text_poke`.
pub struct Code(Allocation);

/// Read-only data not sealed yet: `rodata`, `ro_after_init`. Written
/// through `text_poke` until [`ReadOnly::seal`].
pub struct ReadOnly(Allocation);

/// Sealed read-only data: can only be read (and freed).
pub struct Sealed(Allocation);

/// Writable data: `data`. Never executable.
pub struct Data(Allocation);

impl Code {
    /// Copies `data` to `offset` with `text_poke_copy()`.
    pub fn write(&mut self, offset: usize, data: &[u8]) -> Result {
        self.0.write(offset, data)
    }

    /// Sets `len` bytes at `offset` to `byte` with `text_poke_set()`.
    pub fn fill(&mut self, offset: usize, byte: u8, len: usize) -> Result {
        self.0.fill(offset, byte, len)
    }

    /// Calls the code at `offset` and returns what it left in `rax`.
    ///
    /// # Safety
    ///
    /// The bytes at `offset` must be a complete function for the kernel's C
    /// ABI (starting with `ENDBR64` when IBT is on) that returns and does
    /// nothing its caller may not do.
    pub unsafe fn call(&self, offset: usize) -> Result<u64> {
        let at = self.0.span(offset, 1)?;
        // SAFETY: forwarded from the caller; the area is ROX (class RX).
        self.0.with_area(|a, _| unsafe { a.call(at) })
    }
}

impl ReadOnly {
    /// Copies `data` to `offset` with `text_poke_copy()`.
    pub fn write(&mut self, offset: usize, data: &[u8]) -> Result {
        self.0.write(offset, data)
    }

    /// Sets `len` bytes at `offset` to `byte` with `text_poke_set()`.
    pub fn fill(&mut self, offset: usize, byte: u8, len: usize) -> Result {
        self.0.fill(offset, byte, len)
    }

    /// Makes it read-only for good: the returned handle cannot write.
    pub fn seal(self) -> Sealed {
        Sealed(self.0)
    }
}

impl Data {
    /// Copies `data` to `offset`.
    pub fn write(&mut self, offset: usize, data: &[u8]) -> Result {
        self.0.write(offset, data)
    }

    /// Sets `len` bytes at `offset` to `byte`.
    pub fn fill(&mut self, offset: usize, byte: u8, len: usize) -> Result {
        self.0.fill(offset, byte, len)
    }
}

/// Any handle, for callers that pick the type at run time (debugfs).
pub enum Any {
    /// See [`Code`].
    Code(Code),
    /// See [`ReadOnly`].
    ReadOnly(ReadOnly),
    /// See [`Sealed`].
    Sealed(Sealed),
    /// See [`Data`].
    Data(Data),
}

impl Any {
    /// The common part (type, size, placement, mapping, reads).
    pub fn common(&self) -> &Allocation {
        match self {
            Any::Code(Code(a)) | Any::ReadOnly(ReadOnly(a)) | Any::Sealed(Sealed(a)) => a,
            Any::Data(Data(a)) => a,
        }
    }

    /// Copies `out.len()` bytes from `offset`.
    pub fn read(&self, offset: usize, out: &mut [u8]) -> Result {
        self.common().read(offset, out)
    }

    /// Writes `data` at `offset`; `EPERM` once sealed.
    pub fn write(&mut self, offset: usize, data: &[u8]) -> Result {
        match self {
            Any::Code(c) => c.write(offset, data),
            Any::ReadOnly(r) => r.write(offset, data),
            Any::Data(d) => d.write(offset, data),
            Any::Sealed(_) => Err(EPERM),
        }
    }

    /// Fills `len` bytes at `offset` with `byte`; `EPERM` once sealed.
    pub fn fill(&mut self, offset: usize, byte: u8, len: usize) -> Result {
        match self {
            Any::Code(c) => c.fill(offset, byte, len),
            Any::ReadOnly(r) => r.fill(offset, byte, len),
            Any::Data(d) => d.fill(offset, byte, len),
            Any::Sealed(_) => Err(EPERM),
        }
    }

    /// Whether it was sealed.
    pub fn is_sealed(&self) -> bool {
        matches!(self, Any::Sealed(_))
    }
}
