// SPDX-License-Identifier: GPL-2.0

//! The allocator's modules.
//!
//! - [`binpack`]: the pure binpacking core (type table, free-space
//!   engine), the same files the host crate tests.
//! - [`backend`]: every FFI call, and every `unsafe` block but those only
//!   a caller can vouch for (listed there).
//! - [`allocator`]: the allocator and its safe API (owning handles).
//! - [`packs`]: the kernel's pack source (2 MiB huge-page packs).
//! - [`debugfs`]: the debugfs files, the `ctl` command channel and its
//!   parser.
//! - [`provider`]: serves the kernel's BPF JIT and kprobes.
//! - `test`: the test harness (`selftest`, `stress`, `bench`), built only
//!   with `EXECMEM_RS_TEST=y`.

pub mod allocator;
pub mod backend;
pub mod binpack;
pub mod debugfs;
pub mod packs;
pub mod params;
pub mod provider;
#[cfg(execmem_rs_test)]
pub mod test;
