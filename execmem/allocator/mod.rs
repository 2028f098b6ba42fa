// SPDX-License-Identifier: GPL-2.0

//! The allocator and its safe API.
//!
//! [`Allocator::alloc`] takes a type, a size and an optional alignment and
//! returns an owning handle ([`handle`]); the handle frees its range on
//! drop. Freed memory is refilled with the class's fill (the trap for code,
//! zero otherwise) before the engine may hand it out again, so new
//! allocations start clean and freed code is never handed to a new owner:
//! writable memory with a memset on the spot, RO/RX memory by the refill
//! worker within a bounded time ([`refill`]). Only what was written is
//! refilled, and nothing when the free is known to unmap the backing (when
//! frees race, a fill decided before another free may still be wasted on
//! memory the last free unmaps).
//!
//! Locking: one mutex per permission class, held for the engine and the
//! pack table of that class, never across a `text_poke`, a free's memset,
//! a `vfree()` of a released pack, or code of anyone else: handles write, read and call
//! through their own window without any allocator lock. Mapping a new pack
//! (vmalloc, fill, one permission change) happens under the class mutex:
//! bounded, and the rare path.
//!
//! Limits: a global cap (`global_cap`, bytes of packs mapped over all
//! classes) keeps the rest of the module range for the kernel's own
//! modules and BPF; pack memory is allocated with `__GFP_RETRY_MAYFAIL`
//! (never the OOM killer) and charged to the caller's memory cgroup when a
//! user asked for it.

pub mod handle;
pub mod refill;
pub mod report;

use crate::execmem::backend::mem::{Range, RangeKind};
use crate::execmem::backend::storage::KernelStorage;
use crate::execmem::backend::work::{Queue, Work};
use crate::execmem::binpack::{
    engine::Engine,
    refill::Ring,
    storage::{Error as CoreError, PackSource},
    types::{Class, ExecmemType, PerClass, PerType},
};
use crate::execmem::packs::{Budget, Packs};
use core::sync::atomic::{AtomicU64, Ordering};
use kernel::{
    new_mutex,
    prelude::*,
    sync::{Arc, Mutex},
};

pub use handle::{Allocation, Any, Code, Data, KernelCode, Mapping, ReadOnly, Sealed};
use refill::{By, Parked, QUEUE};
pub use report::{ClassReport, PackReport, TypeCounters};

/// Why an allocation was refused: the errno and a one-line reason.
#[derive(Clone, Copy, Debug)]
pub struct Refusal {
    /// The errno.
    pub err: Error,
    /// One line, no newline.
    pub reason: &'static str,
}

impl From<Refusal> for Error {
    fn from(r: Refusal) -> Error {
        r.err
    }
}

fn refusal(e: CoreError) -> Refusal {
    let err = match e {
        CoreError::Invalid => EINVAL,
        CoreError::TooBig => E2BIG,
        CoreError::NoMemory => ENOMEM,
        CoreError::NotAllocated => ENOENT,
        CoreError::Corrupted | CoreError::WouldGrow => EFAULT,
    };
    Refusal {
        err,
        reason: e.reason(),
    }
}

/// Who an allocation is for: memory a user asked for is charged to the
/// user's memory cgroup; the kernel may ask with `text_mutex` held.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Requester {
    /// A user, through debugfs.
    User,
    /// The kernel (the provider's callers, the allocator's own probe). Its
    /// allocation never calls `text_poke` (which takes `text_mutex`): it
    /// does not refill parked ranges on its thread, it grows or fails.
    Kernel,
}

/// The counters of one type, under the class lock.
#[derive(Clone, Copy, Default)]
pub(crate) struct Counters {
    pub(crate) types: PerType<TypeCounters>,
}

impl Counters {
    fn of(&mut self, ty: ExecmemType) -> &mut TypeCounters {
        &mut self.types[ty]
    }

    fn allocated(&mut self, ty: ExecmemType, size: usize, who: Requester) {
        let c = self.of(ty);
        c.allocs = c.allocs.wrapping_add(1);
        c.live = c.live.wrapping_add(1);
        c.live_bytes = c.live_bytes.wrapping_add(size as u64);
        if who == Requester::Kernel {
            c.kernel_allocs = c.kernel_allocs.wrapping_add(1);
        }
    }

