// SPDX-License-Identifier: GPL-2.0

//! The backend: every call into C and every `unsafe` block of execmem_rs.
//!
//! The rest of the module is safe Rust on top of small wrappers:
//! [`mem`] (vmalloc/execmem areas, permissions, `text_poke`, page-table
//! checks), [`debugfs`] (a directory and files backed by Rust types),
//! [`storage`] (the engine's metadata vectors) and [`kthread`] (kernel
//! threads and a clock, for the stress runner).

pub mod cfi;
pub mod debugfs;
pub mod kthread;
pub mod mem;
pub mod param;
pub mod provider;
pub mod security;
pub mod storage;
pub mod work;
