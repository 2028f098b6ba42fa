// SPDX-License-Identifier: GPL-2.0

//! The indexes over free space and packs: each pack's segregated free
//! lists (`Pack::heads`, with a `u64` of the non-empty ones), the
//! class-wide bitmaps of the packs whose list of a size is non-empty
//! (`packs_with`, summarised by `packs_with_words` and `nonempty_lists`), and the pack slots sorted
//! by base address (`by_addr`), for lookups by address.

use super::super::storage::{Error, Storage, Vector};
use super::super::tlsf;
use super::{corrupt, Engine, NIL, PACK_G};

/// The list of free blocks of a pack's size or larger: an empty pack's
/// single block, and the free blocks of at least 2 MiB in extents.
pub(super) const FULL_LIST: u32 = tlsf::list_of(PACK_G);

/// The free list of a block of `size_g` granules (blocks larger than a pack, in
/// extents, share the last list).
pub(super) const fn list_idx(size_g: u32) -> u32 {
    let list = tlsf::list_of(size_g);
    if list > FULL_LIST {
        FULL_LIST
    } else {
        list
    }
}

impl<S: Storage> Engine<S> {
    // ---- free lists -----------------------------------------------------

    /// Put free node `b` into its pack's list.
    pub(super) fn list_insert(&mut self, b: u32) -> Result<(), Error> {
        let (p, size) = {
            let n = self.node(b)?;
            (n.pack, n.size)
        };
        let list = list_idx(size);
        let pack = self.pack_mut(p)?;
        let slot = corrupt(pack.heads.get_mut(list as usize))?;
        let old = *slot;
        *slot = b;
        pack.bits |= 1u64.wrapping_shl(list);
        if old != NIL {
            self.node_mut(old)?.fprev = b;
        } else {
            self.plist_link(p, list)?;
        }
        let n = self.node_mut(b)?;
        n.fprev = NIL;
        n.fnext = old;
        Ok(())
    }

    /// Take free node `b` out of its pack's list.
    pub(super) fn list_remove(&mut self, b: u32) -> Result<(), Error> {
        let (p, size, fp, fnx) = {
            let n = self.node(b)?;
            (n.pack, n.size, n.fprev, n.fnext)
        };
        let list = list_idx(size);
        if fnx != NIL {
            self.node_mut(fnx)?.fprev = fp;
        }
        if fp != NIL {
            self.node_mut(fp)?.fnext = fnx;
        } else {
            let pack = self.pack_mut(p)?;
            let slot = corrupt(pack.heads.get_mut(list as usize))?;
            if *slot != b {
                return Err(Error::Corrupted);
            }
            *slot = fnx;
            if fnx == NIL {
                pack.bits &= !1u64.wrapping_shl(list);
                self.plist_unlink(p, list)?;
            }
        }
        let n = self.node_mut(b)?;
        n.fprev = NIL;
        n.fnext = NIL;
        Ok(())
    }

    // ---- per-class pack lists --------------------------------------------

    /// Pack `p`'s list `list` became empty.
    fn plist_unlink(&mut self, p: u32, list: u32) -> Result<(), Error> {
        let row = corrupt(self.packs_with.get_mut(list as usize))?;
        let w = p.wrapping_shr(6);
        let word = corrupt(row.get_mut(w as usize))?;
        *word &= !1u64.wrapping_shl(p & 63);
        if *word == 0 {
            let sum = corrupt(self.packs_with_words.get_mut(list as usize))?;
            *sum &= !1u64.wrapping_shl(w);
            if *sum == 0 {
                self.nonempty_lists &= !1u64.wrapping_shl(list);
            }
        }
        Ok(())
    }

    /// Pack `p`'s list `list` became non-empty.
    fn plist_link(&mut self, p: u32, list: u32) -> Result<(), Error> {
        let row = corrupt(self.packs_with.get_mut(list as usize))?;
        let w = p.wrapping_shr(6);
        *corrupt(row.get_mut(w as usize))? |= 1u64.wrapping_shl(p & 63);
        *corrupt(self.packs_with_words.get_mut(list as usize))? |= 1u64.wrapping_shl(w);
        self.nonempty_lists |= 1u64.wrapping_shl(list);
        Ok(())
    }

    /// The lowest pack slot `>= from` whose list `list` is non-empty.
    pub(super) fn plist_next(&self, list: u32, from: u32) -> Result<Option<u32>, Error> {
        // No rows yet: no pack was ever mapped.
        let Some(row) = self.packs_with.get(list as usize) else {
            return Ok(None);
        };
        let w = from.wrapping_shr(6);
        if let Some(word) = row.get(w as usize) {
            if let Some(b) = tlsf::lowest_from(*word, from & 63) {
                return Ok(Some(w.wrapping_shl(6) | b));
            }
        }
        let sum = *corrupt(self.packs_with_words.get(list as usize))?;
        let Some(nw) = tlsf::lowest_from(sum, corrupt(w.checked_add(1))?) else {
            return Ok(None);
        };
        let word = *corrupt(row.get(nw as usize))?;
        let b = corrupt(tlsf::lowest_from(word, 0))?;
        Ok(Some(nw.wrapping_shl(6) | b))
    }

    // ---- pack index by address --------------------------------------------

    /// Position in `by_addr` of the last pack with base <= addr.
    pub(super) fn by_addr_floor(&self, addr: usize) -> Result<Option<usize>, Error> {
        let (mut lo, mut hi) = (0usize, self.by_addr.len());
        while lo < hi {
            let mid = lo.wrapping_add(hi.wrapping_sub(lo) / 2);
            let p = *corrupt(self.by_addr.get(mid))?;
            if self.pack(p)?.base <= addr {
                lo = corrupt(mid.checked_add(1))?;
            } else {
                hi = mid;
            }
        }
        Ok(lo.checked_sub(1))
    }

    /// Insert slot `p` (already mapped) into `by_addr`, whose last entry is
    /// a placeholder pushed before mapping.
    pub(super) fn by_addr_insert(&mut self, p: u32) -> Result<(), Error> {
        let base = self.pack(p)?.base;
        let mut i = corrupt(self.by_addr.len().checked_sub(1))?;
        while let Some(j) = i.checked_sub(1) {
            let q = *corrupt(self.by_addr.get(j))?;
            if self.pack(q)?.base <= base {
                break;
            }
            *corrupt(self.by_addr.get_mut(i))? = q;
            i = j;
        }
        *corrupt(self.by_addr.get_mut(i))? = p;
        Ok(())
    }

    pub(super) fn by_addr_remove(&mut self, p: u32) -> Result<(), Error> {
        let base = self.pack(p)?.base;
        let mut i = corrupt(self.by_addr_floor(base)?)?;
        if *corrupt(self.by_addr.get(i))? != p {
            return Err(Error::Corrupted);
        }
        loop {
            let j = corrupt(i.checked_add(1))?;
            match self.by_addr.get(j) {
                Some(&q) => *corrupt(self.by_addr.get_mut(i))? = q,
                None => break,
            }
            i = j;
        }
        self.by_addr.pop();
        Ok(())
    }
}
