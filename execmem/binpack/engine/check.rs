// SPDX-License-Identifier: GPL-2.0

//! The invariant checker: [`Engine::check`] walks every pack, block,
//! list and bitmap and compares them with the invariants documented on
//! [`Node`](super::Node), [`Pack`](super::Pack) and [`Engine`]. For the
//! tests and the debugfs self-check; O(total blocks).

use super::super::storage::{Error, Storage, Vector};
use super::super::tlsf::NLISTS;
use super::super::types::{arch, ExecmemType, PerType};
use super::arena::State;
use super::index::list_idx;
use super::policy::OVERFLOW_PAGES;
use super::{corrupt, Engine, PackKind, NIL, PACK_G, PAGE_G, PMAP_WORDS};

impl<S: Storage> Engine<S> {
    /// Check every invariant; O(total blocks). For tests and a debugfs
    /// self-check, not for hot paths.
    pub fn check(&self) -> Result<(), Error> {
        let bad = Err(Error::Corrupted);
        let (mut used, mut live, mut shared, mut ext, mut units, mut empty) =
            (0usize, 0usize, 0usize, 0usize, 0usize, 0u32);
        let (mut over, mut over_pages, mut over_used) = (0usize, 0u32, 0u32);
        let mut by_type = PerType::<usize>::default();
        let mut blocks = 0usize;
        for i in 0..self.packs.len() {
            let pack = corrupt(self.packs.get(i))?;
            if pack.npacks == 0 {
                continue;
            }
            let p = corrupt(u32::try_from(i).ok())?;
            let align = if pack.pages != 0 {
                arch::PAGE_SIZE
            } else {
                arch::PACK_SIZE
            };
            if pack.base & align.wrapping_sub(1) != 0 {
                return bad;
            }
            let kind_ok = match pack.kind {
                PackKind::Unused => false,
                PackKind::Shared => pack.npacks == 1 && pack.pages == 0,
                PackKind::Extent => pack.npacks > 1 && pack.pages == 0,
                PackKind::Overflow => pack.npacks == 1 && pack.pages != 0,
            };
            if !kind_ok {
                return bad;
            }
            if pack.kind == PackKind::Overflow {
                if pack.pages > PACK_G / PAGE_G || pack.used == 0 {
                    return bad;
                }
                over = corrupt(over.checked_add(1))?;
                over_pages = corrupt(over_pages.checked_add(pack.pages))?;
                over_used = corrupt(over_used.checked_add(pack.used))?;
            } else if pack.kind == PackKind::Shared {
                shared = corrupt(shared.checked_add(1))?;
                if pack.used == 0 {
                    empty = corrupt(empty.checked_add(1))?;
                    if self.spare != p {
                        return bad;
                    }
                }
            } else {
                // An extent is released as soon as it is empty.
                if pack.used == 0 {
                    return bad;
                }
                ext = corrupt(ext.checked_add(1))?;
                units = corrupt(units.checked_add(pack.npacks as usize))?;
            }
            let total = corrupt(pack.span_g())?;
            let (mut off, mut pu, mut pl, mut pf) = (0u32, 0u32, 0u32, 0u32);
            let mut prev = NIL;
            let mut prev_free = false;
            let mut b = pack.first;
            while b != NIL {
                let n = self.node(b)?;
                blocks = corrupt(blocks.checked_add(1))?;
                if n.pack != p || n.off != off || n.prev != prev || n.size == 0 {
                    return bad;
                }
                match n.state {
                    State::Spare => return bad,
                    State::Free => {
                        if prev_free || pack.kind == PackKind::Overflow {
                            return bad;
                        }
                        pf = corrupt(pf.checked_add(1))?;
                        // It must be reachable from its list head.
                        let list = list_idx(n.size);
                        let mut f = *corrupt(pack.heads.get(list as usize))?;
                        let mut found = false;
                        while f != NIL {
                            if f == b {
                                found = true;
                                break;
                            }
                            f = self.node(f)?.fnext;
                        }
                        if !found {
                            return bad;
                        }
                        prev_free = true;
                    }
                    State::Used => {
                        pu = corrupt(pu.checked_add(n.size))?;
                        pl = corrupt(pl.checked_add(1))?;
                        let ty = corrupt(ExecmemType::from_index(n.ty as usize))?;
                        let t = &mut by_type[ty];
                        *t = corrupt(t.checked_add(n.size as usize))?;
                        prev_free = false;
                    }
                }
                off = corrupt(off.checked_add(n.size))?;
                prev = b;
                b = n.next;
            }
            // A pack or extent is tiled exactly; an overflow extent holds one
            // block from offset 0 and leaves its tail unused.
            let tiled = if pack.kind == PackKind::Overflow {
                off <= total && pl == 1 && pf == 0
            } else {
                off == total
            };
            if !tiled || pu != pack.used || pl != pack.live || pf != pack.nfree {
                return bad;
            }
            // Bitmap and list contents.
            let mut listed = 0u32;
            for (list, &h) in pack.heads.iter().enumerate() {
                let bit = pack.bits & 1u64.wrapping_shl(list as u32) != 0;
                if bit != (h != NIL) {
                    return bad;
                }
                let mut f = h;
                let mut fp = NIL;
                while f != NIL {
                    let n = self.node(f)?;
                    if n.state != State::Free
                        || n.pack != p
                        || n.fprev != fp
                        || list_idx(n.size) as usize != list
                    {
                        return bad;
                    }
                    listed = corrupt(listed.checked_add(1))?;
                    fp = f;
                    f = n.fnext;
                }
            }
            if listed != pack.nfree {
                return bad;
            }
            if pack.kind == PackKind::Overflow && pack.bits != 0 {
                return bad;
            }
            used = corrupt(used.checked_add(pack.used as usize))?;
            live = corrupt(live.checked_add(pack.live as usize))?;
        }
        // Pack bitmaps: bit p of list i iff pack p's list i is non-empty.
        for i in 0..NLISTS {
            let mut want = [0u64; PMAP_WORDS];
            for p in 0..self.packs.len() {
                let pack = corrupt(self.packs.get(p))?;
                if pack.npacks != 0 && *corrupt(pack.heads.get(i))? != NIL {
                    let w = corrupt(want.get_mut(p.wrapping_shr(6)))?;
                    *w |= 1u64.wrapping_shl((p & 63) as u32);
                }
            }
            let mut want_sum = 0u64;
            for (w, &word) in want.iter().enumerate() {
                if word != 0 {
                    want_sum |= 1u64.wrapping_shl(w as u32);
                }
            }
            if self.packs_with.get(i).copied().unwrap_or([0; PMAP_WORDS]) != want
                || *corrupt(self.packs_with_words.get(i))? != want_sum
                || (want_sum != 0) != (self.nonempty_lists & 1u64.wrapping_shl(i as u32) != 0)
            {
                return bad;
            }
        }
        // Pool.
        let mut spare = 0u32;
        let mut f = self.node_free;
        while f != NIL {
            let n = self.node(f)?;
            if n.state != State::Spare {
                return bad;
            }
            spare = corrupt(spare.checked_add(1))?;
            f = n.next;
        }
        let nodes_ok = (spare as usize).checked_add(blocks) == Some(self.nodes.len());
        // Address index.
        let mut last = None;
        let mut n_idx = 0usize;
        for i in 0..self.by_addr.len() {
            let p = *corrupt(self.by_addr.get(i))?;
            let pack = self.pack(p)?;
            if pack.npacks == 0 || last.is_some_and(|l| l >= pack.base) {
                return bad;
            }
            last = Some(pack.base);
            n_idx = corrupt(n_idx.checked_add(1))?;
        }
        if !nodes_ok
            || spare != self.node_spare
            || used != self.used
            || live != self.live
            || shared != self.shared
            || ext != self.extents
            || units != self.extent_units
            || over != self.overflow
            || over_pages != self.overflow_pages
            || over_used != self.overflow_used
            || over_pages > OVERFLOW_PAGES
            || empty != self.empty
            || empty > 1
            || (empty == 0) != (self.spare == NIL)
            || by_type != self.used_by_type
            || n_idx != shared.saturating_add(ext).saturating_add(over)
        {
            return bad;
        }
        Ok(())
    }
}
