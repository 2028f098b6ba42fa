// SPDX-License-Identifier: GPL-2.0

//! [`Buf`]: a growable byte buffer for what a debugfs file returns.

use core::fmt;
use kernel::prelude::*;

/// Bytes a read of a debugfs file returns, built with `write!`.
///
/// kvmalloc'ed: a reply grows with what a user made (`list` of a session's
/// IDs), beyond what kmalloc gives. Every allocation is fallible
/// (`GFP_KERNEL | __GFP_NOWARN`: the caller gets the `ENOMEM`, the log
/// nothing); a failed one makes the `write!` fail, which [`Buf::result`]
/// turns into `ENOMEM`.
pub struct Buf {
    buf: KVVec<u8>,
}

impl Buf {
    /// An empty buffer.
    pub fn new() -> Self {
        Buf { buf: KVVec::new() }
    }

    /// The bytes written so far.
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.as_slice()
    }

    /// Forgets the contents (6.12's `Vec` has no `clear`: drop the buffer).
    pub fn clear(&mut self) {
        self.buf = KVVec::new();
    }

    /// Makes room for `n` more bytes, so that writing up to that many
    /// later does not allocate (and cannot fail).
    pub fn reserve(&mut self, n: usize) -> Result {
        self.buf.reserve(n, GFP_KERNEL | __GFP_NOWARN)?;
        Ok(())
    }

    /// Appends raw bytes.
    pub fn push(&mut self, bytes: &[u8]) -> Result {
        self.buf
            .extend_from_slice(bytes, GFP_KERNEL | __GFP_NOWARN)?;
        Ok(())
    }

    /// Maps the outcome of a `write!` into this buffer to a kernel result.
    pub fn result(r: fmt::Result) -> Result {
        r.map_err(|_| ENOMEM)
    }
}

impl Default for Buf {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Write for Buf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.push(s.as_bytes()).map_err(|_| fmt::Error)
    }
}
