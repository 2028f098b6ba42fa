// SPDX-License-Identifier: GPL-2.0

//! The architecture layer: what the module does differently per
//! architecture, and nothing else. Each architecture's file provides the
//! same items: the level of a PMD mapping in [`super::mem::PageInfo`]
//! (`LEVEL_2M`), the landing pad an indirect-call target must start with
//! (`LANDING_PAD`, `NO_LANDING_PAD`), the page-table probe (`probe`), the
//! text-patching primitives (`poke_copy`, `poke_set`) and, for the test
//! harness, a function that returns an immediate (`ret_imm32`). The pure
//! core's constants (pack size, trap byte) are in
//! `execmem/binpack/types.rs` (`arch`), checked against the kernel's in
//! [`super::mem`].

#[cfg(target_arch = "x86_64")]
mod x86_64;
#[cfg(target_arch = "x86_64")]
pub use x86_64::*;

#[cfg(not(target_arch = "x86_64"))]
compile_error!("execmem_rs: no architecture layer for this architecture (execmem/backend/arch/)");
