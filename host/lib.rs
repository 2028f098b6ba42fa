// SPDX-License-Identifier: GPL-2.0

//! Host build of the execmem_rs core.
//!
//! The shared files are included by path, so the host tests exercise exactly
//! the code the kernel module compiles. This crate adds only what the kernel
//! provides differently: a [`Storage`] backed by `std::vec::Vec`.

#![no_std]

extern crate std;

#[path = "../execmem/binpack/mod.rs"]
pub mod binpack;

pub use binpack::engine::{
    ClassStats, Engine, Freed, Handle, PackId, PackInfo, Placement, HYST_OPS, OVERFLOW_PAGES,
};
pub use binpack::refill::{on_free, Dirty, FreeAction, Ring};
pub use binpack::storage::{Error, PackSource, Storage, Vector};
pub use binpack::types::{arch, Class, ExecmemType, TypeInfo, MAX_ALLOC};
pub use binpack::workload::{bpf_size, Rng, BPF_SEED};

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
}

/// Metadata storage on the host: plain `Vec`s.
pub struct StdStorage;

impl Storage for StdStorage {
    type Vec<T> = Vec<T>;
    fn new_vec<T>() -> Vec<T> {
        Vec::new()
    }
}

/// A pack source for tests and the benchmark: hands out fake, 2 MiB
/// aligned addresses (never dereferenced) and counts calls.
#[derive(Debug, Default)]
pub struct FakeSource {
    next: usize,
    /// Calls to `map`.
    pub maps: u64,
    /// Calls to `unmap`.
    pub unmaps: u64,
    /// 2 MiB units currently mapped.
    pub mapped: usize,
    /// Peak of `mapped`.
    pub peak: usize,
    /// Base pages currently mapped for overflow extents.
    pub pages: usize,
}

impl FakeSource {
    /// A source whose first pack is at a fixed fake base.
    pub fn new() -> Self {
        FakeSource {
            next: 0xffff_a000_0000_0000,
            ..Default::default()
        }
    }
}

impl PackSource for FakeSource {
    fn map(&mut self, _class: Class, _slot: usize, npacks: usize) -> Result<usize, Error> {
        let base = self.next;
        let len = npacks.checked_mul(arch::PACK_SIZE).ok_or(Error::NoMemory)?;
        // Leave a one-pack hole so neighbouring packs never touch.
        self.next = base
            .checked_add(len)
            .and_then(|x| x.checked_add(arch::PACK_SIZE))
            .ok_or(Error::NoMemory)?;
        self.maps += 1;
        self.mapped += npacks;
        self.peak = self.peak.max(self.mapped);
        Ok(base)
    }
    fn unmap(&mut self, _class: Class, _slot: usize, _base: usize, npacks: usize) {
        self.unmaps += 1;
        self.mapped -= npacks;
    }
    fn map_pages(
        &mut self,
        _class: Class,
        _slot: usize,
        pages: usize,
        align: usize,
    ) -> Result<usize, Error> {
        // Every base is pack-aligned, so any alignment up to a pack holds.
        let base = self.next;
        debug_assert_eq!(base % align, 0);
        self.next = base
            .checked_add(2 * arch::PACK_SIZE)
            .ok_or(Error::NoMemory)?;
        self.maps += 1;
        self.pages += pages;
        Ok(base)
    }
    fn unmap_pages(&mut self, _class: Class, _slot: usize, _base: usize, pages: usize) {
        self.unmaps += 1;
        self.pages -= pages;
    }
}
