// SPDX-License-Identifier: GPL-2.0

//! The C side of serving the kernel's executable-memory users: one
//! registered `struct execmem_provider` (test-kernel patch 0005) whose
//! callbacks forward to a [`Serve`] implementation.
//!
//! The kernel asks the provider from `bpf_prog_pack_alloc()`/`_free()` and
//! from x86 `alloc_insn_page()`/`free_insn_page()`. `execmem_provider_alloc()`
//! and `_free()` make each call inside an SRCU read section, which
//! `execmem_provider_unregister()` waits for; the allocation is asked only
//! while this module can be pinned (`try_module_get()`, which fails once
//! its exit has begun), and each allocation we return keeps that reference
//! until our free of it returns. [`Registration`] is made as the last step
//! of module init and dropped first in module exit, so no callback is in
//! flight once it has unregistered.

use core::{
    ffi::c_void,
    ptr,
    sync::atomic::{AtomicPtr, Ordering},
};
use kernel::{bindings, prelude::*, sync::Arc};

/// Which of the kernel's users asks.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Consumer {
    /// The BPF JIT: programs, trampolines, the dispatcher
    /// (`EXECMEM_BPF`).
    Bpf,
    /// kprobes instruction pages (`EXECMEM_KPROBES`).
    Kprobes,
}

impl Consumer {
    /// Every consumer.
    pub const ALL: [Consumer; 2] = [Consumer::Bpf, Consumer::Kprobes];
}

/// What serves the kernel's requests.
///
/// # Safety
///
/// The kernel trusts what an implementation returns, so each method must
/// keep these promises for every call, whatever the caller passes:
///
/// - [`Serve::alloc`] returns `None` or the address of `size` bytes that
///   nothing else uses until [`Serve::free`] of that address returned
///   true: mapped read-only and executable, filled with trapping
///   instructions, aligned to 64 bytes (`BPF_PROG_CHUNK_SIZE`:
///   `bpf_jit_free()` finds a program's header from its address) and to a
///   page for [`Consumer::Kprobes`]. The kernel writes it with
///   `text_poke*()` and runs it.
/// - [`Serve::free`] returns true exactly once per address `alloc`
///   returned, and false for anything else: the hook drops the module
///   reference an allocation holds when it returns true, and gives the
///   address to the stock free path when it returns false.
pub unsafe trait Serve: Send + Sync {
    /// `size` bytes for `who`, read-only + executable and trap-filled: the
    /// address, or `None` (the kernel then uses its own path).
    fn alloc(&self, who: Consumer, size: usize) -> Option<usize>;
    /// Frees `addr` if [`Serve::alloc`] returned it; whether it did.
    fn free(&self, addr: usize) -> bool;
}

/// The server the callbacks forward to: a `KBox<Arc<dyn Serve>>` turned into
/// a raw pointer by [`Registration::new`], null when nothing is registered.
static SERVER: AtomicPtr<Arc<dyn Serve>> = AtomicPtr::new(ptr::null_mut());

/// # Safety
///
/// Called by `execmem_provider_alloc()` with this module pinned, inside the
/// read section unregistering waits for.
unsafe extern "C" fn alloc(ty: bindings::execmem_type, size: usize) -> *mut c_void {
    let who = match ty {
        bindings::execmem_type_EXECMEM_BPF => Consumer::Bpf,
        bindings::execmem_type_EXECMEM_KPROBES => Consumer::Kprobes,
        _ => return ptr::null_mut(),
    };
    let s = SERVER.load(Ordering::Acquire);
    // SAFETY: non-null, `s` comes from `KBox::into_raw` in
    // `Registration::new` and is freed only in `Registration::drop`, after
    // unregistering, when no call is in flight (module doc).
    match unsafe { s.as_ref() } {
        Some(s) => s
            .alloc(who, size)
            .map_or(ptr::null_mut(), |a| a as *mut c_void),
        None => ptr::null_mut(),
    }
}

/// # Safety
///
/// Called by `execmem_provider_free()` inside the read section unregistering
/// waits for.
unsafe extern "C" fn free(p: *mut c_void) -> bool {
    let s = SERVER.load(Ordering::Acquire);
    // SAFETY: as in `alloc`.
    match unsafe { s.as_ref() } {
        Some(s) => s.free(p as usize),
        None => false,
    }
}

/// The `struct execmem_provider` the kernel calls.
struct Ops(bindings::execmem_provider);

// SAFETY: read-only after construction; the kernel only reads it.
unsafe impl Sync for Ops {}

static OPS: Ops = Ops(bindings::execmem_provider {
    alloc: Some(alloc),
    free: Some(free),
    owner: ptr::addr_of!(super::param::__this_module).cast_mut().cast(),
});

/// A provider without an owner, as built-in code would register: nothing
/// would pin it while the kernel holds its memory, so the kernel must
/// refuse it. Returns what registering it returned (unregistering it at
/// once had the kernel taken it; its callbacks serve nothing meanwhile).
#[cfg(execmem_rs_test)]
pub fn register_ownerless() -> Result {
    extern "C" fn alloc_none(_: bindings::execmem_type, _: usize) -> *mut c_void {
        ptr::null_mut()
    }
    extern "C" fn free_none(_: *mut c_void) -> bool {
        false
    }
    static ORPHAN: Ops = Ops(bindings::execmem_provider {
        alloc: Some(alloc_none),
        free: Some(free_none),
        owner: ptr::null_mut(),
    });
    // SAFETY: `ORPHAN` is a static that outlives any registration, and its
    // callbacks touch nothing: whatever the kernel does with it is sound.
    let ret = unsafe { bindings::execmem_provider_register(&ORPHAN.0) };
    if ret == 0 {
        // SAFETY: registered just above.
        unsafe { bindings::execmem_provider_unregister(&ORPHAN.0) };
    }
    kernel::error::to_result(ret)
}

/// The registered provider; unregistered on drop.
///
/// # Invariants
///
/// `SERVER` holds the server of this registration and `OPS` is registered.
pub struct Registration(());

impl Registration {
    /// Registers `server` as the kernel's execmem provider.
    ///
    /// # Safety
    ///
    /// The last fallible step of module init (nothing may fail after it,
    /// which would drop it while a callback could run), and dropped only by
    /// module exit.
    pub unsafe fn new(server: Arc<dyn Serve>) -> Result<Self> {
        let boxed = KBox::into_raw(KBox::new(server, GFP_KERNEL)?);
        if SERVER
            .compare_exchange(ptr::null_mut(), boxed, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            // SAFETY: ours, never published.
            drop(unsafe { KBox::from_raw(boxed) });
            return Err(EBUSY);
        }
        // SAFETY: `OPS` is a static that outlives the registration.
        let ret = unsafe { bindings::execmem_provider_register(&OPS.0) };
        if let Err(e) = kernel::error::to_result(ret) {
            let s = SERVER.swap(ptr::null_mut(), Ordering::AcqRel);
            // SAFETY: never registered, so no callback saw it.
            drop(unsafe { KBox::from_raw(s) });
            return Err(e);
        }
        // INVARIANT: both set above.
        Ok(Registration(()))
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        // SAFETY: registered (type invariant); returns once no call into
        // the provider is in flight (synchronize_srcu()), and none starts.
        unsafe { bindings::execmem_provider_unregister(&OPS.0) };
        let s = SERVER.swap(ptr::null_mut(), Ordering::AcqRel);
        if !s.is_null() {
            // SAFETY: from `KBox::into_raw` in `new`; no call is in flight
            // (module exit) and none can start (unregistered).
            drop(unsafe { KBox::from_raw(s) });
        }
    }
}
