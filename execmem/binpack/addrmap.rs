// SPDX-License-Identifier: GPL-2.0

//! A map from addresses to values that allocates only when it grows or
//! shrinks: the values in one dense vector, and an index over it, open
//! addressing with linear probing, deletion by backward shift (no
//! tombstones).
//!
//! It is the provider's book of the BPF JIT's live allocations, looked up
//! by the address the kernel frees: one per live program, inserted on the
//! program load's path, where a tree would cost a node allocation and a
//! rebalancing walk per call. An insert appends the value and probes a few
//! index slots (the index is kept at most half full); a removal moves the
//! last value into the hole. The index (4 bytes a slot) doubles when it
//! would pass half full, rebuilt from the values' keys; when the map falls
//! below an eighth of its index, both are rebuilt at half the size, so a
//! map that once held many values does not keep their memory. Either is
//! O(len), amortised O(1) per call, as with the engine's node pool.

use super::storage::{Error, Storage, Vector};

/// The smallest index, in slots.
const MIN_SLOTS: usize = 16;

/// Fibonacci hashing: the golden ratio's 64-bit fraction.
const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

/// Where `key` starts probing in an index of `mask + 1` (a power of two)
/// slots. The low bits of an allocation's address are mostly zero (64-byte
/// alignment), so the product's high bits choose.
fn home(key: usize, mask: usize) -> usize {
    let h = (key as u64).wrapping_mul(GOLDEN);
    (h.rotate_left(32) as usize) & mask
}

/// A map from `usize` keys (addresses) to `V`.
///
/// # Invariants
///
/// `slots.len()` is 0 (then `values` is empty) or a power of two of at
/// least [`MIN_SLOTS`], at most half of it in use. A slot holds 0 (empty)
/// or `i + 1` for value `i`; every value's slot is reached from its key's
/// `home` with no empty slot between (wrapping), exactly one slot names
/// each value, and no key occurs twice.
pub struct AddrMap<V, S: Storage> {
    values: S::Vec<(usize, V)>,
    slots: S::Vec<u32>,
}

