// SPDX-License-Identifier: GPL-2.0

//! The allocator's modules.

pub mod abi;
pub mod backend;
pub mod selftest;
pub mod text;
