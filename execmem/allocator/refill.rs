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
//! [`CHAIN`], with at most [`refill::GAP`] unwritten bytes between two written
//! ones); refills them with `text_poke_set()` with *no* lock held; and
//! gives them back to the engine under the class lock. So no caller does
//! more than one refill, one poke per 64 KiB piece (a full queue
//! makes the free refill its own range),
//! the class lock is never held across a poke, and frees in address order
//! (a module unload, a benchmark) cost one refill per chain, not per range.
//! The same worker unmaps packs the engine released (restoring their
//! permissions and `vfree()`), so a free never does that either.
//!
//! The bound in time: a range is refilled as soon as the worker runs, which
//! is when a high-priority kworker gets a CPU, plus one refill per chain
//! queued ahead of it (at most [`QUEUE`] ranges); `stats` shows the longest wait seen
//! (`CLASS.refill_max_ns`). [`Allocator::flush`] does the same work on the
//! caller's thread and returns only when every queue is empty and the
//! worker is done with what it took off them.

use super::{Allocator, Running};
use crate::execmem::backend::sched::{cond_resched, now_ns};
use crate::execmem::backend::window::Window;
use crate::execmem::backend::work::HasWork;
use crate::execmem::binpack::{
    engine::Handle,
    refill::{self, chain, Dirty, Span, CHAIN},
    types::Class,
};
use core::sync::atomic::Ordering;
use kernel::prelude::*;

/// Parked ranges a class holds at most; a free that finds the queue full
/// refills its own range. At about 20 us per poke (TCG), a full queue drains
/// in about 5 ms even with no two ranges chained: within the 10 ms bound.
pub const QUEUE: usize = 256;

/// A freed range waiting for its refill: still allocated in the engine.
pub type Parked = refill::Parked<Handle, Window<'static>>;

/// Who refills: the worker's pokes and the callers' pokes are counted
/// apart, so that a benchmark can show what a call itself did.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum By {
    Worker,
    Caller,
}

impl Span for Window<'_> {
    fn addr(&self) -> usize {
        Window::addr(self)
    }

    fn bytes(&self) -> usize {
        Window::len(self)
    }

    fn join(self, next: Self) -> core::result::Result<Self, (Self, Self)> {
        Window::join(self, next)
    }
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

    /// Refills the written part of `win` with the class's fill: a memset
    /// for writable memory, else `text_poke_set()` (in 64 KiB pieces),
    /// counted for `by`; `refilling` while under way.
    fn refill(&self, class: Class, win: &mut Window<'_>, dirty: &Dirty, by: By) {
        let Some((off, len)) = dirty.range() else {
            return;
        };
        let _refilling = Running::start(&self.stats(class).refilling);
        let calls = match win.fill(off, class.fill(), len) {
            Ok(calls) => calls,
            Err(e) => {
                pr_err!("refill of freed {} memory failed: {:?}\n", class.name(), e);
                return;
            }
        };
        let s = self.stats(class);
        match by {
            By::Caller => self.count_poke(class, calls, len),
            By::Worker => {
                s.refill_pokes.fetch_add(calls as u64, Ordering::Relaxed);
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
