// SPDX-License-Identifier: GPL-2.0

//! What the embedder provides: metadata storage and pack backing.
//!
//! The engine never allocates on its own. Its metadata lives in vectors made
//! by a [`Storage`], whose pushes may fail (the kernel backs them with
//! `KVec<T>` and `GFP_KERNEL`), and its packs come from a [`PackSource`]
//! (the kernel's vmalloc of a huge page, or a fake in the host tests).

use super::types::Class;

/// Everything that can go wrong, kept small so the kernel can map it to an
/// errno.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// Size 0, alignment 0 or not a power of two, alignment above
    /// [`super::types::arch::MAX_ALIGN`], or a type of another class
    /// (`EINVAL`).
    Invalid,
    /// Size above [`super::types::MAX_ALLOC`] (`E2BIG`).
    TooBig,
    /// A metadata push or the pack source failed (`ENOMEM`).
    NoMemory,
    /// Double free, stale or foreign handle, unknown address (`ENOENT`).
    NotAllocated,
    /// An internal invariant does not hold: a bug in the engine. Never
    /// returned by a correct engine; reported instead of panicking
    /// (`EFAULT`).
    Corrupted,
    /// A [`PackSource`] that only probes declined to map: the request
    /// needs the class to grow. The engine passes it on untouched (unlike
    /// [`Error::NoMemory`], after which it may look elsewhere), so that a
    /// probe that fails has changed nothing. Not an error of the
    /// embedder's callers (`EFAULT` if it ever reached one).
    WouldGrow,
}

impl Error {
    /// One line for the user, no newline: the error explains itself, so no
    /// caller re-guesses a reason from an errno.
    pub const fn reason(self) -> &'static str {
        match self {
            Error::Invalid => "invalid size or alignment",
            Error::TooBig => "size above the 64 MiB limit",
            Error::NoMemory => "out of memory",
            Error::NotAllocated => "not allocated",
            Error::Corrupted => "internal error: an engine invariant does not hold",
            Error::WouldGrow => "internal error: a probe's refusal to grow reached a caller",
        }
    }
}

/// A growable array whose growth may fail.
///
/// Minimal on purpose: a kernel `KVec<T>` implements it with `len()`,
/// `as_slice().get(i)`, `as_mut_slice().get_mut(i)`, `push(v, GFP_KERNEL)`
/// (mapping `AllocError` to [`Error::NoMemory`]) and `pop()`.
pub trait Vector<T> {
    /// Number of elements.
    fn len(&self) -> usize;
    /// Whether there are no elements.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Element `i`, if `i < len()`.
    fn get(&self, i: usize) -> Option<&T>;
    /// Element `i`, mutably, if `i < len()`.
    fn get_mut(&mut self, i: usize) -> Option<&mut T>;
    /// Append `v`; on failure the vector is unchanged and the error is
    /// [`Error::NoMemory`].
    fn try_push(&mut self, v: T) -> Result<(), Error>;
    /// Remove and return the last element.
    fn pop(&mut self) -> Option<T>;
    /// Make room for `additional` more elements, so that as many
    /// [`Vector::push_within_capacity`] calls succeed; on failure
    /// ([`Error::NoMemory`]) the vector is unchanged.
    fn try_reserve(&mut self, additional: usize) -> Result<(), Error>;
    /// Append `v` if there is room without allocating; otherwise give it
    /// back.
    fn push_within_capacity(&mut self, v: T) -> Result<(), T>;
}

/// A family of [`Vector`]s: how the engine makes its metadata arrays.
pub trait Storage {
    /// The vector type (kernel: `KVec<T>`; host: `std::vec::Vec<T>`).
    type Vec<T>: Vector<T>;
    /// A new, empty vector. Must not allocate (or must not fail).
    fn new_vec<T>() -> Self::Vec<T>;
}

/// Where packs come from. The engine calls it only when it needs a new pack
/// or dedicated extent, and when it releases one.
pub trait PackSource {
    /// Map `npacks` contiguous packs for `class`, filled with
    /// [`Class::fill`] and with the class's final permissions, and return the
    /// base address, which must be non-zero and aligned to
    /// [`super::types::arch::PACK_SIZE`]. On error nothing is mapped.
    ///
    /// `slot` is the engine's pack slot for this mapping (what
    /// `PackId::index()` returns for allocations in it): below
    /// [`super::types::arch::MAX_PACKS`], not used by another live mapping
    /// of this engine, and passed back to the matching unmap. A source may
    /// index its own per-mapping state by it.
    fn map(&mut self, class: Class, slot: usize, npacks: usize) -> Result<usize, Error>;
    /// Release what [`PackSource::map`] returned for the same `slot` and
    /// `npacks`.
    fn unmap(&mut self, class: Class, slot: usize, base: usize, npacks: usize);
    /// Map `pages` base pages ([`super::types::arch::PAGE_SIZE`]) for one
    /// overflow allocation of `class` (see the engine's overflow policy):
    /// page-granular backing, filled with [`Class::fill`] and with the
    /// class's final permissions. The base must be non-zero and aligned to
    /// `align`, a power of two between the page size and the pack size.
    /// On error nothing is mapped. After [`Error::NoMemory`] the engine
    /// looks for room elsewhere (mapped free space, then a new pack); any
    /// other error, [`Error::WouldGrow`] included, ends the request.
    /// `slot` as for [`PackSource::map`].
    fn map_pages(
        &mut self,
        class: Class,
        slot: usize,
        pages: usize,
        align: usize,
    ) -> Result<usize, Error>;
    /// Release what [`PackSource::map_pages`] returned for the same `slot`
    /// and `pages`.
    fn unmap_pages(&mut self, class: Class, slot: usize, base: usize, pages: usize);
}