    pub(crate) fn freed(&mut self, ty: ExecmemType, size: usize) {
        let c = self.of(ty);
        c.frees = c.frees.wrapping_add(1);
        c.live = c.live.wrapping_sub(1);
        c.live_bytes = c.live_bytes.wrapping_sub(size as u64);
    }
}

/// Counters of one class that change without its lock.
#[derive(Default)]
pub(crate) struct ClassStats {
    /// `text_poke` calls made on callers' paths (writes, a free's own refill).
    pub(crate) pokes: AtomicU64,
    /// Bytes they wrote.
    pub(crate) poke_bytes: AtomicU64,
    /// `text_poke` calls made by the refill worker.
    pub(crate) refill_pokes: AtomicU64,
    /// Bytes it wrote.
    pub(crate) refill_bytes: AtomicU64,
    /// Longest time a parked range waited for its refill, in ns.
    pub(crate) refill_max_ns: AtomicU64,
    /// Calls into the class's code under way ([`handle::Code::call`]).
    pub(crate) running: AtomicU64,
    /// Refills of freed memory under way, by freeing threads and the
    /// worker.
    pub(crate) refilling: AtomicU64,
}

/// Something under way in a class: counted in one of its gauges
/// ([`ClassStats::running`], [`ClassStats::refilling`]) from its creation
/// to its drop.
pub(crate) struct Running<'a>(&'a AtomicU64);

