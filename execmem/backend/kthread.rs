// SPDX-License-Identifier: GPL-2.0

//! Kernel threads, for the test harness's stress runner and selftest
//! (compiled with the harness only, see `execmem/test/`).
//!
//! [`Thread::spawn`] runs a closure on a new kernel thread; [`Thread::join`]
//! (or drop) stops and reaps it with `kthread_stop()`, which returns only
//! after the thread function has returned. So once every thread is joined,
//! no thread runs module code any more, and the module may be unloaded.
//! A closure that never started (a stop raced with the thread's start) is
//! dropped by `join`, so nothing leaks either way.

use core::ffi::c_void;
use kernel::{bindings, error::from_err_ptr, prelude::*, str::CStr};

/// Whether the current task has a signal pending.
pub fn signal_pending() -> bool {
    // SAFETY: `get_current()` is the running task, live while it runs.
    unsafe { bindings::signal_pending(bindings::get_current()) != 0 }
}

struct Payload<F> {
    f: Option<F>,
}

/// A running kernel thread.
///
/// # Invariants
///
/// `task` is a kthread created with `payload` as its data, woken, and
/// referenced by us (`get_task_struct`) until `join`.
pub struct Thread<F: FnOnce() + Send + 'static> {
    task: *mut bindings::task_struct,
    payload: *mut Payload<F>,
}

// SAFETY: the task pointer is only used to stop and release the thread,
// which may happen from any thread; `F: Send`.
unsafe impl<F: FnOnce() + Send + 'static> Send for Thread<F> {}

impl<F: FnOnce() + Send + 'static> Thread<F> {
    /// # Safety
    ///
    /// `data` is the `Payload<F>` of a [`Thread`], live until `join`.
    unsafe extern "C" fn trampoline(data: *mut c_void) -> i32 {
        // SAFETY: until the thread exits, only this thread touches the
        // payload; `join` reads it only after `kthread_stop()` returned.
        let f = unsafe { (*data.cast::<Payload<F>>()).f.take() };
        if let Some(f) = f {
            f();
        }
        0
    }

    /// Starts `f` on a new kernel thread called `name`.
    pub fn spawn(name: &CStr, f: F) -> Result<Self> {
        let payload = KBox::into_raw(KBox::new(Payload { f: Some(f) }, GFP_KERNEL)?);
        // SAFETY: `trampoline` matches the threadfn type; `payload` stays
        // valid until `join`; "%s" with a NUL-terminated string is a valid
        // format for the variadic name.
        let task = unsafe {
            bindings::kthread_create_on_node(
                Some(Self::trampoline),
                payload.cast(),
                bindings::NUMA_NO_NODE,
                c"%s".as_ptr().cast(),
                name.as_char_ptr(),
            )
        };
        let task = match from_err_ptr(task) {
            Ok(t) if !t.is_null() => t,
            r => {
                // SAFETY: the thread does not exist; the payload is ours.
                drop(unsafe { KBox::from_raw(payload) });
                return Err(r.err().unwrap_or(ENOMEM));
            }
        };
        // SAFETY: `task` is a live kthread we just created; take a reference
        // so it stays valid until `join`, then let it run.
        unsafe {
            bindings::get_task_struct(task);
            bindings::wake_up_process(task);
        }
        Ok(Thread { task, payload })
    }

    /// Waits until the thread function has returned, then frees it.
    pub fn join(self) {
        drop(self);
    }
}

impl<F: FnOnce() + Send + 'static> Drop for Thread<F> {
    fn drop(&mut self) {
        // SAFETY: we hold a reference to the task (type invariant);
        // kthread_stop() returns after the thread function returned (or was
        // skipped) and the thread exited, so the payload is ours again.
        unsafe {
            bindings::kthread_stop(self.task);
            bindings::put_task_struct(self.task);
            drop(KBox::from_raw(self.payload));
        }
    }
}
