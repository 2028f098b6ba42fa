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

/// The value of a `charp` parameter: a pointer to a NUL-terminated string,
/// ours (the default) or one the kernel allocated when parsing `insmod`
/// arguments.
#[repr(transparent)]
pub struct CharP(core::sync::atomic::AtomicPtr<core::ffi::c_char>);

impl CharP {
    /// A parameter whose value is `v` until the kernel sets it.
    pub const fn new(v: &'static core::ffi::CStr) -> Self {
        CharP(core::sync::atomic::AtomicPtr::new(v.as_ptr().cast_mut()))
    }

    /// The current value. Only for parameters the kernel never rewrites
    /// after load (sysfs mode without write permission): the string then
    /// lives, unchanged, until the module is unloaded.
    pub fn get(&self) -> &kernel::str::CStr {
        let p = self.0.load(Ordering::Relaxed);
        if p.is_null() {
            return kernel::c_str!("");
        }
        // SAFETY: the kernel sets the pointer only while parsing our
        // arguments, before init, to a NUL-terminated string it frees only
        // after module exit (`param_free_charp()`); the default is a static
        // C string. The macro refuses write permission, so nothing replaces
        // it meanwhile.
        unsafe { kernel::str::CStr::from_char_ptr(p.cast()) }
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

/// The `struct kernel_param` in `__param` and the two `.modinfo` strings of
/// a parameter `$name` whose value is `$value` (a [`ULong`] or [`CharP`]),
/// parsed by `$ops`, typed `$ty` for modinfo. Used by the macros below.
#[doc(hidden)]
#[macro_export]
macro_rules! __module_param {
    ($value:ident, $name:literal, $ops:ident, $ty:literal, $perm:expr, $desc:literal) => {
        const _: () = {
            #[link_section = "__param"]
            #[used(compiler)]
            static PARAM: $crate::execmem::backend::param::KernelParam =
                $crate::execmem::backend::param::KernelParam(::kernel::bindings::kernel_param {
                    name: ::core::concat!($name, "\0").as_ptr().cast(),
                    mod_: ::core::ptr::addr_of!($crate::execmem::backend::param::__this_module)
                        .cast_mut()
                        .cast(),
                    ops: ::core::ptr::addr_of!(::kernel::bindings::$ops),
                    perm: $perm,
                    level: -1,
                    flags: 0,
                    __bindgen_anon_1: ::kernel::bindings::kernel_param__bindgen_ty_1 {
                        arg: $value.as_arg(),
                    },
                });

            const TYPE: &str = ::core::concat!("parmtype=", $name, ":", $ty, "\0");
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

/// Defines `$value: CharP`, a read-only string module parameter `$name`
/// (set with `insmod ... $name=...`, shown in sysfs with mode 0444),
/// default `$default` (a C string literal), description `$desc`.
#[macro_export]
macro_rules! module_param_charp {
    ($value:ident, $name:literal, $default:expr, $desc:literal) => {
        /// Module parameter (see its `.modinfo` description).
        pub static $value: $crate::execmem::backend::param::CharP =
            $crate::execmem::backend::param::CharP::new($default);
        // Read-only in sysfs: `CharP::get` relies on it.
        $crate::__module_param!($value, $name, param_ops_charp, "charp", 0o444, $desc);
    };
}

/// Defines `$value: ULong`, an `unsigned long` module parameter `$name`
/// with sysfs mode `$perm`, default `$default` and description `$desc`.
#[macro_export]
macro_rules! module_param_ulong {
    ($value:ident, $name:literal, $default:expr, $perm:expr, $desc:literal) => {
        /// Module parameter (see its `.modinfo` description).
        pub static $value: $crate::execmem::backend::param::ULong =
            $crate::execmem::backend::param::ULong::new($default);
        $crate::__module_param!($value, $name, param_ops_ulong, "ulong", $perm, $desc);
    };
}
