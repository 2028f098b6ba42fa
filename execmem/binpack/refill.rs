// SPDX-License-Identifier: GPL-2.0

//! What happens to freed memory before the engine may hand it out again.
//!
//! Packs are filled with their class's fill byte when mapped, and a freed
//! range is refilled before the engine gets it back, so every allocation
//! starts clean and freed code never reaches a new owner. Only what was
//! written needs refilling ([`Dirty`]), and nothing does when the free
//! unmaps the backing. Refilling RO/RX memory is a `text_poke`, so the
//! kernel defers it: the range is *parked* in a bounded FIFO ([`Ring`]) and
//! a worker refills parked ranges one poke at a time, outside the class
//! lock, then frees them; [`chain`] picks the ranges one poke refills
//! together. [`on_free`] is the decision; the kernel's allocator carries
//! it out.

use super::storage::{Error, Storage, Vector};
use super::types::{arch, Class};

/// The bytes of an allocation written since it was allocated, as one
/// range `[lo, hi)` covering them all (empty: nothing written).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dirty {
    lo: usize,
    hi: usize,
}

impl Dirty {
    /// Nothing written yet.
    pub const fn clean() -> Self {
        Dirty { lo: 0, hi: 0 }
    }

    /// Records a write of `len` bytes at `offset` (already bounds-checked
    /// by the caller; saturating so that it can never wrap), rounded out to
    /// whole trap instructions: the refill writes whole ones (arm64's is a
    /// 4-byte word). Allocations are granule-sized and granule-aligned, so
    /// the rounded range stays inside the allocation.
    pub fn add(&mut self, offset: usize, len: usize) {
        self.add_in(offset, len, arch::TRAP.width());
    }

    /// [`Dirty::add`] with the trap's width given (a power of two): how
    /// the host checks arm64's 4-byte rounding whatever it runs on.
    pub fn add_in(&mut self, offset: usize, len: usize, w: usize) {
        if len == 0 {
            return;
        }
        let end = offset.saturating_add(len);
        let end = end.checked_next_multiple_of(w).unwrap_or(end);
        let offset = offset & !w.wrapping_sub(1);
        if self.is_clean() {
            *self = Dirty {
                lo: offset,
                hi: end,
            };
        } else {
            self.lo = self.lo.min(offset);
            self.hi = self.hi.max(end);
        }
    }

    /// Whether nothing was written.
    pub const fn is_clean(&self) -> bool {
        self.hi <= self.lo
    }

    /// `(offset, len)` of the range to refill, if any.
    pub fn range(&self) -> Option<(usize, usize)> {
        if self.is_clean() {
            None
        } else {
            Some((self.lo, self.hi.saturating_sub(self.lo)))
        }
    }
}

/// What a free does with its range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FreeAction {
    /// Give it straight back: it still holds the fill byte, or its backing
    /// is unmapped by this free.
    Release,
    /// Writable memory: set the written bytes with a plain memset (no
    /// `text_poke`, nothing to defer, but up to `MAX_ALLOC` bytes: with no
    /// lock held), then give it back.
    FillThenRelease,
    /// RO/RX memory: park it for the worker to refill (one `text_poke`).
    Park,
    /// RO/RX memory and the queue is full (or its owner asked): refill it
    /// now (one `text_poke` on the caller), then give it back.
    RefillThenRelease,
}

/// Decides what a free of a `class` allocation does: `dirty` is what it
/// wrote, `unmaps` whether the engine's free unmaps its backing (an
/// overflow extent, or an extent it is the last allocation of), `now`
/// whether it must refill on the caller (the class's refill queue is full,
/// or the memory's owner asked for it). At most one `text_poke` on the
/// caller, whatever happens.
pub fn on_free(class: Class, dirty: &Dirty, unmaps: bool, now: bool) -> FreeAction {
    if dirty.is_clean() || unmaps {
        FreeAction::Release
    } else if class == Class::Rw {
        FreeAction::FillThenRelease
    } else if now {
        FreeAction::RefillThenRelease
    } else {
        FreeAction::Park
    }
}

/// A FIFO of at most a fixed number of items, allocated once: pushing
/// never allocates, so a free can always park or decide not to.
///
/// # Invariants
///
/// `slots.len()` is the capacity; the `len` items are at
/// `slots[(head + i) % capacity]` for `i < len`, every other slot is `None`.
pub struct Ring<T, S: Storage> {
    slots: S::Vec<Option<T>>,
    head: usize,
    len: usize,
}

impl<T, S: Storage> Ring<T, S> {
    /// An empty ring that holds up to `capacity` items.
    pub fn new(capacity: usize) -> Result<Self, Error> {
        let mut slots = S::new_vec();
        for _ in 0..capacity {
            slots.try_push(None)?;
        }
        Ok(Ring {
            slots,
            head: 0,
            len: 0,
        })
    }

