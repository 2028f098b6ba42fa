// SPDX-License-Identifier: GPL-2.0

//! The allocator's modules.
//!
//! - [`binpack`]: the pure binpacking core (type table, free-space
//!   engine), the same files the host crate tests.
//! - [`backend`]: every FFI call and `unsafe` block.
//! - [`allocator`]: the allocator and its safe API (owning handles).
//! - [`packs`]: the kernel's pack source (2 MiB huge-page packs).
//! - [`abi`], [`ctl`]: the debugfs files and the command channel.

pub mod abi;
pub mod allocator;
pub mod backend;
pub mod bench;
pub mod binpack;
pub mod ctl;
pub mod packs;
pub mod params;
pub mod provider;
pub mod selftest;
pub mod stress;
pub mod text;
