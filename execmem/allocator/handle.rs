// SPDX-License-Identifier: GPL-2.0

//! The owning handles: what an allocation can do follows from its type.
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
//! handle cannot touch a neighbour in the same pack. Writes need `&mut`,
//! reads and calls `&`: a function cannot be rewritten or freed while it
//! runs. None of them takes an allocator lock: the pack cannot go away
//! while the allocation lives.

use super::refill::Parked;
use super::{Allocator, Refusal};
use crate::execmem::backend::arch::LEVEL_2M;
use crate::execmem::backend::mem::{PageInfo, PAGE_SIZE};
use crate::execmem::backend::sched::now_ns;
use crate::execmem::backend::window::Window;
use crate::execmem::binpack::{
    engine::Placement,
    refill::{on_free, Dirty, FreeAction},
    types::{Class, ExecmemType, Fill},
};
use kernel::{prelude::*, sync::Arc};

/// What an access through a handle returns: on refusal, the errno and
/// why (`?` turns it into the errno where only that is wanted).
pub type Access<T> = core::result::Result<T, Refusal>;

const OUTSIDE: Refusal = Refusal {
    err: ERANGE,
    reason: "offset/length outside the allocation",
};
const UNMAPPED: Refusal = Refusal {
    err: EFAULT,
    reason: "the allocation is not mapped",
};
const SEALED: Refusal = Refusal {
    err: EPERM,
    reason: "sealed: no write after seal",
};

/// A refusal of the window below a checked span: it cannot name more than
/// the errno.
fn mapping(err: Error) -> Refusal {
    Refusal {
        err,
        reason: "outside the mapping",
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

impl Mapping {
    /// `2M` if every page sits in a 2 MiB mapping, `4K` if none does, else
    /// `mixed`: how `info` and `probe` name it.
    pub fn name(&self) -> &'static str {
        match self.huge_pages {
            n if n == self.pages => "2M",
            0 => "4K",
            _ => "mixed",
        }
    }
}

/// An allocation of any type; the common part of every handle.
///
/// # Invariants
///
/// `pl` is a live placement of `owner`'s engine for class `ty.class()` and
/// `size <= pl.size`; `win` is `Some` until drop and is the window of
/// exactly the block `[pl.addr, pl.addr + pl.size)`, of which only the
/// first `size` bytes are ever accessed through the handle; `dirty` covers
/// every byte written since it was allocated, and every other byte of the
/// block holds the class's fill byte.
pub struct Allocation {
    pub(super) owner: Arc<Allocator>,
    pub(super) ty: ExecmemType,
    pub(super) size: usize,
    pub(super) pl: Placement,
    pub(super) win: Option<Window<'static>>,
    pub(super) dirty: Dirty,
    /// Its free refills on the freeing thread instead of parking (memory
    /// the kernel owned: see [`KernelCode::handed_out`]).
    pub(super) eager: bool,
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

    /// Its address, for a kernel caller that uses the memory directly (the
    /// provider). Never printed.
    pub fn addr(&self) -> usize {
        self.pl.addr
    }

    fn win(&self) -> Access<&Window<'static>> {
        self.win.as_ref().ok_or(UNMAPPED)
    }

    /// Checks that `[offset, offset + len)` lies in the requested size.
    fn span(&self, offset: usize, len: usize) -> Access<()> {
        match offset.checked_add(len) {
            Some(end) if end <= self.size => Ok(()),
            _ => Err(OUTSIDE),
        }
    }

    fn write(&mut self, offset: usize, data: &[u8]) -> Access<()> {
        self.span(offset, data.len())?;
        let win = self.win.as_mut().ok_or(UNMAPPED)?;
        let calls = win.write(offset, data).map_err(mapping)?;
        self.dirty.add(offset, data.len());
        self.owner.count_poke(self.ty.class(), calls, data.len());
        Ok(())
    }

    fn fill(&mut self, offset: usize, byte: u8, len: usize) -> Access<()> {
        self.span(offset, len)?;
        let win = self.win.as_mut().ok_or(UNMAPPED)?;
        let calls = win.fill(offset, Fill::byte(byte), len).map_err(mapping)?;
        self.dirty.add(offset, len);
        self.owner.count_poke(self.ty.class(), calls, len);
        Ok(())
    }

    fn read(&self, offset: usize, out: &mut [u8]) -> Access<()> {
        self.span(offset, out.len())?;
        self.win()?.read(offset, out).map_err(mapping)
    }

    /// How its pages are mapped, from the page tables.
    pub fn probe(&self) -> Access<Mapping> {
        let win = self.win()?;
        let mut m = Mapping {
            pages: 0,
            huge_pages: 0,
            writable: false,
            executable: false,
            present: true,
        };
        // One probe per page the allocation touches: its first byte, then
        // every page boundary inside it.
        let first = PAGE_SIZE - self.pl.addr % PAGE_SIZE;
        let mut off = 0;
        while off < self.size {
            let p: PageInfo = win.probe(off).map_err(|err| Refusal {
                err,
                reason: "page-table probe failed",
            })?;
            m.pages += 1;
            m.huge_pages += usize::from(p.level == LEVEL_2M);
            m.present &= p.present;
            m.writable |= p.present && p.writable;
            m.executable |= p.present && p.executable;
            off = if off == 0 { first } else { off + PAGE_SIZE };
        }
        Ok(m)
    }
}

