// SPDX-License-Identifier: GPL-2.0

//! The clock and the scheduler: `ktime_get()` for the counters that time
//! refills and allocations, `cond_resched()` for long loops.

use kernel::bindings;

/// Nanoseconds of `ktime_get()` (CLOCK_MONOTONIC).
pub fn now_ns() -> u64 {
    // SAFETY: plain C call without arguments.
    let t = unsafe { bindings::ktime_get() };
    u64::try_from(t).unwrap_or(0)
}

/// Gives the CPU to another task if one should run (`cond_resched()`): for
/// long loops in kernel threads of a non-preemptible kernel.
pub fn cond_resched() {
    // SAFETY: plain C call in process context; may sleep.
    unsafe { bindings::__cond_resched() };
}
