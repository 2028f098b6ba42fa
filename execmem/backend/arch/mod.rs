// SPDX-License-Identifier: GPL-2.0

//! The architecture layer: what the module does differently per
//! architecture, and nothing else. Each architecture's file provides the
//! same items: the level of a PMD mapping in [`super::mem::PageInfo`]
//! (`LEVEL_2M`), the landing pad an indirect-call target must start with
//! (`LANDING_PAD`, `NO_LANDING_PAD`), the page-table probe (`probe`) and
//! the linear-map alias of a page (`alias_of`), the text-patching
//! primitives (`poke_copy`, `poke_set`) and where they may start
//! (`POKE_ALIGN`), how a pack gets its permissions
//! (`SEALED_AT_BIRTH`, `sealed_prot`, `seal_alias`) and, for the test
//! harness, a function that returns an immediate (`ret_imm32`,
//! `RET_IMM32_LEN`) and the direct-map split counters
//! (`direct_map_splits`). The pure core's constants (pack size, trap) are
//! in `execmem/binpack/types.rs` (`arch`), checked against the kernel's in
//! [`super::mem`].

#[cfg(target_arch = "x86_64")]
mod x86_64;
#[cfg(target_arch = "x86_64")]
pub use x86_64::*;

#[cfg(target_arch = "aarch64")]
mod arm64;
#[cfg(target_arch = "aarch64")]
pub use arm64::*;

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
compile_error!("execmem_rs: no architecture layer for this architecture (execmem/backend/arch/)");
