// SPDX-License-Identifier: GPL-2.0

//! Windows: an exclusive view of part of an [`Area`], one per allocation.
//! Writes take `&mut self`; reads, page-table probes and calls take
//! `&self`, so no safe code can race a plain write with anything. Writes
//! into read-only or executable memory go through the architecture's
//! text-patching primitives ([`arch::poke_copy`], [`arch::poke_set`]),
//! never through a writable mapping of the area.

use super::arch::{self, LANDING_PAD};
use super::mem::{Area, PageInfo, Perms};
use super::sched::cond_resched;
use crate::execmem::binpack::types::Fill;
use core::{
    marker::PhantomData,
    ptr::NonNull,
    sync::atomic::{AtomicUsize, Ordering},
};
use kernel::{error::code::*, prelude::*};

/// The most bytes one call of a text-patching primitive writes: a longer
/// write or fill into RO/RX memory is cut into pieces of this size, with
/// `cond_resched()` between them, so that no call holds `text_mutex`
/// (x86-64) or runs with interrupts off (arm64's `patch_lock`) for more
/// than 16 pages. A multiple of [`arch::POKE_ALIGN`].
pub const POKE_CHUNK: usize = 64 * 1024;

const _: () = assert!(past_poke_boundary(POKE_CHUNK) == 0);

/// The most bytes one primitive call has written since load.
static POKE_MAX: AtomicUsize = AtomicUsize::new(0);

/// The most bytes one text-patching call has written since the module
/// was loaded (`stats`: `total.poke_max_bytes`): at most [`POKE_CHUNK`].
pub fn poke_max_bytes() -> usize {
    POKE_MAX.load(Ordering::Relaxed)
}

/// [`arch::poke_copy`] in pieces of at most [`POKE_CHUNK`] bytes, with
/// `cond_resched()` between two pieces; returns how many calls it made.
///
/// # Safety
///
/// As for [`arch::poke_copy`], for `dst..dst + data.len()`; the caller may
/// sleep (as `text_poke_copy()`, which takes `text_mutex`, needs anyway).
unsafe fn poke_copy(dst: *mut u8, data: &[u8]) -> Result<usize> {
    let mut calls = 0;
    for (i, piece) in data.chunks(POKE_CHUNK).enumerate() {
        if i > 0 {
            cond_resched();
        }
        POKE_MAX.fetch_max(piece.len(), Ordering::Relaxed);
        // SAFETY: piece `i` is `data[i * POKE_CHUNK..][..piece.len()]`, so
        // its destination `dst + i * POKE_CHUNK` and length lie inside the
        // caller's range, and it starts where the caller's did, plus a
        // multiple of `arch::POKE_ALIGN`.
        unsafe { arch::poke_copy(dst.add(i * POKE_CHUNK), piece) }?;
        calls += 1;
    }
    Ok(calls)
}

/// [`arch::poke_set`] in pieces of at most [`POKE_CHUNK`] bytes, like
/// [`poke_copy`]: each piece starts a multiple of the pattern's width
/// after `dst`, so the pattern continues across them. Returns how many
/// calls it made.
///
/// # Safety
///
/// As for [`arch::poke_set`], for `dst..dst + len`; the caller may sleep.
unsafe fn poke_set(dst: *mut u8, fill: Fill, len: usize) -> Result<usize> {
    let (mut done, mut calls) = (0, 0);
    while done < len {
        let n = POKE_CHUNK.min(len - done);
        if done > 0 {
            cond_resched();
        }
        POKE_MAX.fetch_max(n, Ordering::Relaxed);
        // SAFETY: `done + n <= len`: inside the caller's range, starting a
        // multiple of `POKE_CHUNK` (so of `arch::POKE_ALIGN` and of the
        // pattern's width) after `dst`.
        unsafe { arch::poke_set(dst.add(done), fill, n) }?;
        done += n;
        calls += 1;
    }
    Ok(calls)
}

/// An exclusive view of `len` bytes of an [`Area`]: what one allocation may
/// touch. `'a` is how long the area is borrowed for ([`Area::window`]);
/// the allocator's windows are `'static` and their area's lifetime is its
/// own guarantee ([`Window::new`]).
///
/// # Invariants
///
/// `[addr, addr + len)` lies inside live areas (one, or adjacent ones for
/// a [`Window::join`]) whose permissions are `perms` (never
/// [`Perms::Unknown`]) and stay so while this window exists; no other window
/// overlaps it; nothing else writes those bytes.
pub struct Window<'a> {
    addr: NonNull<u8>,
    len: usize,
    perms: Perms,
    _area: PhantomData<&'a mut Area>,
}

