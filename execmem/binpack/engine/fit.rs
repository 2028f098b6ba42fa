// SPDX-License-Identifier: GPL-2.0

//! The free-space search and its two verbs: which free block a request
//! gets ([`Engine::find_fit`], a bounded best-of-a-few over the lowest
//! packs; [`Engine::find_big`] for the blocks of a pack's size or more),
//! carving the allocation out of that block ([`Engine::carve`]),
//! and merging a freed block with its free neighbours ([`Engine::merge`]).
//! Nothing here maps, unmaps or decides to grow: that is
//! [`super::policy`], which calls the search, tries its alternatives and
//! searches again.

use super::super::storage::{Error, Storage, Vector};
use super::super::tlsf;
use super::arena::{Node, State};
use super::index::{list_idx, FULL_LIST};
use super::{corrupt, Engine, NIL, PACK_G};

/// Bounded best-of-a-few: packs, and blocks per pack, looked at in one
/// list (at most 256 blocks). 4 x 4 left churned module classes one pack
/// above their lower bound more often (see Documentation/engine.rst).
const FALLBACK_PACKS: usize = 16;
const FALLBACK_BLOCKS: usize = 16;

/// What [`Engine::find_fit`] found.
pub(super) enum Fit {
    /// A free block that holds the request: [`Engine::carve`] it.
    Block(u32),
    /// A free block the request can be carved off the front of in place
    /// (what [`Engine::carve`] would do): [`Engine::carve_front`] it.
    Front(u32),
}

/// Round `x` up to a multiple of the power of two `a`.
fn align_up(x: u32, a: u32) -> Option<u32> {
    let m = a.checked_sub(1)?;
    Some(x.checked_add(m)? & !m)
}

impl<S: Storage> Engine<S> {
    /// Does free block `b` hold `size_g` granules at alignment `align_g`?
    fn fits(&self, b: u32, size_g: u32, align_g: u32) -> Result<bool, Error> {
        let n = self.node(b)?;
        let Some(a) = align_up(n.off, align_g) else {
            return Ok(false);
        };
        let end = corrupt(n.off.checked_add(n.size))?;
        Ok(a.checked_add(size_g).is_some_and(|e| e <= end))
    }

    /// Find a free block smaller than a pack for `size_g` granules at alignment
    /// `align_g` (any block if the request needs a pack's size anyway): O(1).
    /// The blocks of a pack's size or more are [`Engine::find_big`]'s.
    /// [`Fit::Front`] when the block is its list's only one and
    /// [`Engine::carve`] would carve the request off its front in place.
    pub(super) fn find_fit(&self, size_g: u32, align_g: u32) -> Result<Option<Fit>, Error> {
        // Over-ask by the alignment slack so any block found fits aligned.
        let need = corrupt(size_g.checked_add(align_g.wrapping_sub(1)))?;
        if need > PACK_G {
            // Only blocks of a pack's size or more may fit: look at a few.
            if let Some(b) = self.scan_list(FULL_LIST, size_g, align_g)? {
                return Ok(Some(Fit::Block(b)));
            }
            // The bounded scan may stop before the spare; the spare's one
            // block starts pack-aligned and spans a pack, so it holds any
            // request of up to a pack at any alignment up to a pack.
            if size_g <= PACK_G && self.spare != NIL {
                return Ok(Some(Fit::Block(self.pack(self.spare)?.first)));
            }
            return Ok(None);
        }
        // A few blocks of the request's own class first: they may fit
        // tightly (the class spans up to 25 %).
        let exact_list = tlsf::list_of(need);
        let fit_list = tlsf::search_list(need);
        // (Only if some pack has a block there: the bit is cheaper than the
        // pack bitmaps' walk that would find none.)
        if exact_list < fit_list && self.nonempty_lists & 1u64.wrapping_shl(exact_list) != 0 {
            if let Some(b) = self.scan_list(exact_list, size_g, align_g)? {
                return Ok(Some(Fit::Block(b)));
            }
        }
        // The smallest class guaranteed to fit, in the first (fullest) pack
        // that has it.
        let Some(list) = tlsf::lowest_from(self.nonempty_lists, fit_list) else {
            return Ok(None);
        };
        if list < FULL_LIST {
            if align_g == 1 && self.shortcut {
                if let Some(fit) = self.sole_block(list, size_g)? {
                    return Ok(Some(fit));
                }
            }
            if let Some(b) = self.scan_list(list, size_g, align_g)? {
                return Ok(Some(Fit::Block(b)));
            }
        }
        Ok(None)
    }

