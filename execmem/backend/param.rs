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
//! value is read with [`ULong::get`]. [`module_param_flags!`] defines a set
//! of named flags (`bpf,kprobes`, `none`), parsed and shown by callbacks of
//! ours ([`Flags`]), as zswap's `enabled` is a switch in sysfs.

use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use kernel::ffi::{c_char, c_int};
use kernel::{bindings, error::code::EINVAL, str::CStr};

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
}

/// A value the kernel sets through a `struct kernel_param`: the
/// `kernel_param_ops` that parse and show it. [`KernelParam::new`] takes
/// the ops from the value's type, so a parameter cannot pair a value with
/// ops for another type.
///
/// # Safety
///
/// `OPS` must read and write the parameter's `arg`, a pointer to a
/// `Self`, as a `Self`: the kernel's `param_ops_ulong` for an `unsigned
/// long`, [`FLAGS_OPS`] for a [`Flags`].
pub unsafe trait ParamValue: Sync {
    /// The operations for this type.
    const OPS: *const bindings::kernel_param_ops;
}

// SAFETY: `ULong` is a transparent `AtomicUsize`, laid out as a `usize`,
// which is `unsigned long` on every Linux target.
unsafe impl ParamValue for ULong {
    const OPS: *const bindings::kernel_param_ops = core::ptr::addr_of!(bindings::param_ops_ulong);
}

// SAFETY: `FLAGS_OPS` reads `arg` as a `Flags`.
unsafe impl ParamValue for Flags {
    const OPS: *const bindings::kernel_param_ops = &FLAGS_OPS;
}

/// The value of a flags parameter: a mask of the bits `names` gives,
/// written as names separated by commas, or `none` for no bit.
///
/// The kernel sets it (while parsing `insmod` arguments, or on a write to
/// its sysfs file) through [`FLAGS_OPS`] under the parameter lock; a bad
/// value is `EINVAL` and changes nothing. Readers load it once per use.
pub struct Flags {
    mask: AtomicU32,
    names: &'static [(&'static str, u32)],
}

impl Flags {
    /// A parameter whose value is `mask` until set, with these names.
    pub const fn new(mask: u32, names: &'static [(&'static str, u32)]) -> Self {
        Flags {
            mask: AtomicU32::new(mask),
            names,
        }
    }

    /// The current mask.
    pub fn get(&self) -> u32 {
        self.mask.load(Ordering::Relaxed)
    }

    /// Sets the mask (the debugfs file that switches it too).
    pub fn set(&self, mask: u32) {
        self.mask.store(mask, Ordering::Relaxed);
    }

    /// The mask `s` names: names separated by commas, or `none` for no
    /// bit; a trailing newline is ignored. `None` for a name that is not
    /// one, an empty value included (`none` is said, not implied).
    pub fn parse(&self, s: &[u8]) -> Option<u32> {
        let s = s.strip_suffix(b"\n").unwrap_or(s);
        if s == b"none" {
            return Some(0);
        }
        let mut mask = 0;
        for word in s.split(|&c| c == b',') {
            let (_, bit) = self.names.iter().find(|(n, _)| n.as_bytes() == word)?;
            mask |= bit;
        }
        Some(mask)
    }

    /// The name of `bit`, if it has one.
    pub fn name(&self, bit: u32) -> Option<&'static str> {
        self.names.iter().find(|(_, b)| *b == bit).map(|(n, _)| *n)
    }

    /// Writes `mask` as [`Flags::parse`] reads it.
    pub fn show(&self, mask: u32, out: &mut impl core::fmt::Write) -> core::fmt::Result {
        let mut sep = "";
        for (name, bit) in self.names {
            if mask & bit != 0 {
                write!(out, "{sep}{name}")?;
                sep = ",";
            }
        }
        if sep.is_empty() {
            out.write_str("none")?;
        }
        Ok(())
    }
}

/// The `Flags` a parameter of [`module_param_flags!`] holds.
///
/// # Safety
///
/// `kp` is a parameter whose ops are [`FLAGS_OPS`]: its `arg` then points
/// to a static [`Flags`] ([`KernelParam`]'s invariant).
unsafe fn flags_of(kp: *const bindings::kernel_param) -> &'static Flags {
    // SAFETY: the caller's contract: `arg` points to a `Flags` that lives
    // for ever (a static), which is only ever shared.
    unsafe { &*(*kp).__bindgen_anon_1.arg.cast::<Flags>() }
}

/// `kernel_param_ops::set` of a flags parameter.
///
/// # Safety
///
/// Called by the kernel for a parameter of [`module_param_flags!`] (whose
/// `ops` is [`FLAGS_OPS`]), with `val` null or a NUL-terminated string.
unsafe extern "C" fn flags_set(val: *const c_char, kp: *const bindings::kernel_param) -> c_int {
    if val.is_null() {
        // Defensive: parse_one() refuses a parameter given without a
        // value unless its ops have KERNEL_PARAM_OPS_FL_NOARG.
        return EINVAL.to_errno();
    }
    // SAFETY: non-null, NUL-terminated (the caller's contract), and read
    // only during this call.
    let s = unsafe { CStr::from_char_ptr(val) };
    // SAFETY: the caller's contract.
    let flags = unsafe { flags_of(kp) };
    match flags.parse(s.as_bytes()) {
        Some(mask) => {
            flags.set(mask);
            0
        }
        None => EINVAL.to_errno(),
    }
}

/// The longest line a flags parameter shows: every name of `serve`, the
/// commas and the newline fit.
const LINE: usize = 64;

/// A line of at most `N` bytes, cut short if longer.
struct Line<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> core::fmt::Write for Line<N> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for &b in s.as_bytes() {
            let slot = self.buf.get_mut(self.len).ok_or(core::fmt::Error)?;
            *slot = b;
            self.len += 1;
        }
        Ok(())
    }
}

