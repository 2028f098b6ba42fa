// SPDX-License-Identifier: GPL-2.0

//! Misuse that must not build: each case is code a safe caller could write
//! if the API let it, and the API's types are what refuse it.
//!
//! A case is compiled only with `--cfg execmem_rs_misuse_<case>` (Kbuild's
//! `EXECMEM_RS_MISUSE=<case>`); `scripts/misuse-check.sh` builds the module
//! once per case and passes only if rustc rejects it with the error the
//! case's `EXXXX "TEXT":` doc line names (that code alone, TEXT in its
//! message: refused for the reason the case is about, not another), and
//! builds it once with no case to show the harness itself compiles. The
//! cases are never run.

/// E0599 "no method named `queue`":
/// a [`Work`](crate::execmem::backend::work::Work) is queued through its
/// owner, so a stray one, not embedded in that owner, cannot be queued (its
/// run would compute the owner from a wrong address).
#[cfg(execmem_rs_misuse_work_stray)]
pub fn work_stray(q: &crate::execmem::backend::work::Queue) {
    use crate::execmem::allocator::Allocator;
    use crate::execmem::backend::work::Work;
    use kernel::prelude::*;
    if let Ok(w) = KBox::pin_init(Work::<Allocator>::new(), GFP_KERNEL) {
        w.queue(q);
    }
}

/// E0200 "requires an `unsafe impl`":
/// the kernel trusts a provider's addresses and its answer to a free (it
/// drops a module reference on `true`): only an `unsafe impl` can promise
/// that.
#[cfg(execmem_rs_misuse_serve_safe_impl)]
pub struct Liar;

#[cfg(execmem_rs_misuse_serve_safe_impl)]
impl crate::execmem::backend::provider::Serve for Liar {
    fn alloc(&self, _: crate::execmem::backend::provider::Consumer, _: usize) -> Option<usize> {
        Some(0x1000)
    }
    fn free(&self, _: usize) -> bool {
        true
    }
}

/// E0133 "probe` is unsafe":
/// the page-table walk reads tables that are freed with their area: the
/// caller must promise the address stays mapped.
#[cfg(execmem_rs_misuse_probe_any_address)]
pub fn probe_any_address() {
    let p = core::ptr::NonNull::<u8>::dangling();
    let _ = crate::execmem::backend::arch::probe(p);
}

/// E0133 "alias_of` is unsafe":
/// the same for the walk that finds a page's direct-map alias.
#[cfg(execmem_rs_misuse_alias_of_any_address)]
pub fn alias_of_any_address() {
    let p = core::ptr::NonNull::<u8>::dangling();
    let _ = crate::execmem::backend::arch::alias_of(p);
}

/// A parameter's value, for the cases below.
#[cfg(any(
    execmem_rs_misuse_param_name_not_cstr,
    execmem_rs_misuse_param_world_writable
))]
static VALUE: crate::execmem::backend::param::ULong = crate::execmem::backend::param::ULong::new(0);

/// E0308 "found `&str`":
/// the kernel reads a parameter's name as a C string, so the name must be a
/// `CStr`, not a `&str` with no NUL.
#[cfg(execmem_rs_misuse_param_name_not_cstr)]
static NOT_CSTR: crate::execmem::backend::param::KernelParam =
    crate::execmem::backend::param::KernelParam::new::<_, 0o644>("unterminated", &VALUE);

/// E0080 "module parameter mode":
/// a world-writable parameter, which C's `module_param()` refuses to build
/// (`VERIFY_OCTAL_PERMISSIONS`).
#[cfg(execmem_rs_misuse_param_world_writable)]
static WORLD_WRITABLE: crate::execmem::backend::param::KernelParam =
    crate::execmem::backend::param::KernelParam::new::<_, 0o666>(kernel::c_str!("open"), &VALUE);

/// E0599 "no method named `write` found for struct `KernelCode`":
/// code handed to the kernel is the kernel's to write; the handle we keep
/// can only free it.
#[cfg(execmem_rs_misuse_kernel_code_write)]
pub fn kernel_code_write(code: crate::execmem::allocator::Code) {
    let mut k = code.into_kernel();
    let _ = k.write(0, &[0xcc]);
}
