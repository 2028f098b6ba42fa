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
            let pk = corrupt(self.packs.get(i))?;
            if pk.npacks == 0 {
                continue;
            }
            let p = corrupt(u32::try_from(i).ok())?;
            let align = if pk.pages != 0 {
                arch::PAGE_SIZE
            } else {
                arch::PACK_SIZE
            };
            if pk.base & align.wrapping_sub(1) != 0 {
                return bad;
            }
            let kind_ok = match pk.kind {
                PackKind::Unused => false,
                PackKind::Shared => pk.npacks == 1 && pk.pages == 0,
                PackKind::Extent => pk.npacks > 1 && pk.pages == 0,
                PackKind::Overflow => pk.npacks == 1 && pk.pages != 0,
            };
            if !kind_ok {
                return bad;
            }
            if pk.kind == PackKind::Overflow {
                if pk.pages > PACK_G / PAGE_G || pk.used == 0 {
                    return bad;
                }
                over = corrupt(over.checked_add(1))?;
                over_pages = corrupt(over_pages.checked_add(pk.pages))?;
                over_used = corrupt(over_used.checked_add(pk.used))?;
            } else if pk.kind == PackKind::Shared {
                shared = corrupt(shared.checked_add(1))?;
                if pk.used == 0 {
                    empty = corrupt(empty.checked_add(1))?;
                    if self.spare != p {
                        return bad;
                    }
                }
            } else {
                // An extent is released as soon as it is empty.
                if pk.used == 0 {
                    return bad;
                }
                ext = corrupt(ext.checked_add(1))?;
                units = corrupt(units.checked_add(pk.npacks as usize))?;
            }
            let total = corrupt(pk.span_g())?;
            let (mut off, mut pu, mut pl, mut pf) = (0u32, 0u32, 0u32, 0u32);
            let mut prev = NIL;
            let mut prev_free = false;
            let mut b = pk.first;
            while b != NIL {
                let n = self.node(b)?;
                blocks = corrupt(blocks.checked_add(1))?;
                if n.pack != p || n.off != off || n.prev != prev || n.size == 0 {
                    return bad;
                }
                match n.state {
                    State::Spare => return bad,
                    State::Free => {
                        if prev_free || pk.kind == PackKind::Overflow {
                            return bad;
                        }
                        pf = corrupt(pf.checked_add(1))?;
                        // It must be reachable from its list head.
                        let li = list_idx(n.size);
                        let mut f = *corrupt(pk.heads.get(li as usize))?;
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
            let tiled = if pk.kind == PackKind::Overflow {
                off <= total && pl == 1 && pf == 0
            } else {
                off == total
            };
            if !tiled || pu != pk.used || pl != pk.live || pf != pk.nfree {
                return bad;
            }
            // Bitmap and list contents.
            let mut listed = 0u32;
            for (li, &h) in pk.heads.iter().enumerate() {
                let bit = pk.bits & 1u64.wrapping_shl(li as u32) != 0;
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
                        || list_idx(n.size) as usize != li
                    {
                        return bad;
                    }
                    listed = corrupt(listed.checked_add(1))?;
                    fp = f;
                    f = n.fnext;
                }
            }
            if listed != pk.nfree {
                return bad;
            }
            if pk.kind == PackKind::Overflow && pk.bits != 0 {
                return bad;
            }
            used = corrupt(used.checked_add(pk.used as usize))?;
            live = corrupt(live.checked_add(pk.live as usize))?;
        }
        // Pack bitmaps: bit p of list i iff pack p's list i is non-empty.
        for i in 0..NLISTS {
            let mut want = [0u64; PMAP_WORDS];
            for p in 0..self.packs.len() {
                let pk = corrupt(self.packs.get(p))?;
                if pk.npacks != 0 && *corrupt(pk.heads.get(i))? != NIL {
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
            if self.pmap.get(i).copied().unwrap_or([0; PMAP_WORDS]) != want
                || *corrupt(self.psum.get(i))? != want_sum
                || (want_sum != 0) != (self.lbits & 1u64.wrapping_shl(i as u32) != 0)
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
            let pk = self.pack(p)?;
            if pk.npacks == 0 || last.is_some_and(|l| l >= pk.base) {
                return bad;
            }
            last = Some(pk.base);
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