impl Drop for Allocation {
    fn drop(&mut self) {
        let Some(win) = self.win.take() else {
            return;
        };
        let class = self.ty.class();
        let owner = &*self.owner;
        let mut st = owner.class(class).lock();
        st.counters.freed(self.ty, self.size);
        let unmaps = st.engine.free_unmaps(self.pl.handle);
        // The window is consumed here: parked, or used one last time.
        let now = self.eager || st.queue.is_full();
        match on_free(class, &self.dirty, unmaps, now) {
            FreeAction::Release => {}
            FreeAction::Park => {
                let parked = Parked {
                    handle: self.pl.handle,
                    win,
                    dirty: self.dirty,
                    since: now_ns(),
                };
                match st.queue.push(parked) {
                    Ok(()) => {
                        // The first parked range wakes the worker; it drains
                        // the queue until it finds it empty (under this
                        // lock), so later ones need no wakeup of their own.
                        let first = st.queue.len() == 1;
                        drop(st);
                        // The worker refills it, one poke, within the bound
                        // the allocator documents; nothing reaches it
                        // meanwhile: its handle is gone and it is not free.
                        if first {
                            owner.kick();
                        }
                        return;
                    }
                    Err(p) => {
                        // Not full a moment ago and we hold the lock: never
                        // here, but refill now rather than lose it.
                        drop(st);
                        owner.refill_now(class, p.win, &self.dirty);
                        st = owner.class(class).lock();
                    }
                }
            }
            FreeAction::FillThenRelease | FreeAction::RefillThenRelease => {
                // A memset of writable memory, or text_poke calls, of up to
                // MAX_ALLOC bytes: with no lock, which would hold up the
                // class for as long. The block is still allocated in the
                // engine, so nobody else reaches it meanwhile; if the free
                // now unmaps what it would not have, the fill was wasted.
                drop(st);
                owner.refill_now(class, win, &self.dirty);
                st = owner.class(class).lock();
            }
        }
        let (retired, unmap_now) = {
            let cs = &mut **st;
            if let Err(e) = cs.engine.free(&mut cs.packs, self.pl.handle) {
                pr_err!("free of a {} allocation failed: {:?}\n", self.ty.name(), e);
            }
            // Memory the kernel owned was not refilled if its free emptied
            // a pack or extent (`unmaps`): it is unmapped before the free
            // returns, as the stock path vfree()s an emptied BPF pack or a
            // large image on the freeing thread.
            let unmap_now = (self.eager && unmaps).then(|| cs.packs.take_retired());
            (cs.packs.has_retired(), unmap_now)
        };
        drop(st);
        if let Some(areas) = unmap_now {
            // vfree(), with no lock of ours held.
            drop(areas);
        }
        if retired {
            // An emptied pack is unmapped by the worker, not on this path
            // (and so is the kernel's, if `take_retired` found no memory).
            owner.kick();
        }
    }
}

/// Code: `text`, `bpf`, `ftrace`, `kprobes`. Read-only and executable;
/// written through `text_poke`.
pub struct Code(pub(super) Allocation);

/// Read-only data not sealed yet: `rodata`, `ro_after_init`. Written
/// through `text_poke` until [`ReadOnly::seal`].
pub struct ReadOnly(pub(super) Allocation);

/// Sealed read-only data: can only be read (and freed).
pub struct Sealed(pub(super) Allocation);

/// Writable data: `data`. Never executable.
pub struct Data(pub(super) Allocation);

impl Code {
    /// Copies `data` to `offset` with `text_poke_copy()`.
    pub fn write(&mut self, offset: usize, data: &[u8]) -> Access<()> {
        self.0.write(offset, data)
    }

    /// Sets `len` bytes at `offset` to `byte` with `text_poke_set()`.
    pub fn fill(&mut self, offset: usize, byte: u8, len: usize) -> Access<()> {
        self.0.fill(offset, byte, len)
    }