impl<'a> Running<'a> {
    /// Counts one more in `gauge` until the result drops.
    pub(crate) fn start(gauge: &'a AtomicU64) -> Self {
        gauge.fetch_add(1, Ordering::Relaxed);
        Running(gauge)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Everything one class owns, under its mutex.
pub struct ClassState {
    engine: KBox<Engine<KernelStorage>>,
    packs: Packs,
    counters: Counters,
    queue: Ring<Parked, KernelStorage>,
}

impl ClassState {
    fn new(class: Class, budget: &Arc<Budget>) -> Result<KBox<Self>> {
        let kind = match class {
            Class::Rx => RangeKind::Text,
            Class::Ro | Class::Rw => RangeKind::Data,
        };
        let range = Range::of(kind)?;
        let queue = Ring::new(QUEUE).map_err(|_| ENOMEM)?;
        KBox::new(
            ClassState {
                engine: KBox::new(Engine::new(class), GFP_KERNEL)?,
                packs: Packs::new(class, range, budget.clone()),
                counters: Counters::default(),
                queue,
            },
            GFP_KERNEL,
        )
        .map_err(Into::into)
    }
}

/// A pack source that maps nothing, to ask the engine for a placement in
/// the space it has: an `alloc` through it fails with `WouldGrow` and
/// `wanted` set where growing would be needed, and changes nothing (the
/// engine looks elsewhere only after a map fails with `NoMemory`).
#[derive(Default)]
struct NoGrowth {
    wanted: bool,
}

impl PackSource for NoGrowth {
    fn map(&mut self, _: Class, _: usize, _: usize) -> Result<usize, CoreError> {
        self.wanted = true;
        Err(CoreError::WouldGrow)
    }
    fn unmap(&mut self, _: Class, _: usize, _: usize, _: usize) {}
    fn map_pages(&mut self, _: Class, _: usize, _: usize, _: usize) -> Result<usize, CoreError> {
        self.wanted = true;
        Err(CoreError::WouldGrow)
    }
    fn unmap_pages(&mut self, _: Class, _: usize, _: usize, _: usize) {}
}

/// The allocator: one engine and pack table per permission class.
#[pin_data(PinnedDrop)]
pub struct Allocator {
    // First: a running refill is waited for before anything else drops.
    #[pin]
    refill: Work<Allocator>,
    /// Where `refill` runs: dropped (drained, destroyed) after it.
    wq: Queue,
    #[pin]
    rx: Mutex<KBox<ClassState>>,
    #[pin]
    ro: Mutex<KBox<ClassState>>,
    #[pin]
    rw: Mutex<KBox<ClassState>>,
    stats: PerClass<ClassStats>,
    budget: Arc<Budget>,
}

impl Allocator {
    /// A new allocator with no packs; maps nothing until the first alloc.
    pub fn new() -> Result<Arc<Self>> {
        let budget = Arc::new(Budget::new(), GFP_KERNEL)?;
        let wq = Queue::new()?;
        let (rx, ro, rw) = (
            ClassState::new(Class::Rx, &budget)?,
            ClassState::new(Class::Ro, &budget)?,
            ClassState::new(Class::Rw, &budget)?,
        );
        Arc::pin_init(
            pin_init!(Allocator {
                refill <- Work::new(),
                wq,
                rx <- new_mutex!(rx),
                ro <- new_mutex!(ro),
                rw <- new_mutex!(rw),
                stats: Default::default(),
                budget,
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

    /// The allocator's workqueue (unbound, high priority): for work that
    /// releases allocations off a caller's thread.
    pub(crate) fn queue(&self) -> &Queue {
        &self.wq
    }

    /// Runs the refill worker soon (unless it is queued already).
    fn kick(&self) {
        Work::queue(self, &self.wq);
    }

    pub(crate) fn stats(&self, c: Class) -> &ClassStats {
        &self.stats[c]
    }

    /// Counts a caller's write of `len` bytes into `class` memory, which
    /// took `calls` calls of the text-patching primitives (none if the
    /// class is writable).
    fn count_poke(&self, class: Class, calls: usize, len: usize) {
        if class != Class::Rw && len != 0 {
            let s = self.stats(class);
            s.pokes.fetch_add(calls as u64, Ordering::Relaxed);
            s.poke_bytes.fetch_add(len as u64, Ordering::Relaxed);
        }
    }

    /// Counts a call into `class` code until the returned guard drops.
    pub(crate) fn running(&self, class: Class) -> Running<'_> {
        Running::start(&self.stats(class).running)
    }

    /// `text_poke` calls made on callers' paths for `class` so far (not by
    /// the refill worker): what a benchmark reads around one call.
    pub fn caller_pokes(&self, class: Class) -> (u64, u64) {
        let s = self.stats(class);
        (
            s.pokes.load(Ordering::Relaxed),
            s.poke_bytes.load(Ordering::Relaxed),
        )
    }

    /// Allocates `size` bytes of type `ty`, aligned to `align` (a power of
    /// two up to 2 MiB) or to the type's default.
    ///
    /// Refusals: `EINVAL` (size 0, bad alignment), `E2BIG` (above the
    /// limit), `ENOSPC` (the global cap), `ENOMEM`.
    pub fn alloc(
        self: &Arc<Self>,
        ty: ExecmemType,
        size: usize,
        align: Option<usize>,
        who: Requester,
    ) -> Result<Any, Refusal> {
        self.alloc_raw(ty, size, align, who).map(Any::of)
    }

    /// Allocates code (`text`, `bpf`, `ftrace`, `kprobes`); `EINVAL` for
    /// other types.
    pub fn alloc_code(
        self: &Arc<Self>,
        ty: ExecmemType,
        size: usize,
        align: Option<usize>,
        who: Requester,
    ) -> Result<Code, Refusal> {
        if ty.class() != Class::Rx {
            return Err(Refusal {
                err: EINVAL,
                reason: "not a code type",
            });
        }
        self.alloc_raw(ty, size, align, who).map(Code)
    }

    fn alloc_raw(
        self: &Arc<Self>,
        ty: ExecmemType,
        size: usize,
        align: Option<usize>,
        who: Requester,
    ) -> Result<Allocation, Refusal> {
        let class = ty.class();
        let mut guard = self.class(class).lock();
        // In the space the class has, first.
        let mut probe = NoGrowth::default();
        let mut placed = guard.engine.alloc(&mut probe, ty, size, align);
        if probe.wanted && !guard.queue.is_empty() && who == Requester::User {
            // It would grow the class (or fail) while freed ranges wait for
            // their refill: take them back first, then look again (not for
            // the kernel, which may hold `text_mutex`: the worker does it).
            drop(guard);
            self.drain_class(class, By::Caller);
            guard = self.class(class).lock();
            probe = NoGrowth::default();
            placed = guard.engine.alloc(&mut probe, ty, size, align);
        }
        let st = &mut **guard;
        let pl = if probe.wanted {
            st.packs.start_request(who);
            let r = st.engine.alloc(&mut st.packs, ty, size, align);
            let capped = st.packs.capped();
            r.map_err(|e| match e {
                CoreError::NoMemory if capped => Refusal {
                    err: ENOSPC,
                    reason: "global cap reached: the rest of the module range is the kernel's",
                },
                e => refusal(e),
            })?
        } else {
            placed.map_err(refusal)?
        };
        let win = st.packs.area(pl.pack.index()).ok_or(EFAULT).and_then(|a| {
            let off = pl.addr.checked_sub(a.addr()).ok_or(EFAULT)?;
            // The engine just placed the block `[pl.addr, pl.addr +
            // pl.size)` in the area of slot `pl.pack` and will place
            // nothing else there until this allocation is freed (the
            // window then goes to the refill queue or ends before the
            // engine's free); the area stays mapped, with its permissions,
            // while a block of it is allocated (and until the worker drops
            // it after the engine released it).
            // SAFETY: so this window is the only one on those bytes, and
            // its area outlives it with unchanged permissions.
            unsafe { crate::execmem::backend::window::Window::new(a, off, pl.size) }
        });
        let win = match win {
            Ok(w) => w,
            Err(_) => {
                // The engine placed it in a pack we do not know: give it back.
                let _ = st.engine.free(&mut st.packs, pl.handle);
                return Err(refusal(CoreError::Corrupted));
            }
        };
        st.counters.allocated(ty, size, who);
        Ok(Allocation {
            owner: self.clone(),
            ty,
            size,
            pl,
            win: Some(win),
            dirty: Default::default(),
            eager: false,
        })
    }

    /// Refills and releases every parked freed range now, on this thread,
    /// and unmaps released packs; returns when nothing is parked and the
    /// worker holds none it took off a queue (it refills a chain with no
    /// lock held, so an empty queue alone says nothing of those), so that
    /// no freed code of the caller's stays executable. Not from the
    /// worker.
    pub fn flush(&self) {
        self.drain(By::Caller);
        self.refill.flush_sync();
    }

    /// Gives back what is not in use: [`Allocator::flush`], then unmaps
    /// every class's spare pack.
    pub fn trim(&self) {
        self.flush();
        for class in Class::ALL {
            let retired = {
                let mut st = self.class(class).lock();
                let st = &mut **st;
                if let Err(e) = st.engine.release_spare(&mut st.packs) {
                    pr_err!("release of the {} spare failed: {:?}\n", class.name(), e);
                }
                st.packs.take_retired()
            };
            drop(retired);
        }
    }

    /// Checks every class's engine invariants (O(blocks)): for the
    /// selftest.
    pub fn check(&self) -> Result<(), (Class, CoreError)> {
        for class in Class::ALL {
            self.class(class)
                .lock()
                .engine
                .check()
                .map_err(|e| (class, e))?;
        }
        Ok(())
    }

    /// Bytes of packs mapped now, over all classes (what `global_cap`
    /// bounds).
    pub fn mapped_bytes(&self) -> usize {
        self.budget.mapped()
    }
}

#[pinned_drop]
impl PinnedDrop for Allocator {
    fn drop(self: Pin<&mut Self>) {
        // No refill may run while we tear down (it would be waited for by
        // the `Work`'s own drop too, but only after this).
        self.refill.cancel_sync();
        // Every handle holds an `Arc` to us, so nothing is live here; refill
        // what their frees parked, then unmap whatever the engines hold (the
        // spare packs).
        self.drain(By::Caller);
        for class in Class::ALL {
            let retired = {
                let mut st = self.class(class).lock();
                let st = &mut **st;
                let leaked = st.engine.release_all(&mut st.packs);
                if leaked != 0 {
                    pr_err!(
                        "{} allocation(s) of class {} leaked\n",
                        leaked,
                        class.name()
                    );
                }
                st.packs.take_retired()
            };
            drop(retired);
        }
    }
}
