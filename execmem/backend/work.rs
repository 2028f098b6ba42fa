// SPDX-License-Identifier: GPL-2.0

//! A workqueue of our own and a work item embedded in its owner.
//!
//! The allocator refills freed code in the background: a free queues the
//! owner's [`Work`] on the allocator's [`Queue`], an unbound high-priority
//! workqueue, so the refill runs on whichever CPU is free rather than on the
//! CPU of the freeing task (a per-CPU queue would wait for that task to
//! sleep, which a task in a syscall loop of a non-preemptible kernel
//! does not do), and a kworker calls [`HasWork::run`] on the owner. The
//! owner is reached from the `work_struct` by its offset (`container_of`),
//! so the queued work holds no reference: instead, dropping a [`Work`]
//! cancels it and waits for a running instance (`cancel_work_sync()`), and
//! [`HasWork`] requires the owner to outlive that.
//!
//! 6.12's `kernel::workqueue` queues reference-counted owners only, which
//! would let the last reference drop inside the kworker, after module exit
//! has returned; hence this small wrapper.

use core::{marker::PhantomData, ptr::NonNull};
use kernel::{bindings, c_str, prelude::*, types::Opaque};

/// An unbound, high-priority workqueue, destroyed (after draining) on drop.
///
/// # Invariants
///
/// `wq` is a live workqueue made by [`Queue::new`].
pub struct Queue {
    wq: NonNull<bindings::workqueue_struct>,
}

// SAFETY: a workqueue may be used and destroyed from any thread.
unsafe impl Send for Queue {}
// SAFETY: queueing onto a workqueue is thread-safe.
unsafe impl Sync for Queue {}

impl Queue {
    /// A new workqueue called `execmem_rs`.
    pub fn new() -> Result<Self> {
        // SAFETY: "%s" with a NUL-terminated string is a valid format for
        // the variadic name; the flags are plain values.
        let wq = unsafe {
            bindings::alloc_workqueue(
                c_str!("%s").as_char_ptr(),
                bindings::wq_flags_WQ_UNBOUND | bindings::wq_flags_WQ_HIGHPRI,
                0,
                c_str!("execmem_rs").as_char_ptr(),
            )
        };
        // INVARIANT: just made.
        Ok(Queue {
            wq: NonNull::new(wq).ok_or(ENOMEM)?,
        })
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        // SAFETY: live (type invariant) and ours; destroy_workqueue() drains
        // what is still queued first, and nothing queues onto it any more.
        unsafe { bindings::destroy_workqueue(self.wq.as_ptr()) };
    }
}

/// A type that embeds a [`Work<Self>`] and runs when it is queued.
///
/// # Safety
///
/// `OFFSET` is the offset in bytes of a field of type `Work<Self>` in
/// `Self` (`core::mem::offset_of!`), and a `Self` that contains an
/// initialised `Work` is pinned and does not start dropping fields that
/// `run` uses before the `Work` was dropped or [`Work::cancel_sync`]
/// returned (e.g. the `Work` is the first field, or `Self`'s drop calls
/// `cancel_sync` first).
pub unsafe trait HasWork: Sync + Sized {
    /// Offset of the `Work<Self>` field.
    const OFFSET: usize;
    /// What the work does; runs in a kworker, in process context.
    fn run(&self);
}

/// The lockdep class of every [`Work`]: they all run the same kind of
/// function, under no lock of their owner's.
struct LockClass(Opaque<bindings::lock_class_key>);

// SAFETY: lockdep synchronises its use of a `lock_class_key` itself.
unsafe impl Sync for LockClass {}

// Lockdep expects a static key to be uninitialised memory.
static CLASS: LockClass = LockClass(Opaque::uninit());

/// A work item of `T`.
///
/// # Invariants
///
/// `work` is an initialised `work_struct` whose function is
/// [`Work::func`], embedded in a `T` at `T::OFFSET`.
#[pin_data(PinnedDrop)]
#[repr(C)]
pub struct Work<T: HasWork> {
    #[pin]
    work: Opaque<bindings::work_struct>,
    _owner: PhantomData<T>,
}

