// SPDX-License-Identifier: GPL-2.0

//! The engine's metadata storage in the kernel: `KVVec`, grown with
//! `GFP_KERNEL | __GFP_NOWARN | __GFP_RETRY_MAYFAIL`, so every allocation failure reaches the
//! engine as an `Err` (never an abort) and, being handled, prints no
//! allocation-failure warning (as the kernel's own execmem does).

use crate::execmem::binpack::storage::{Error, Storage, Vector};
use kernel::prelude::*;

/// [`Storage`] whose vectors are `KVVec<T>` (kmalloc, vmalloc fallback).
pub struct KernelStorage;

impl Storage for KernelStorage {
    type Vec<T> = KVVec<T>;

    fn new_vec<T>() -> KVVec<T> {
        KVVec::new()
    }
}

impl<T> Vector<T> for KVVec<T> {
    fn len(&self) -> usize {
        KVVec::len(self)
    }

    fn get(&self, i: usize) -> Option<&T> {
        self.as_slice().get(i)
    }

    fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        self.as_mut_slice().get_mut(i)
    }

    fn try_push(&mut self, v: T) -> Result<(), Error> {
        self.push(v, GFP_KERNEL | __GFP_NOWARN | __GFP_RETRY_MAYFAIL)
            .map_err(|_| Error::NoMemory)
    }

    fn pop(&mut self) -> Option<T> {
        // 6.12's `KVec` has no `pop`.
        let last = self.len().checked_sub(1)?;
        // SAFETY: `last < len`, so the element is initialised; reading it
        // moves it out, and shrinking the length right after makes the vector
        // forget it, so it is neither dropped twice nor read again.
        unsafe {
            let v = core::ptr::read(self.as_ptr().add(last));
            self.set_len(last);
            Some(v)
        }
    }

    fn try_reserve(&mut self, additional: usize) -> Result<(), Error> {
        self.reserve(additional, GFP_KERNEL | __GFP_NOWARN | __GFP_RETRY_MAYFAIL)
            .map_err(|_| Error::NoMemory)
    }

    fn push_within_capacity(&mut self, v: T) -> Result<(), T> {
        // 6.12's `KVec` has no `push_within_capacity`.
        let len = self.len();
        let Some(slot) = self.spare_capacity_mut().first_mut() else {
            return Err(v);
        };
        slot.write(v);
        // SAFETY: the element at `len` (the first spare slot) was just
        // initialised, and `len + 1 <= capacity` because that slot exists.
        unsafe { self.set_len(len + 1) };
        Ok(())
    }
}