    /// For a request of `size_g` granules at alignment `align_g` that fits in a pack:
    /// a free block of a pack's size or more (an extent's free front or
    /// tail, the spare last), which holds it at any alignment. O(1).
    pub(super) fn find_big(&self, size_g: u32, align_g: u32) -> Result<Option<u32>, Error> {
        let need = corrupt(size_g.checked_add(align_g.wrapping_sub(1)))?;
        if need > PACK_G {
            // find_fit looked at these blocks already.
            return Ok(None);
        }
        let Some(mut p) = self.plist_next(FULL_LIST, 0)? else {
            return Ok(None);
        };
        if p == self.spare {
            // The spare is the last choice: prefer the free tail of an
            // extent (the only other blocks in the last list).
            if let Some(q) = self.plist_next(FULL_LIST, corrupt(p.checked_add(1))?)? {
                p = q;
            }
        }
        Ok(Some(*corrupt(self.pack(p)?.heads.get(FULL_LIST as usize))?))
    }

    /// The best of a few blocks of list `list` (in the lowest packs that
    /// have one) that holds `size_g` granules at alignment `align_g`: the one that
    /// leaves the least behind, an exact fit at once. Bounded work.
    fn scan_list(&self, list: u32, size_g: u32, align_g: u32) -> Result<Option<u32>, Error> {
        let mut best: Option<(u32, u32)> = None;
        let mut next = self.plist_next(list, 0)?;
        let mut np = 0;
        while let (Some(p), true) = (next, np < FALLBACK_PACKS) {
            let pack = self.pack(p)?;
            let mut b = *corrupt(pack.heads.get(list as usize))?;
            let mut nb = 0;
            while b != NIL && nb < FALLBACK_BLOCKS {
                if self.fits(b, size_g, align_g)? {
                    let n = self.node(b)?;
                    let left = n.size.saturating_sub(size_g);
                    if left == 0 {
                        return Ok(Some(b));
                    }
                    if !matches!(best, Some((_, l)) if left >= l) {
                        best = Some((b, left));
                    }
                }
                b = self.node(b)?.fnext;
                nb = nb.wrapping_add(1);
            }
            next = self.plist_next(list, corrupt(p.checked_add(1))?)?;
            np = np.wrapping_add(1);
        }
        Ok(best.map(|(b, _)| b))
    }

    /// Allocate `size_g` granules at alignment `align_g` from free block `b` (which
    /// fits), splitting the front and back remainders off as free blocks.
    /// Needs two spare nodes.
    pub(super) fn carve(&mut self, b: u32, size_g: u32, align_g: u32) -> Result<u32, Error> {
        let (p, off, size, next) = {
            let n = self.node(b)?;
            if n.state != State::Free {
                return Err(Error::Corrupted);
            }
            (n.pack, n.off, n.size, n.next)
        };
        let a = corrupt(align_up(off, align_g))?;
        let front = corrupt(a.checked_sub(off))?;
        let back = corrupt(size.checked_sub(front).and_then(|s| s.checked_sub(size_g)))?;
        // (The node and the size list only read when the cheap tests pass.)
        if front == 0
            && back > 0
            && self.front_in_place(p, list_idx(size), back, self.node(b)?.fprev)
        {
            return self.carve_front(b, size_g);
        }
        self.list_remove(b)?;
        if p == self.spare {
            self.empty = corrupt(self.empty.checked_sub(1))?;
            self.spare = NIL;
            self.grew = self.tick;
        }
        // The allocated node: `b` itself, or a new one after the front part.
        let u = if front > 0 {
            let u = self.take_node()?;
            self.node_mut(b)?.size = front;
            self.node_mut(b)?.next = u;
            if next != NIL {
                self.node_mut(next)?.prev = u;
            }
            let gen = self.node(u)?.gen;
            *self.node_mut(u)? = Node::block(a, size_g, b, next, p, gen, State::Free);
            self.list_insert(b)?;
            u
        } else {
            b
        };
        let mut nfree_delta: i32 = if front > 0 { 0 } else { -1 };
        if back > 0 {
            let r = self.take_node()?;
            let end = corrupt(a.checked_add(size_g))?;
            let unext = self.node(u)?.next;
            if unext != NIL {
                self.node_mut(unext)?.prev = r;
            }
            let gen = self.node(r)?.gen;
            *self.node_mut(r)? = Node::block(end, back, u, unext, p, gen, State::Free);
            self.node_mut(u)?.next = r;
            self.list_insert(r)?;
            nfree_delta = nfree_delta.wrapping_add(1);
        }
        let n = self.node_mut(u)?;
        n.size = size_g;
        n.state = State::Used;
        n.gen = n.gen.wrapping_add(1);
        let pack = self.pack_mut(p)?;
        pack.used = corrupt(pack.used.checked_add(size_g))?;
        pack.live = corrupt(pack.live.checked_add(1))?;
        pack.nfree = corrupt(pack.nfree.checked_add_signed(nfree_delta))?;
        Ok(u)
    }

    /// Whether a request carved off the front of a free block in list
    /// `list` of pack `p` (`back` granules left after it, `fprev` before
    /// the block in its list) can leave the rest where it is: it stays in
    /// that list, and the block heads the list in a pack that is not the
    /// spare ([`Engine::carve_front`]).
    fn front_in_place(&self, p: u32, list: u32, back: u32, fprev: u32) -> bool {
        back > 0 && p != self.spare && list_idx(back) == list && fprev == NIL
    }