// SAFETY: a window is an exclusive handle to memory that stays mapped while
// it lives; it may be used and dropped from any thread.
unsafe impl Send for Window<'_> {}
// SAFETY: the `&self` methods only read the bytes, read the page tables or
// call code there; writes need `&mut self`, so they never race a `&self` use.
unsafe impl Sync for Window<'_> {}

impl Area {
    /// The whole area as a window, for as long as it is borrowed: how a
    /// single-owner area (the kernel's own path, in the probe and the
    /// benchmark) is written after [`Area::protect`].
    pub fn window(&mut self) -> Result<Window<'_>> {
        if self.perms() == Perms::Unknown {
            return Err(EFAULT);
        }
        // INVARIANT: the whole area, borrowed mutably for `'_`: it stays
        // alive and unchanged, and nothing else can make a window of it.
        Ok(Window {
            addr: self.at(0, self.size())?,
            len: self.size(),
            perms: self.perms(),
            _area: PhantomData,
        })
    }
}

impl Window<'static> {
    /// The window `[offset, offset + len)` of `area`, for an allocator that
    /// hands out parts of an area to several owners.
    ///
    /// # Safety
    ///
    /// While the window lives, `area` must stay alive with its current
    /// permissions, and no other window may overlap the range.
    pub unsafe fn new(area: &Area, offset: usize, len: usize) -> Result<Window<'static>> {
        if area.perms() == Perms::Unknown {
            return Err(EFAULT);
        }
        let addr = area.at(offset, len)?;
        // INVARIANT: inside `area` (checked); liveness, stable permissions
        // and exclusivity are the caller's guarantee.
        Ok(Window {
            addr,
            len,
            perms: area.perms(),
            _area: PhantomData,
        })
    }
}

impl<'a> Window<'a> {
    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the window has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Address of the first byte (placement arithmetic only; never printed).
    pub fn addr(&self) -> usize {
        self.addr.as_ptr() as usize
    }