impl<V, S: Storage> Default for AddrMap<V, S> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V, S: Storage> AddrMap<V, S> {
    /// An empty map. Does not allocate.
    pub fn new() -> Self {
        AddrMap {
            values: S::new_vec(),
            slots: S::new_vec(),
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Slots of the index (for tests of the growth policy).
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    fn mask(&self) -> usize {
        self.slots.len().wrapping_sub(1)
    }

    /// The key of the value a slot names; `None` for an empty slot.
    fn key_at(&self, slot: usize) -> Option<usize> {
        let v = *self.slots.get(slot)?;
        let i = usize::try_from(v).ok()?.checked_sub(1)?;
        self.values.get(i).map(|(k, _)| *k)
    }

    /// The slot naming `key`'s value, and the value's index.
    fn find(&self, key: usize) -> Option<(usize, usize)> {
        let mask = self.mask();
        let mut s = home(key, mask);
        // The probe ends at an empty slot (at most half are used); the
        // bound keeps it finite even if that did not hold.
        for _ in 0..self.slots.len() {
            let v = *self.slots.get(s)?;
            let i = usize::try_from(v).ok()?.checked_sub(1)?;
            if self.values.get(i).is_some_and(|(k, _)| *k == key) {
                return Some((s, i));
            }
            s = s.wrapping_add(1) & mask;
        }
        None
    }

    /// The value of `key`.
    pub fn get_mut(&mut self, key: usize) -> Option<&mut V> {
        let (_, i) = self.find(key)?;
        self.values.get_mut(i).map(|(_, v)| v)
    }

    /// Names value `i` (of key `key`) in the first empty slot from the
    /// key's home; returns that slot.
    fn link(&mut self, key: usize, i: usize) -> Result<usize, Error> {
        let tag = i
            .checked_add(1)
            .and_then(|t| u32::try_from(t).ok())
            .ok_or(Error::NoMemory)?;
        let mask = self.mask();
        let mut s = home(key, mask);
        for _ in 0..self.slots.len() {
            let slot = self.slots.get_mut(s).ok_or(Error::Corrupted)?;
            if *slot == 0 {
                *slot = tag;
                return Ok(s);
            }
            s = s.wrapping_add(1) & mask;
        }
        Err(Error::Corrupted)
    }

    /// An index of `slots` empty slots.
    fn empty_index(slots: usize) -> Result<S::Vec<u32>, Error> {
        let mut index = S::new_vec();
        index.try_reserve(slots)?;
        for _ in 0..slots {
            index
                .push_within_capacity(0)
                .map_err(|_| Error::Corrupted)?;
        }
        Ok(index)
    }

    /// Names every value in the index (empty, with room for them all).
    fn link_all(&mut self) -> Result<(), Error> {
        for i in 0..self.values.len() {
            let key = self
                .values
                .get(i)
                .map(|(k, _)| *k)
                .ok_or(Error::Corrupted)?;
            self.link(key, i)?;
        }
        Ok(())
    }

    /// A new index of `slots` slots over the values. On failure (no memory
    /// for it) the map is unchanged.
    fn reindex(&mut self, slots: usize) -> Result<(), Error> {
        let old = core::mem::replace(&mut self.slots, Self::empty_index(slots)?);
        if let Err(e) = self.link_all() {
            self.slots = old;
            return Err(e);
        }
        Ok(())
    }

    /// Inserts `v` under `key`. On failure (no memory to grow, or `key`
    /// is present: [`Error::Invalid`]) the map is unchanged and `v` comes
    /// back, for the caller to drop where that is safe.
    pub fn insert(&mut self, key: usize, v: V) -> Result<(), (Error, V)> {
        if self.find(key).is_some() {
            return Err((Error::Invalid, v));
        }
        let len = self.values.len();
        let Some(need) = len.checked_add(1).and_then(|n| n.checked_mul(2)) else {
            return Err((Error::NoMemory, v));
        };
        if need > self.slots.len() {
            let grown = self.slots.len().checked_mul(2).map(|n| n.max(MIN_SLOTS));
            match grown.map(|n| self.reindex(n)) {
                Some(Ok(())) => {}
                Some(Err(e)) => return Err((e, v)),
                None => return Err((Error::NoMemory, v)),
            }
        }
        if let Err(e) = self.values.try_reserve(1) {
            return Err((e, v));
        }
        let slot = match self.link(key, len) {
            Ok(s) => s,
            Err(e) => return Err((e, v)),
        };
        if let Err((_, v)) = self.values.push_within_capacity((key, v)) {
            // The slot just filled ends its run: emptying it restores the
            // index as it was.
            if let Some(t) = self.slots.get_mut(slot) {
                *t = 0;
            }
            return Err((Error::Corrupted, v));
        }
        Ok(())
    }

    /// Removes `key`'s entry and returns its value. Allocates nothing but
    /// to shrink a map that fell below an eighth of its index, and a
    /// failure to shrink leaves the (larger) map as it was.
    pub fn remove(&mut self, key: usize) -> Option<V> {
        let (hole, i) = self.find(key)?;
        *self.slots.get_mut(hole)? = 0;
        self.close_gap(hole);
        // The last value moves into the hole `i` leaves in the vector, and
        // its slot follows it.
        let last = self.values.len().checked_sub(1)?;
        let (_, v) = if i == last {
            self.values.pop()?
        } else {
            let moved = self.values.pop()?;
            let key2 = moved.0;
            let old = core::mem::replace(self.values.get_mut(i)?, moved);
            let s2 = self.slot_naming(key2, last)?;
            *self.slots.get_mut(s2)? = u32::try_from(i.checked_add(1)?).ok()?;
            old
        };
        let slots = self.slots.len();
        if slots > MIN_SLOTS && self.values.len().saturating_mul(8) < slots {
            // Best effort: a map that could not shrink still works.
            let _ = self.rebuild(slots.wrapping_shr(1));
        }
        Some(v)
    }

    /// The slot that names value `i` of key `key`.
    fn slot_naming(&self, key: usize, i: usize) -> Option<usize> {
        let tag = u32::try_from(i.checked_add(1)?).ok()?;
        let mask = self.mask();
        let mut s = home(key, mask);
        for _ in 0..self.slots.len() {
            if *self.slots.get(s)? == tag {
                return Some(s);
            }
            s = s.wrapping_add(1) & mask;
        }
        None
    }

    /// Slot `hole` was just emptied: moves later slots of its run up into
    /// it (backward shift), unless that would put one before its key's
    /// home, so that every probe still reaches what it looks for.
    fn close_gap(&mut self, mut hole: usize) {
        let mask = self.mask();
        let mut j = hole;
        // The run ends at an empty slot (at most half are used); the bound
        // keeps the walk finite even if that did not hold.
        for _ in 0..self.slots.len() {
            j = j.wrapping_add(1) & mask;
            let Some(k) = self.key_at(j) else {
                return;
            };
            let h = home(k, mask);
            // Whether `h` lies cyclically in (hole, j]: then the slot at j
            // must stay after its home and cannot move to the hole.
            let stays = if hole <= j {
                hole < h && h <= j
            } else {
                hole < h || h <= j
            };
            if !stays {
                let tag = self
                    .slots
                    .get_mut(j)
                    .map_or(0, |t| core::mem::replace(t, 0));
                if let Some(t) = self.slots.get_mut(hole) {
                    *t = tag;
                }
                hole = j;
            }
        }
    }

    /// The values moved into a vector of their own size and indexed by
    /// `slots` slots, giving back the memory of a map that once held many.
    /// On failure (no memory) the map is unchanged.
    fn rebuild(&mut self, slots: usize) -> Result<(), Error> {
        let mut values = S::new_vec();
        values.try_reserve(self.values.len())?;
        let index = Self::empty_index(slots)?;
        while let Some(e) = self.values.pop() {
            if let Err(e) = values.push_within_capacity(e) {
                // Room was reserved for every one: never. Leaked rather
                // than dropped in a context its owner did not choose.
                core::mem::forget(e);
            }
        }
        self.values = values;
        self.slots = index;
        self.link_all()
    }
}