/// `kernel_param_ops::get` of a flags parameter: the names and a newline.
///
/// # Safety
///
/// Called by the kernel for a parameter of [`module_param_flags!`], with
/// `buf` a buffer of `PAGE_SIZE` bytes (`param_attr_show()`).
unsafe extern "C" fn flags_get(buf: *mut c_char, kp: *const bindings::kernel_param) -> c_int {
    // SAFETY: the caller's contract.
    let flags = unsafe { flags_of(kp) };
    // A longer line (which `serve`'s names cannot make) is refused.
    let mut line = Line::<LINE> {
        buf: [0; LINE],
        len: 0,
    };
    if flags.show(flags.get(), &mut line).is_err()
        || core::fmt::Write::write_str(&mut line, "\n").is_err()
    {
        return EINVAL.to_errno();
    }
    // SAFETY: `buf` has PAGE_SIZE bytes (the caller's contract), more than
    // `line.len <= LINE`; `line` is a local, so the two do not overlap.
    unsafe { core::ptr::copy_nonoverlapping(line.buf.as_ptr(), buf.cast::<u8>(), line.len) };
    // At most LINE.
    line.len as c_int
}

/// The operations of a flags parameter (one that [`module_param_flags!`]
/// defines).
pub static FLAGS_OPS: bindings::kernel_param_ops = bindings::kernel_param_ops {
    flags: 0,
    set: Some(flags_set),
    get: Some(flags_get),
    free: None,
};

/// A `struct kernel_param` the module loader finds in `__param`.
///
/// # Invariants
///
/// `name` points to a static NUL-terminated string, `arg` to a static
/// [`ParamValue`] and `ops` to that type's [`ParamValue::OPS`]
/// ([`KernelParam::new`], the only constructor).
#[repr(transparent)]
pub struct KernelParam(bindings::kernel_param);

impl KernelParam {
    /// Parameter `name` of this module, holding `value`, parsed and shown
    /// by its type's ops, with sysfs mode `PERM`.
    ///
    /// `PERM` is checked as C's `module_param()` checks it
    /// (`VERIFY_OCTAL_PERMISSIONS`): at most `0o777`, never writable by
    /// others, and no class given more than the one before it (owner,
    /// group, others). A bad mode does not build.
    pub const fn new<T: ParamValue, const PERM: u16>(
        name: &'static CStr,
        value: &'static T,
    ) -> Self {
        const {
            assert!(
                perm_ok(PERM),
                "module parameter mode: see VERIFY_OCTAL_PERMISSIONS"
            )
        };
        // INVARIANT: `name` is NUL-terminated and static, `ops` from
        // `value`'s own type, `arg` pointing to it.
        KernelParam(bindings::kernel_param {
            name: name.as_char_ptr(),
            mod_: core::ptr::addr_of!(__this_module).cast_mut().cast(),
            ops: T::OPS,
            perm: PERM,
            level: -1,
            flags: 0,
            __bindgen_anon_1: bindings::kernel_param__bindgen_ty_1 {
                arg: core::ptr::from_ref(value).cast_mut().cast(),
            },
        })
    }
}

/// Whether `perm` is a mode C's `VERIFY_OCTAL_PERMISSIONS()` accepts for a
/// sysfs file: within `0o777`, the owner reads if the group does, the group
/// if others do, the owner writes if the group does, and others never
/// write.
const fn perm_ok(perm: u16) -> bool {
    perm <= 0o777
        && (perm >> 6) & 4 >= (perm >> 3) & 4
        && (perm >> 3) & 4 >= perm & 4
        && (perm >> 6) & 2 >= (perm >> 3) & 2
        && perm & 2 == 0
}

// SAFETY: only the kernel touches the parameter, under its parameter lock;
// Rust code never reads it (it reads the value through `ULong` or `Flags`).
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
/// a parameter `$name` whose value is the static `$value` (a
/// [`ParamValue`]: [`ULong`] or [`Flags`], whose ops parse it), typed `$ty`
/// for modinfo. Used by the macros below.
#[doc(hidden)]
#[macro_export]
macro_rules! __module_param {
    ($value:ident, $name:literal, $ty:literal, $perm:expr, $desc:literal) => {
        const _: () = {
            #[link_section = "__param"]
            #[used(compiler)]
            static PARAM: $crate::execmem::backend::param::KernelParam =
                $crate::execmem::backend::param::KernelParam::new::<_, { $perm }>(
                    ::kernel::c_str!($name),
                    &$value,
                );

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

/// Defines `$value: ULong`, an `unsigned long` module parameter `$name`
/// with sysfs mode `$perm`, default `$default` and description `$desc`.
#[macro_export]
macro_rules! module_param_ulong {
    ($value:ident, $name:literal, $default:expr, $perm:expr, $desc:literal) => {
        /// Module parameter (see its `.modinfo` description).
        pub static $value: $crate::execmem::backend::param::ULong =
            $crate::execmem::backend::param::ULong::new($default);
        $crate::__module_param!($value, $name, "ulong", $perm, $desc);
    };
}

/// Defines `$value: Flags`, a flags module parameter `$name` over the bits
/// `$names` names (`&[(name, bit)]`, a static), with sysfs mode `$perm`,
/// default mask `$default` and description `$desc`.
#[macro_export]
macro_rules! module_param_flags {
    ($value:ident, $name:literal, $default:expr, $names:expr, $perm:expr, $desc:literal) => {
        /// Module parameter (see its `.modinfo` description).
        pub static $value: $crate::execmem::backend::param::Flags =
            $crate::execmem::backend::param::Flags::new($default, $names);
        $crate::__module_param!($value, $name, "flags", $perm, $desc);
    };
}
