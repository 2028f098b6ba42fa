// SPDX-License-Identifier: GPL-2.0

//! The backend: every call into C of execmem_rs, and every `unsafe` block
//! but those whose contract only the caller can vouch for (calls of written
//! code, the allocator's `Window::new`, the owners' `HasWork` impls, the
//! provider registration in module init; Documentation/execmem_rs.rst lists
//! them).
//!
//! The rest of the module is safe Rust on top of small wrappers:
//! [`mem`] (vmalloc/execmem areas and their permissions), [`window`]
//! (writes, reads and calls inside an area), [`arch`] (the architecture's
//! landing pad, page-table probe and text-patching primitives), [`debugfs`] (a directory and files backed by Rust types),
//! [`storage`] (the engine's metadata vectors), [`sched`] (the clock and
//! `cond_resched()`), and, with the test harness only, `kthread` (kernel
//! threads for the stress runner and the selftest).

pub mod arch;
pub mod cfi;
pub mod debugfs;
#[cfg(execmem_rs_test)]
pub mod kthread;
pub mod mem;
pub mod param;
pub mod provider;
pub mod sched;
pub mod security;
pub mod storage;
pub mod window;
pub mod work;