// SAFETY: a `work_struct` may be queued and cancelled from any thread; the
// workqueue code synchronises that itself.
unsafe impl<T: HasWork> Send for Work<T> {}
// SAFETY: as above; `&Work` only queues or cancels.
unsafe impl<T: HasWork> Sync for Work<T> {}

impl<T: HasWork> Work<T> {
    /// An idle work item, to be placed at `T::OFFSET` of a pinned `T`.
    pub fn new() -> impl PinInit<Self> {
        pin_init!(Work {
            work <- Opaque::ffi_init(|w: *mut bindings::work_struct| {
                // SAFETY: `w` points to the uninitialised `work_struct` being
                // initialised in place; the name and key are static.
                unsafe {
                    bindings::init_work_with_key(
                        w,
                        Some(Self::func),
                        false,
                        c_str!("execmem_rs_work").as_char_ptr(),
                        CLASS.0.get(),
                    )
                }
            }),
            _owner: PhantomData,
        })
    }

    /// # Safety
    ///
    /// Called by the workqueue code with a `work_struct` initialised by
    /// [`Work::new`].
    unsafe extern "C" fn func(w: *mut bindings::work_struct) {
        // `Work` is `repr(C)` with the `work_struct` first: `w` is the
        // address of the `Work` itself.
        let owner = w.cast::<u8>().wrapping_sub(T::OFFSET).cast::<T>();
        // SAFETY: the work was queued through `&self` of a `Work` embedded
        // in a live, pinned `T` at `T::OFFSET` (type invariant, `HasWork`);
        // that `T` outlives the run, since dropping it waits for this run
        // (`cancel_work_sync()` in `Work::drop` or in the owner's drop).
        let owner = unsafe { &*owner };
        owner.run();
    }

    /// Queues `owner`'s work on `q` unless it is queued already; returns
    /// whether it was queued by this call.
    ///
    /// It takes the owner, not a `&Work`: the work item is found at
    /// `T::OFFSET` in a `T`, so only a `Work` embedded in a `T` can be
    /// queued. (A `Work<T>` made by [`Work::new`] but placed anywhere else
    /// would have [`Work::func`] compute its owner from a wrong address.)
    pub fn queue(owner: &T, q: &Queue) -> bool {
        let owner: *const T = owner;
        // SAFETY: `HasWork` guarantees a `Work<T>` at `T::OFFSET` in every
        // `T`, so the result points into `*owner`, which `&T` keeps alive.
        let this = unsafe { &*owner.cast::<u8>().add(T::OFFSET).cast::<Self>() };
        // SAFETY: `work` is initialised (type invariant) and embedded in a
        // pinned `T` (`HasWork`), and `q` is a live workqueue (its type
        // invariant).
        unsafe {
            bindings::queue_work_on(
                bindings::wq_misc_consts_WORK_CPU_UNBOUND as i32,
                q.wq.as_ptr(),
                this.work.get(),
            )
        }
    }

    /// Waits until the work is idle: a queued run has run, a running one
    /// returned. Not from the work's own run, which would wait for itself.
    pub fn flush_sync(&self) {
        // SAFETY: `work` is initialised (type invariant); this may sleep,
        // and every caller is in process context.
        unsafe { bindings::flush_work(self.work.get()) };
    }

    /// Cancels a queued run and waits for a running one; afterwards the
    /// work is idle (even if it queued itself again while running).
    pub fn cancel_sync(&self) {
        // SAFETY: `work` is initialised (type invariant); this may sleep,
        // and every caller is in process context.
        unsafe { bindings::cancel_work_sync(self.work.get()) };
    }
}

#[pinned_drop]
impl<T: HasWork> PinnedDrop for Work<T> {
    fn drop(self: Pin<&mut Self>) {
        self.cancel_sync();
    }
}
