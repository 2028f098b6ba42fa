// SPDX-License-Identifier: GPL-2.0

//! The refill queue and its worker: freed RO/RX code is trap-filled in the
//! background, within a bounded time, one `text_poke` at a time.
//!
//! A free of written RO/RX memory parks its range (with the block's window,
//! so it stays allocated and nobody else can reach it) in its class's
//! bounded FIFO and queues the allocator's work item on the allocator's
//! unbound high-priority workqueue. A kworker then, step by step: takes the
//! oldest parked range off the queue under the class lock, with the ranges
//! parked right after it whose blocks continue it in memory (up to
//! [`CHAIN`], with at most [`GAP`] unwritten bytes between two written
//! ones); refills them with one `text_poke_set()` with *no* lock held; and
//! gives them back to the engine under the class lock. So no caller does
//! more than one poke (a full queue makes the free refill its own range),
//! the class lock is never held across a poke, and frees in address order
//! (a module unload, a benchmark) cost one poke per chain, not per range.
//! The same worker unmaps packs the engine released (restoring their
//! permissions and `vfree()`), so a free never does that either.
//!
//! The bound in time: a range is refilled as soon as the worker runs, which
//! is when a high-priority kworker gets a CPU, plus one poke per chain
//! queued ahead of it (at most [`QUEUE`] ranges); `stats` shows the longest wait seen
//! (`CLASS.refill_max_ns`). [`Allocator::flush`] does the same work on the
//! caller's thread and returns only when every queue is empty and the
//! worker is done with what it took off them.

use super::{Allocator, Running};
use crate::execmem::backend::mem::PAGE_SIZE;
use crate::execmem::backend::sched::{cond_resched, now_ns};
use crate::execmem::backend::storage::KernelStorage;
use crate::execmem::backend::window::Window;
use crate::execmem::backend::work::HasWork;
use crate::execmem::binpack::{
    engine::Handle,
    refill::{Dirty, Ring},
    types::Class,
};
use core::sync::atomic::Ordering;
use kernel::prelude::*;

/// Parked ranges a class holds at most; a free that finds the queue full
/// refills its own range. At about 20 us per poke (TCG), a full queue drains
/// in about 5 ms even with no two ranges chained: within the 10 ms bound.
pub const QUEUE: usize = 256;

/// A freed range waiting for its refill: still allocated in the engine.
pub struct Parked {
    pub(super) handle: Handle,
    pub(super) win: Window<'static>,
    pub(super) dirty: Dirty,
    /// When it was parked (`ktime_get()` ns).
    pub(super) since: u64,
}

/// Who refills: the worker's pokes and the callers' pokes are counted
/// apart, so that a benchmark can show what a call itself did.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum By {
    Worker,
    Caller,
}

/// Parked ranges one poke refills together at most.
const CHAIN: usize = 32;
/// Bytes between two written ranges that a chain refills although nobody
/// wrote them (the untouched rest of a parked block): at most a page per
/// link, so that a chain costs one poke and not much more memset.
const GAP: usize = PAGE_SIZE;

/// Takes the oldest parked range off `queue` and, after it, those parked
/// right after it whose blocks continue it in memory (frees in address
/// order, as a module unload or a benchmark does them): one window over
/// all of their blocks and the part of it to refill, `(window, offset,
/// len)`. Their handles and park times go to `done`, to be freed after the
/// refill. `None` if nothing is parked.
fn chain(
    queue: &mut Ring<Parked, KernelStorage>,
    done: &mut [Option<(Handle, u64)>; CHAIN],
) -> Option<(Window<'static>, usize, usize)> {
    let first = queue.pop()?;
    let (mut lo, len) = first.dirty.range().unwrap_or((0, 0));
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
        let touches = win.addr().checked_add(win.len()) == Some(next.win.addr());
        let gap = win.len().saturating_sub(hi).saturating_add(nlo);
        if !touches || gap > GAP {
            break;
        }
        let Some(next) = queue.pop() else { break };
        let base = win.len();
        match win.join(next.win) {
            Ok(w) => {
                win = w;
                hi = base.saturating_add(nlo).saturating_add(nlen);
                *d = Some((next.handle, next.since));
            }
            Err((w, other)) => {
                // Cannot happen (checked above); put it back at the end,
                // it is refilled on its own later.
                win = w;
                let back = Parked { win: other, ..next };
                // The slot it came from is free, so this cannot fail.
                let _ = queue.push(back);
                break;
            }
        }
    }
    if lo > hi {
        lo = hi;
    }
    Some((win, lo, hi - lo))
}

// SAFETY: `refill` is a `Work<Allocator>` field at this offset, and
// `Allocator`'s drop cancels it before touching anything `run` uses.
unsafe impl HasWork for Allocator {
    const OFFSET: usize = core::mem::offset_of!(Allocator, refill);

    fn run(&self) {
        self.drain(By::Worker);
    }
}

impl Allocator {
    /// Refills and releases every parked range and unmaps every released
    /// pack, one at a time, each poke with no lock held; returns when every
    /// class's queue is empty.
    pub(super) fn drain(&self, by: By) {
        for class in Class::ALL {
            self.drain_class(class, by);
        }
    }

    pub(super) fn drain_class(&self, class: Class, by: By) {
        loop {
            let mut done = [None::<(Handle, u64)>; CHAIN];
            let (work, retired) = {
                let mut st = self.class(class).lock();
                let retired = st.packs.take_retired();
                (chain(&mut st.queue, &mut done), retired)
            };
            // Restoring permissions and vfree() of released packs: no lock.
            drop(retired);
            let Some((mut win, off, len)) = work else {
                return;
            };
            // One poke for the chain, no lock held: its blocks are still
            // allocated in the engine, so nobody else can reach them.
            let mut dirty = Dirty::clean();
            dirty.add(off, len);
            self.refill(class, &mut win, &dirty, by);
            let now = now_ns();
            {
                let mut guard = self.class(class).lock();
                let st = &mut **guard;
                for (handle, since) in done.iter().flatten() {
                    self.stats(class)
                        .refill_max_ns
                        .fetch_max(now.saturating_sub(*since), Ordering::Relaxed);
                    if let Err(e) = st.engine.free(&mut st.packs, *handle) {
                        pr_err!("free of a parked {} range failed: {:?}\n", class.name(), e);
                    }
                }
            }
            if by == By::Worker {
                cond_resched();
            }
        }
    }

    /// Refills the written part of `win` with the class's fill byte: one
    /// `text_poke_set()`, counted for `by`.
    fn refill(&self, class: Class, win: &mut Window<'_>, dirty: &Dirty, by: By) {
        let Some((off, len)) = dirty.range() else {
            return;
        };
        let _refilling = Running::start(&self.stats(class).refilling);
        if let Err(e) = win.fill(off, class.fill(), len) {
            pr_err!("refill of freed {} memory failed: {:?}\n", class.name(), e);
            return;
        }
        let s = self.stats(class);
        match by {
            By::Caller => self.count_poke(class, len),
            By::Worker => {
                s.refill_pokes.fetch_add(1, Ordering::Relaxed);
                s.refill_bytes.fetch_add(len as u64, Ordering::Relaxed);
            }
        }
    }

    /// A free's own refill, on the caller, with no lock of the class held
    /// (writable memory, the queue was full, or the owner asked); the
    /// window ends here.
    pub(super) fn refill_now(&self, class: Class, mut win: Window<'_>, dirty: &Dirty) {
        self.refill(class, &mut win, dirty, By::Caller);
    }
}
