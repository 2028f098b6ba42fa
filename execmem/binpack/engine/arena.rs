// SPDX-License-Identifier: GPL-2.0

//! The node arena: every block of every pack, free or allocated, is a
//! [`Node`] in one pool (`Engine::nodes`), outside the managed memory.
//! Spare nodes are linked through `next` from `Engine::node_free`; an
//! operation reserves the nodes it needs first, so it cannot fail halfway
//! for want of one.

use super::super::storage::{Error, Storage, Vector};
use super::{corrupt, Engine, NIL};

/// State of a [`Node`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum State {
    /// In the node pool, unused; `next` links the pool.
    Spare,
    /// A free block of a pack; in the free list of its size.
    Free,
    /// An allocated block.
    Used,
}

/// One block of a pack, or a spare node in the pool.
///
/// # Invariants
///
/// For a `Free` or `Used` node: `pack` is a live pack slot, `[off, off +
/// size)` (granules) lies inside it, `prev`/`next` are its address
/// neighbours in the same pack (or `NIL`) and touch it exactly. A `Free`
/// node is in list `list_of(size)` of its pack via `fprev`/`fnext`, and its
/// address neighbours are not `Free`. A `Used` node's `gen` is the
/// generation its handle carries.
#[derive(Clone, Copy, Debug)]
pub struct Node {
    pub(super) off: u32,
    pub(super) size: u32,
    pub(super) prev: u32,
    pub(super) next: u32,
    pub(super) fprev: u32,
    pub(super) fnext: u32,
    pub(super) pack: u32,
    pub(super) gen: u32,
    pub(super) state: State,
    pub(super) ty: u8,
}

impl Node {
    /// A free or used block `[off, off + size)` of `pack` between its
    /// address neighbours `prev` and `next`, not in any free list yet.
    #[allow(clippy::too_many_arguments)]
    pub(super) const fn block(
        off: u32,
        size: u32,
        prev: u32,
        next: u32,
        pack: u32,
        gen: u32,
        state: State,
    ) -> Self {
        Node {
            off,
            size,
            prev,
            next,
            fprev: NIL,
            fnext: NIL,
            pack,
            gen,
            state,
            ty: 0,
        }
    }

    pub(super) const fn spare(next: u32) -> Self {
        Node {
            off: 0,
            size: 0,
            prev: NIL,
            next,
            fprev: NIL,
            fnext: NIL,
            pack: NIL,
            gen: 0,
            state: State::Spare,
            ty: 0,
        }
    }
}

impl<S: Storage> Engine<S> {
    /// The node `i`; a bad index is [`Error::Corrupted`].
    pub(super) fn node(&self, i: u32) -> Result<&Node, Error> {
        corrupt(self.nodes.get(i as usize))
    }

    /// The node `i`, mutable.
    pub(super) fn node_mut(&mut self, i: u32) -> Result<&mut Node, Error> {
        corrupt(self.nodes.get_mut(i as usize))
    }

    /// Make sure `n` spare nodes exist. Growing the pool is not an
    /// observable change, so a failure here leaves the engine as it was.
    pub(super) fn reserve_nodes(&mut self, n: u32) -> Result<(), Error> {
        while self.node_spare < n {
            let idx = u32::try_from(self.nodes.len()).map_err(|_| Error::NoMemory)?;
            if idx == NIL {
                return Err(Error::NoMemory);
            }
            self.nodes.try_push(Node::spare(self.node_free))?;
            self.node_free = idx;
            self.node_spare = corrupt(self.node_spare.checked_add(1))?;
        }
        Ok(())
    }

    /// Take a spare node (reserved before).
    pub(super) fn take_node(&mut self) -> Result<u32, Error> {
        let i = self.node_free;
        let n = self.node_mut(i)?;
        if n.state != State::Spare {
            return Err(Error::Corrupted);
        }
        let next = n.next;
        self.node_free = next;
        self.node_spare = corrupt(self.node_spare.checked_sub(1))?;
        Ok(i)
    }

    /// Return node `i` to the pool.
    pub(super) fn put_node(&mut self, i: u32) -> Result<(), Error> {
        let next = self.node_free;
        let n = self.node_mut(i)?;
        let gen = n.gen;
        *n = Node::spare(next);
        // Keep the generation so an old handle never matches a reuse.
        n.gen = gen;
        self.node_free = i;
        self.node_spare = corrupt(self.node_spare.checked_add(1))?;
        Ok(())
    }
}
