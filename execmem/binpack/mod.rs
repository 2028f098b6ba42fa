// SPDX-License-Identifier: GPL-2.0

//! The binpacking core of execmem_rs.
//!
//! Pure Rust, `core` only: the same files are compiled into the kernel
//! module and into the host crate (`host/lib.rs`), where unit tests,
//! property tests and the benchmark run. Nothing here maps memory or
//! allocates except through the traits in [`storage`], which the kernel
//! backs with fallible `GFP_KERNEL` allocations and the host with `std`.
//!
//! - [`addrmap`]: a map from addresses to values that allocates only to
//!   grow or shrink (the provider's book of the JIT's allocations).
//! - [`types`]: the type table and the architecture constants.
//! - [`storage`]: the traits the embedder implements and the error type.
//! - [`tlsf`]: size-class arithmetic of the segregated free lists.
//! - [`engine`]: the per-class free-space engine, one concept per file
//!   under `engine/`.
//! - [`refill`]: what a free does with its range (refill, park, release),
//!   and which parked ranges one poke refills together.
//! - [`workload`]: the PRNG and size distributions the benchmarks and
//!   stress runs replay, on the host and in the kernel alike.

#![deny(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

pub mod addrmap;
pub mod engine;
pub mod refill;
pub mod storage;
pub mod tlsf;
pub mod types;
pub mod workload;