    /// One window over `self` and `next`, if `next` starts right where
    /// `self` ends (and has the same permissions); both back otherwise.
    /// Two exclusive, adjacent ranges make one exclusive range.
    pub fn join(
        self,
        next: Window<'a>,
    ) -> core::result::Result<Window<'a>, (Window<'a>, Window<'a>)> {
        let adjacent = self.addr().checked_add(self.len) == Some(next.addr());
        match self.len.checked_add(next.len) {
            Some(len) if adjacent && self.perms == next.perms => Ok(Window {
                // INVARIANT: the union of two exclusive windows that touch:
                // each part lies in a live area with these permissions.
                addr: self.addr,
                len,
                perms: self.perms,
                _area: PhantomData,
            }),
            _ => Err((self, next)),
        }
    }

    fn at(&self, offset: usize, len: usize) -> Result<*mut u8> {
        let end = offset.checked_add(len).ok_or(ERANGE)?;
        if end > self.len {
            return Err(ERANGE);
        }
        // SAFETY: `offset <= len`: inside the window or one past its end.
        Ok(unsafe { self.addr.as_ptr().add(offset) })
    }

    /// Copies `data` to `offset`: a plain copy into writable memory,
    /// `text_poke_copy()` into read-only or executable memory, in pieces of
    /// at most [`POKE_CHUNK`] (then it may sleep). Returns how many calls
    /// of the text-patching primitives it made (0 for writable memory).
    pub fn write(&mut self, offset: usize, data: &[u8]) -> Result<usize> {
        let dst = self.at(offset, data.len())?;
        if data.is_empty() {
            return Ok(0);
        }
        if self.perms == Perms::ReadWrite {
            // SAFETY: `dst..dst+len` is inside our writable window (checked
            // above), which nobody else touches (type invariant), and
            // `&mut self` excludes our own readers.
            unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), dst, data.len()) };
            return Ok(0);
        }
        let (n, head) = self.poke_head(offset, data.len(), |i| data.get(i).copied())?;
        let Some(rest) = data.get(n..).filter(|r| !r.is_empty()) else {
            return Ok(head);
        };
        // `offset + n` is inside the window (`n < data.len()`) and aligned.
        let dst = self.at(offset + n, rest.len())?;
        // SAFETY: the destination is inside our own RO/RX window, which
        // nobody else writes (type invariant), and starts on
        // `arch::POKE_ALIGN`; the source is a valid slice, distinct from it.
        Ok(head + unsafe { poke_copy(dst, rest) }?)
    }

    /// Fills `len` bytes at `offset` with `fill`, like [`Window::write`].
    /// A word pattern needs `offset` and `len` on whole words (`EINVAL`).
    pub fn fill(&mut self, offset: usize, fill: Fill, len: usize) -> Result<usize> {
        let dst = self.at(offset, len)?;
        if len == 0 {
            return Ok(0);
        }
        if self.perms == Perms::ReadWrite {
            // SAFETY: as in `write`.
            unsafe { fill_plain(dst, fill, len) }?;
            return Ok(0);
        }
        let Some(b) = fill.as_byte() else {
            // SAFETY: as in `write` (the primitive checks the alignment a
            // word pattern needs).
            return unsafe { poke_set(dst, fill, len) };
        };
        // A repeated byte: an unaligned head merged into its word, whole
        // words, then a tail shorter than a word, copied.
        let (n, mut calls) = self.poke_head(offset, len, |_| Some(b))?;
        let rest = len - n;
        let tail = past_poke_boundary(rest);
        let body = rest - tail;
        if body > 0 {
            // Inside the window (`offset + n + body <= offset + len`), and
            // aligned after the head.
            let dst = self.at(offset + n, body)?;
            // SAFETY: as in `write`.
            calls += unsafe { poke_set(dst, fill, body) }?;
        }
        if tail > 0 {
            let bytes = [b; arch::POKE_ALIGN];
            let dst = self.at(offset + n + body, tail)?;
            // SAFETY: as in `write`; `tail < POKE_ALIGN`, so the source is
            // that many bytes of a local array.
            calls += unsafe { poke_copy(dst, bytes.get(..tail).ok_or(EINVAL)?) }?;
        }
        Ok(calls)
    }

    /// Pokes the start of a write of `len` bytes at `offset` into RO/RX
    /// memory up to the next [`arch::POKE_ALIGN`] boundary: `byte(i)` is
    /// the `i`th byte written. Where the patching primitives cannot start
    /// at `offset`, the word holding it is read, merged and poked whole
    /// (its bytes before `offset` rewritten with what they hold). Returns
    /// how many of the `len` bytes that wrote, 0 when `offset` is aligned,
    /// and how many primitive calls (0 or 1).
    /// `EINVAL` if that word begins before the window.
    fn poke_head(
        &mut self,
        offset: usize,
        len: usize,
        byte: impl Fn(usize) -> Option<u8>,
    ) -> Result<(usize, usize)> {
        let mis = past_poke_boundary(self.addr().wrapping_add(offset));
        if mis == 0 {
            return Ok((0, 0));
        }
        let start = offset.checked_sub(mis).ok_or(EINVAL)?;
        let n = (arch::POKE_ALIGN - mis).min(len);
        // The word, or what of it the window has.
        let w = arch::POKE_ALIGN.min(self.len.saturating_sub(start));
        let mut word = [0u8; arch::POKE_ALIGN];
        let word = word.get_mut(..w).ok_or(EINVAL)?;
        self.read(start, word)?;
        for i in 0..n {
            *word.get_mut(mis + i).ok_or(EINVAL)? = byte(i).ok_or(EINVAL)?;
        }
        let dst = self.at(start, w)?;
        // SAFETY: `start..start + w` is inside our own RO/RX window (`at`
        // checked it), which nobody else writes (type invariant), and
        // begins on `arch::POKE_ALIGN`; `&mut self` excludes our readers
        // and callers, so its bytes before `offset` are rewritten with
        // the values just read. The source is a local array.
        let calls = unsafe { poke_copy(dst, word) }?;
        Ok((n, calls))
    }

    /// Copies `out.len()` bytes from `offset` into `out`.
    pub fn read(&self, offset: usize, out: &mut [u8]) -> Result {
        let src = self.at(offset, out.len())?;
        // SAFETY: the source range is inside our window and readable in
        // every permission state; writes to it need `&mut self`, so none is
        // in flight; `out` is a distinct, valid Rust buffer.
        unsafe { core::ptr::copy_nonoverlapping(src, out.as_mut_ptr(), out.len()) };
        Ok(())
    }

    /// How the page containing `offset` is mapped.
    pub fn probe(&self, offset: usize) -> Result<PageInfo> {
        let p = self.at(offset, 1)?;
        // `at` checked `offset < len`, so `p` is inside the window.
        let p = NonNull::new(p).ok_or(EFAULT)?;
        // SAFETY: inside the window, which lies in live areas while it
        // exists (type invariant); `&self` keeps it.
        unsafe { arch::probe(p) }
    }

    /// Calls the code at `offset` as `extern "C" fn() -> u64`.
    ///
    /// Refused unless the window is executable and `offset` starts with
    /// [`LANDING_PAD`] (the only instruction IBT lets an indirect call land
    /// on), saying which ([`CallRefused`]).
    ///
    /// # Safety
    ///
    /// The bytes at `offset` must be a complete function for the C ABI of
    /// this kernel that returns, preserves callee-saved registers and does
    /// nothing the caller is not allowed to do.
    pub unsafe fn call(&self, offset: usize) -> core::result::Result<u64, CallRefused> {
        if self.perms != Perms::ReadExec {
            return Err(CallRefused::NotExecutable);
        }
        let mut pad = [0u8; LANDING_PAD.len()];
        self.read(offset, &mut pad)
            .map_err(|_| CallRefused::NoLandingPad)?;
        if pad != LANDING_PAD {
            return Err(CallRefused::NoLandingPad);
        }
        let entry = self.at(offset, 1).map_err(|_| CallRefused::OutOfRange)?;
        // SAFETY: the window is mapped executable (checked above), the entry
        // starts with a landing pad, and the caller guarantees that `entry`
        // holds a function of this type.
        let f: extern "C" fn() -> u64 = unsafe { core::mem::transmute(entry) };
        Ok(f())
    }
}

