// SPDX-License-Identifier: GPL-2.0

//! Whether the calling task may run code it wrote: the checks the module
//! loader makes before it runs new code.
//!
//! Calling written code is loading code into ring 0 by another door, so it
//! must not open where the module loader is shut: the caller needs
//! `CAP_SYS_MODULE`, module loading must not be disabled
//! (`kernel.modules_disabled`), module signatures must not be enforced (what
//! was written is unsigned), and the kernel must not be locked down for
//! integrity (lockdown refuses unsigned modules there too).

use kernel::bindings;

/// `None` if the current task may run code it wrote; otherwise the reason
/// it may not, one line.
pub fn code_loading_refused() -> Option<&'static str> {
    // SAFETY: plain C call on the current task's credentials.
    if !unsafe { bindings::capable(bindings::CAP_SYS_MODULE as i32) } {
        return Some("needs CAP_SYS_MODULE, as loading a module does");
    }
    // SAFETY: plain C call reading an int.
    if unsafe { bindings::module_loading_disabled() } {
        return Some("module loading is disabled (kernel.modules_disabled=1)");
    }
    // SAFETY: plain C call.
    if unsafe { bindings::module_sig_enforced() } {
        return Some("module signatures are enforced and written code is unsigned");
    }
    // SAFETY: plain C call.
    if unsafe { bindings::code_loading_locked_down() } {
        return Some("the kernel is locked down for integrity");
    }
    None
}
