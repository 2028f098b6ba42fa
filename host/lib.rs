// SPDX-License-Identifier: GPL-2.0

//! Host build of the execmem_rs core.
//!
//! The shared files are included by path, so the host tests exercise exactly
//! the code the kernel module compiles. This crate adds only what the kernel
//! provides differently: a [`Storage`] backed by `std::vec::Vec`, and the
//! one fake pack source of the tests and the benchmark ([`fake`]).

#![no_std]

extern crate std;

#[path = "../execmem/binpack/mod.rs"]
pub mod binpack;
pub mod fake;

pub use fake::{FakeSource, Footprint};

pub use binpack::addrmap::AddrMap;
pub use binpack::engine::{
    ClassStats, Engine, Freed, Handle, PackId, PackInfo, Placement, HYST_OPS, OVERFLOW_PAGES,
};
pub use binpack::refill::{chain, on_free, Dirty, FreeAction, Parked, Ring, Span, CHAIN, GAP};
pub use binpack::storage::{Error, PackSource, Storage, Vector};
pub use binpack::types::{arch, Class, ExecmemType, Fill, TypeInfo, MAX_ALLOC};
pub use binpack::workload::{bpf_size, expand, Event, Module, ModuleChurn, Rng, Step, BPF_SEED};

use std::vec::Vec;

impl<T> Vector<T> for Vec<T> {
    fn len(&self) -> usize {
        Vec::len(self)
    }
    fn get(&self, i: usize) -> Option<&T> {
        self.as_slice().get(i)
    }
    fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        self.as_mut_slice().get_mut(i)
    }
    fn try_push(&mut self, v: T) -> Result<(), Error> {
        self.try_reserve(1).map_err(|_| Error::NoMemory)?;
        self.push(v);
        Ok(())
    }
    fn pop(&mut self) -> Option<T> {
        Vec::pop(self)
    }
    fn try_reserve(&mut self, additional: usize) -> Result<(), Error> {
        Vec::try_reserve(self, additional).map_err(|_| Error::NoMemory)
    }
    fn push_within_capacity(&mut self, v: T) -> Result<(), T> {
        if self.len() < self.capacity() {
            self.push(v);
            Ok(())
        } else {
            Err(v)
        }
    }
}

/// Metadata storage on the host: plain `Vec`s.
pub struct StdStorage;

impl Storage for StdStorage {
    type Vec<T> = Vec<T>;
    fn new_vec<T>() -> Vec<T> {
        Vec::new()
    }
}