    /// Calls the code at `offset` and returns what it left in `rax`. Takes
    /// no lock: only this handle's borrow keeps the code alive and
    /// unchanged while it runs.
    ///
    /// Refused (with the reason) unless `offset` starts with the
    /// architecture's landing pad (`ENDBR64`, `BTI c`).
    ///
    /// # Safety
    ///
    /// The bytes at `offset` must be a complete function for the kernel's C
    /// ABI that returns and does nothing its caller may not do.
    pub unsafe fn call(&self, offset: usize) -> Access<u64> {
        self.0.span(offset, 1)?;
        let win = self.0.win()?;
        let _running = self.0.owner.running(self.0.ty.class());
        // SAFETY: forwarded from the caller; the window is ROX (class RX).
        unsafe { win.call(offset) }.map_err(|r| {
            let (err, reason) = r.why();
            Refusal { err, reason }
        })
    }

    /// The common part.
    pub fn common(&self) -> &Allocation {
        &self.0
    }

    /// Gives this code to the kernel, which writes it with `text_poke`
    /// itself: the handle that is left can be looked at and freed, not
    /// written or run (our writes would race the kernel's).
    pub(crate) fn into_kernel(self) -> KernelCode {
        KernelCode(self.0)
    }
}

/// Code handed to the kernel (the BPF JIT, kprobes): the kernel writes it,
/// with `text_poke`, and runs it; the handle only frees it.
pub struct KernelCode(Allocation);

impl KernelCode {
    /// The common part.
    pub fn common(&self) -> &Allocation {
        &self.0
    }

    /// Marks the memory as the kernel's from now on: its owner writes all
    /// of it, so the free refills all of it, and does so on the freeing
    /// thread (one `text_poke_set()`, as the kernel's own
    /// `bpf_prog_pack_free()` does) rather than in the refill worker: the
    /// memory is trap-filled (or unmapped, if the free empties its pack or
    /// extent) when the kernel's free returns. Until then, a free has
    /// nothing to refill: the kernel never had the address.
    pub(crate) fn handed_out(&mut self) {
        self.0.dirty.add(0, self.0.size);
        self.0.eager = true;
    }
}

impl ReadOnly {
    /// Copies `data` to `offset` with `text_poke_copy()`.
    pub fn write(&mut self, offset: usize, data: &[u8]) -> Access<()> {
        self.0.write(offset, data)
    }

    /// Sets `len` bytes at `offset` to `byte` with `text_poke_set()`.
    pub fn fill(&mut self, offset: usize, byte: u8, len: usize) -> Access<()> {
        self.0.fill(offset, byte, len)
    }

    /// Makes it read-only for good: the returned handle cannot write.
    pub fn seal(self) -> Sealed {
        Sealed(self.0)
    }
}

impl Data {
    /// Copies `data` to `offset`.
    pub fn write(&mut self, offset: usize, data: &[u8]) -> Access<()> {
        self.0.write(offset, data)
    }

    /// Sets `len` bytes at `offset` to `byte`.
    pub fn fill(&mut self, offset: usize, byte: u8, len: usize) -> Access<()> {
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
    /// Wraps an allocation in the handle its type calls for.
    pub(super) fn of(a: Allocation) -> Any {
        match a.ty.class() {
            Class::Rx => Any::Code(Code(a)),
            Class::Ro => Any::ReadOnly(ReadOnly(a)),
            Class::Rw => Any::Data(Data(a)),
        }
    }

    /// The common part (type, size, placement, mapping, reads).
    pub fn common(&self) -> &Allocation {
        match self {
            Any::Code(Code(a)) | Any::ReadOnly(ReadOnly(a)) | Any::Sealed(Sealed(a)) => a,
            Any::Data(Data(a)) => a,
        }
    }

    /// Copies `out.len()` bytes from `offset`.
    pub fn read(&self, offset: usize, out: &mut [u8]) -> Access<()> {
        self.common().read(offset, out)
    }

    /// Writes `data` at `offset`; `EPERM` once sealed.
    pub fn write(&mut self, offset: usize, data: &[u8]) -> Access<()> {
        match self {
            Any::Code(c) => c.write(offset, data),
            Any::ReadOnly(r) => r.write(offset, data),
            Any::Data(d) => d.write(offset, data),
            Any::Sealed(_) => Err(SEALED),
        }
    }

    /// Fills `len` bytes at `offset` with `byte`; `EPERM` once sealed.
    pub fn fill(&mut self, offset: usize, byte: u8, len: usize) -> Access<()> {
        match self {
            Any::Code(c) => c.fill(offset, byte, len),
            Any::ReadOnly(r) => r.fill(offset, byte, len),
            Any::Data(d) => d.fill(offset, byte, len),
            Any::Sealed(_) => Err(SEALED),
        }
    }

    /// Whether it was sealed.
    pub fn is_sealed(&self) -> bool {
        matches!(self, Any::Sealed(_))
    }
}
