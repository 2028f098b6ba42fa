// SPDX-License-Identifier: GPL-2.0

//! Module parameters, as C's `module_param()` makes them.
//!
//! 6.12's `module!` macro has no parameters. A parameter is a
//! `struct kernel_param` in the module's `__param` section, pointing to the
//! value and to the kernel's `param_ops_*` for its type; the module loader
//! parses `insmod` arguments into it before `init`, and sysfs shows it as
//! `/sys/module/execmem_rs/parameters/NAME` with its permissions.
//! `.modinfo` strings make `modinfo` list it.
//!
//! [`module_param_ulong!`] defines one `unsigned long` parameter; the
//! value is read with [`ULong::get`].

use core::sync::atomic::{AtomicUsize, Ordering};
use kernel::bindings;

/// The value of an `unsigned long` parameter.
///
/// The kernel writes it (while parsing `insmod` arguments, or on a write to
/// its sysfs file) under the parameter lock, with a plain store of an
/// aligned word; readers here load it once per use.
#[repr(transparent)]
pub struct ULong(AtomicUsize);

impl ULong {
    /// A parameter whose value is `v` until the kernel sets it.
    pub const fn new(v: usize) -> Self {
        ULong(AtomicUsize::new(v))
    }

    /// The current value.
    pub fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }

    /// For the `kernel_param` that the kernel writes through.
    pub const fn as_arg(&self) -> *mut core::ffi::c_void {
        self.0.as_ptr().cast()
    }
}

/// A `struct kernel_param` the module loader finds in `__param`.
///
/// # Invariants
///
/// `name` points to a static NUL-terminated string, `ops` to the kernel's
/// `param_ops_*` for the type `arg` points to, and `arg` to a static value
/// of that type.
#[repr(transparent)]
pub struct KernelParam(pub bindings::kernel_param);

// SAFETY: only the kernel touches the parameter, under its parameter lock;
// Rust code never reads it (it reads the value through `ULong`).
unsafe impl Sync for KernelParam {}

/// `s` as a byte array of its length, for `.modinfo` strings.
pub const fn bytes<const N: usize>(s: &str) -> [u8; N] {
    let b = s.as_bytes();
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N && i < b.len() {
        out[i] = b[i];
        i += 1;
    }
    out
}

// `Opaque` is what the `module!` macro declares it as too; it is never read.
#[allow(improper_ctypes)]
extern "C" {
    /// This module's `struct module`, defined in the generated `.mod.c`.
    pub static __this_module: kernel::types::Opaque<bindings::module>;
}

/// Defines `$value: ULong`, an `unsigned long` module parameter `$name`
/// with sysfs mode `$perm`, default `$default` and description `$desc`.
#[macro_export]
macro_rules! module_param_ulong {
    ($value:ident, $name:literal, $default:expr, $perm:expr, $desc:literal) => {
        /// Module parameter (see its `.modinfo` description).
        pub static $value: $crate::execmem::backend::param::ULong =
            $crate::execmem::backend::param::ULong::new($default);

        const _: () = {
            #[link_section = "__param"]
            #[used(compiler)]
            static PARAM: $crate::execmem::backend::param::KernelParam =
                $crate::execmem::backend::param::KernelParam(::kernel::bindings::kernel_param {
                    name: ::core::concat!($name, "\0").as_ptr().cast(),
                    mod_: ::core::ptr::addr_of!($crate::execmem::backend::param::__this_module)
                        .cast_mut()
                        .cast(),
                    ops: ::core::ptr::addr_of!(::kernel::bindings::param_ops_ulong),
                    perm: $perm,
                    level: -1,
                    flags: 0,
                    __bindgen_anon_1: ::kernel::bindings::kernel_param__bindgen_ty_1 {
                        arg: $value.as_arg(),
                    },
                });

            const TYPE: &str = ::core::concat!("parmtype=", $name, ":ulong\0");
            const DESC: &str = ::core::concat!("parm=", $name, ":", $desc, "\0");
            #[link_section = ".modinfo"]
            #[used(compiler)]
            static PARMTYPE: [u8; TYPE.len()] = $crate::execmem::backend::param::bytes(TYPE);
            #[link_section = ".modinfo"]
            #[used(compiler)]
            static PARM: [u8; DESC.len()] = $crate::execmem::backend::param::bytes(DESC);
        };
    };
}