    /// [`Engine::carve`] of `size_g` granules from the front of free block
    /// `b`, the head of its list, whose rest stays in that list: the same
    /// blocks and list order as carving the usual way (the rest would go
    /// back to the head of the same list), but `b` keeps the rest in place
    /// and a new node takes the front, so no list or bitmap changes. The
    /// JIT's allocations, carved one after the other from a pack's free
    /// tail, are this case. Needs one spare node.
    pub(super) fn carve_front(&mut self, b: u32, size_g: u32) -> Result<u32, Error> {
        let (p, off, size, prev) = {
            let n = self.node(b)?;
            (n.pack, n.off, n.size, n.prev)
        };
        let back = corrupt(size.checked_sub(size_g))?;
        let end = corrupt(off.checked_add(size_g))?;
        let u = self.take_node()?;
        let gen = self.node(u)?.gen.wrapping_add(1);
        *self.node_mut(u)? = Node::block(off, size_g, prev, b, p, gen, State::Used);
        if prev != NIL {
            self.node_mut(prev)?.next = u;
        } else {
            self.pack_mut(p)?.first = u;
        }
        let n = self.node_mut(b)?;
        n.off = end;
        n.size = back;
        n.prev = u;
        let pack = self.pack_mut(p)?;
        pack.used = corrupt(pack.used.checked_add(size_g))?;
        pack.live = corrupt(pack.live.checked_add(1))?;
        Ok(u)
    }

    /// The one block of list `list` in all packs, if it holds `size_g`
    /// granules: what [`Engine::scan_list`] returns for a list of one
    /// block (the best of one), found with two bitmap tests instead of
    /// its walks. `None` when the list has blocks in several packs or
    /// several in one (or the block is too small): the walk decides then.
    /// The JIT's allocations, one after the other off a pack's free tail,
    /// are this case.
    fn sole_block(&self, list: u32, size_g: u32) -> Result<Option<Fit>, Error> {
        // One pack has blocks in the list: one word of its row (packs 64
        // or more slots apart set two), one bit in it.
        let words = *corrupt(self.packs_with_words.get(list as usize))?;
        if !words.is_power_of_two() {
            return Ok(None);
        }
        let w = words.trailing_zeros();
        let row = corrupt(self.packs_with.get(list as usize))?;
        let word = *corrupt(row.get(w as usize))?;
        if !word.is_power_of_two() {
            return Ok(None);
        }
        let p = w.wrapping_shl(6) | word.trailing_zeros();
        // And one block in that pack: the head, with no next.
        let b = *corrupt(self.pack(p)?.heads.get(list as usize))?;
        let n = self.node(b)?;
        if n.state != State::Free {
            return Err(Error::Corrupted);
        }
        if n.fnext != NIL || n.size < size_g {
            return Ok(None);
        }
        // Aligned to the granule, so carve() would take its front, in
        // place if the rest may stay.
        if self.front_in_place(p, list, n.size.wrapping_sub(size_g), n.fprev) {
            return Ok(Some(Fit::Front(b)));
        }
        Ok(Some(Fit::Block(b)))
    }

    /// Free used block `u` of `size` granules in pack `p` (the pack's
    /// counters included) and merge it with its free neighbours: the
    /// inverse of [`Engine::carve`]. Returns the merged block, in its free
    /// list.
    #[inline(always)]
    pub(super) fn merge(&mut self, u: u32, p: u32, size: u32) -> Result<u32, Error> {
        let pack = self.pack_mut(p)?;
        pack.used = corrupt(pack.used.checked_sub(size))?;
        pack.live = corrupt(pack.live.checked_sub(1))?;
        let mut nfree = corrupt(pack.nfree.checked_add(1))?;
        {
            let n = self.node_mut(u)?;
            n.state = State::Free;
            n.ty = 0;
        }
        // Coalesce with the previous block.
        let mut b = u;
        let prev = self.node(b)?.prev;
        if prev != NIL && self.node(prev)?.state == State::Free {
            self.list_remove(prev)?;
            self.absorb_next(prev)?;
            b = prev;
            nfree = corrupt(nfree.checked_sub(1))?;
        }
        // Coalesce with the next block.
        let next = self.node(b)?.next;
        if next != NIL && self.node(next)?.state == State::Free {
            self.list_remove(next)?;
            self.absorb_next(b)?;
            nfree = corrupt(nfree.checked_sub(1))?;
        }
        self.list_insert(b)?;
        self.pack_mut(p)?.nfree = nfree;
        Ok(b)
    }

    /// Merge the block after `b` into `b` and return its node to the pool.
    fn absorb_next(&mut self, b: u32) -> Result<(), Error> {
        let nx = self.node(b)?.next;
        let (nsize, nnext) = {
            let n = self.node(nx)?;
            (n.size, n.next)
        };
        let n = self.node_mut(b)?;
        n.size = corrupt(n.size.checked_add(nsize))?;
        n.next = nnext;
        if nnext != NIL {
            self.node_mut(nnext)?.prev = b;
        }
        self.put_node(nx)
    }
}