    /// Items queued.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether a push would fail.
    pub fn is_full(&self) -> bool {
        self.len >= self.slots.len()
    }

    /// Appends `v`, or gives it back if the ring is full.
    pub fn push(&mut self, v: T) -> Result<(), T> {
        let cap = self.slots.len();
        if self.len >= cap {
            return Err(v);
        }
        let at = self.head.wrapping_add(self.len).checked_rem(cap);
        match at.and_then(|i| self.slots.get_mut(i)) {
            Some(slot @ None) => {
                *slot = Some(v);
                self.len = self.len.wrapping_add(1);
                Ok(())
            }
            _ => Err(v),
        }
    }

    /// Removes and returns the oldest item.
    pub fn pop(&mut self) -> Option<T> {
        if self.len == 0 {
            return None;
        }
        let v = self.slots.get_mut(self.head)?.take()?;
        self.head = self
            .head
            .wrapping_add(1)
            .checked_rem(self.slots.len())
            .unwrap_or(0);
        self.len = self.len.wrapping_sub(1);
        Some(v)
    }

    /// The oldest item.
    pub fn front(&self) -> Option<&T> {
        if self.len == 0 {
            return None;
        }
        self.slots.get(self.head)?.as_ref()
    }
}

/// Parked ranges one poke refills together at most.
pub const CHAIN: usize = 32;

/// Bytes between two written ranges that a chain refills although nobody
/// wrote them (the untouched rest of a parked block): at most a page per
/// link, so that a chain costs one poke and not much more memset.
pub const GAP: usize = arch::PAGE_SIZE;

/// The memory of a parked range as [`chain`] joins it: the kernel's
/// window over the block, a plain span on the host.
pub trait Span: Sized {
    /// Address of the first byte.
    fn addr(&self) -> usize;
    /// Its length in bytes.
    fn bytes(&self) -> usize;
    /// One span over `self` and `next` if `next` starts where `self` ends
    /// (and the embedder can join them); both back otherwise.
    fn join(self, next: Self) -> Result<Self, (Self, Self)>;
}

/// A freed range waiting for its refill: its block, handle `H`, still
/// allocated in the engine, its memory `W`, what was written of it, and
/// when it was parked (ns).
pub struct Parked<H, W> {
    /// The block's handle, freed once refilled.
    pub handle: H,
    /// Its memory: nobody else reaches it until the handle is freed.
    pub win: W,
    /// What was written of it.
    pub dirty: Dirty,
    /// When it was parked.
    pub since: u64,
}

/// Takes the oldest parked range off `queue` and, after it, those parked
/// right after it whose blocks continue it in memory (frees in address
/// order, as a module unload or a benchmark does them), with at most
/// [`GAP`] unwritten bytes between two written ranges: one span over all
/// of their blocks and the part of it to refill, `(span, offset, len)`.
/// Their handles and park times go to `done` (at most [`CHAIN`]), to be
/// freed after the refill. `None` if nothing is parked.
pub fn chain<H: Copy, W: Span, S: Storage>(
    queue: &mut Ring<Parked<H, W>, S>,
    done: &mut [Option<(H, u64)>; CHAIN],
) -> Option<(W, usize, usize)> {
    let first = queue.pop()?;
    let (lo, len) = first.dirty.range().unwrap_or((0, 0));
    let mut hi = lo.saturating_add(len);
    let mut win = first.win;
    let mut slots = done.iter_mut();
    if let Some(d) = slots.next() {
        *d = Some((first.handle, first.since));
    }
    for d in slots {
        let Some(next) = queue.front() else { break };
        let Some((nlo, nlen)) = next.dirty.range() else {
            break;
        };
        let touches = win.addr().checked_add(win.bytes()) == Some(next.win.addr());
        let gap = win.bytes().saturating_sub(hi).saturating_add(nlo);
        if !touches || gap > GAP {
            break;
        }
        let Some(next) = queue.pop() else { break };
        let base = win.bytes();
        match win.join(next.win) {
            Ok(w) => {
                win = w;
                hi = base.saturating_add(nlo).saturating_add(nlen);
                *d = Some((next.handle, next.since));
            }
            Err((w, other)) => {
                // Not joinable after all: put it back at the end, it is
                // refilled on its own later.
                win = w;
                let back = Parked { win: other, ..next };
                // The slot it came from is free, so this cannot fail.
                let _ = queue.push(back);
                break;
            }
        }
    }
    let lo = lo.min(hi);
    Some((win, lo, hi.saturating_sub(lo)))
}