/// How far `x` lies past the last [`arch::POKE_ALIGN`] boundary.
// The modulus is 1 on x86-64, where the text-patching primitives start
// anywhere: then there is never a head to merge or a tail to copy.
#[allow(clippy::modulo_one)]
const fn past_poke_boundary(x: usize) -> usize {
    x % arch::POKE_ALIGN
}

/// Fills writable memory with `fill`: a memset for a repeated byte, whole
/// words otherwise (`EINVAL` unless `dst` and `len` are on whole words).
///
/// # Safety
///
/// `dst..dst + len` must be writable memory that nothing else accesses
/// meanwhile.
pub(super) unsafe fn fill_plain(dst: *mut u8, fill: Fill, len: usize) -> Result {
    if let Some(b) = fill.as_byte() {
        // SAFETY: the caller's contract.
        unsafe { core::ptr::write_bytes(dst, b, len) };
        return Ok(());
    }
    let w = core::mem::size_of::<u32>();
    if dst as usize % w != 0 || len % w != 0 {
        return Err(EINVAL);
    }
    let word = fill.as_word();
    for i in 0..len / w {
        // SAFETY: word `i` lies inside `dst..dst + len` (the caller's
        // writable range) and is aligned (checked above).
        unsafe { dst.cast::<u32>().add(i).write(word) };
    }
    Ok(())
}

/// Why [`Window::call`] refused to call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallRefused {
    /// The window is not mapped executable.
    NotExecutable,
    /// The entry does not start with [`LANDING_PAD`] (or its bytes run
    /// past the window).
    NoLandingPad,
    /// The entry is outside the window.
    OutOfRange,
}

impl CallRefused {
    /// The errno and the one-line reason.
    pub fn why(self) -> (Error, &'static str) {
        match self {
            CallRefused::NotExecutable => (EPERM, "not executable"),
            CallRefused::NoLandingPad => (EINVAL, arch::NO_LANDING_PAD),
            CallRefused::OutOfRange => (ERANGE, "entry outside the allocation"),
        }
    }
}

impl From<CallRefused> for Error {
    fn from(r: CallRefused) -> Error {
        r.why().0
    }
}
