// SPDX-License-Identifier: GPL-2.0

//! The parser of debugfs commands: words, numbers, hex bytes, and the
//! failures (errno and a one-line reason) they end in. Used by `ctl` and by
//! the test harness's `stress` and `bench` files.

use crate::execmem::backend::debugfs::Failure;
use kernel::{alloc::Flags, prelude::*};

/// Longest `write` payload, in bytes (the hex string is twice as long).
pub const MAX_PAYLOAD: usize = 16384;

type Reply = core::result::Result<(), Failure>;

/// A failure with its errno and one-line reason.
pub fn fail(err: Error, reason: &'static str) -> Failure {
    Failure::new(err, reason)
}

/// The `ENOMEM` failure, for `map_err` on any allocation error.
pub fn out_of_memory<T>(_: T) -> Failure {
    fail(ENOMEM, "out of memory")
}

/// The whitespace-separated words of one command line.
pub struct Words<'a> {
    rest: &'a [u8],
}

impl<'a> Words<'a> {
    /// The words of `line`.
    pub fn new(line: &'a [u8]) -> Self {
        Words { rest: line }
    }

    /// The next word, if any.
    pub fn next_word(&mut self) -> Option<&'a [u8]> {
        let start = self.rest.iter().position(|c| !c.is_ascii_whitespace())?;
        let rest = self.rest.get(start..)?;
        let len = rest
            .iter()
            .position(|c| c.is_ascii_whitespace())
            .unwrap_or(rest.len());
        let (word, tail) = rest.split_at(len);
        self.rest = tail;
        Some(word)
    }

    /// The next word, which must be there.
    pub fn arg(&mut self, usage: &'static str) -> core::result::Result<&'a [u8], Failure> {
        self.next_word().ok_or(fail(EINVAL, usage))
    }

    /// Fails unless every word was consumed.
    pub fn end(&mut self, usage: &'static str) -> Reply {
        match self.next_word() {
            None => Ok(()),
            Some(_) => Err(fail(EINVAL, usage)),
        }
    }
}

/// Parses a decimal or `0x`-hex number; anything else, including a sign or
/// a value above `u64::MAX`, is `EINVAL`.
pub fn parse_num(w: &[u8]) -> core::result::Result<u64, Failure> {
    let bad = fail(EINVAL, "bad number");
    let (digits, radix) = match w {
        [b'0', b'x' | b'X', rest @ ..] => (rest, 16u64),
        _ => (w, 10u64),
    };
    if digits.is_empty() {
        return Err(bad);
    }
    let mut v: u64 = 0;
    for &c in digits {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' if radix == 16 => c - b'a' + 10,
            b'A'..=b'F' if radix == 16 => c - b'A' + 10,
            _ => return Err(bad),
        };
        v = v
            .checked_mul(radix)
            .and_then(|v| v.checked_add(u64::from(d)))
            .ok_or(bad)?;
    }
    Ok(v)
}

/// [`parse_num`], as a `usize`.
pub fn parse_usize(w: &[u8]) -> core::result::Result<usize, Failure> {
    usize::try_from(parse_num(w)?).map_err(|_| fail(EINVAL, "bad number"))
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Decodes `HEXBYTES`, at most [`MAX_PAYLOAD`] bytes, into a buffer
/// allocated with `gfp`.
pub fn parse_hex(w: &[u8], gfp: Flags) -> core::result::Result<KVec<u8>, Failure> {
    if w.len() % 2 != 0 {
        return Err(fail(EINVAL, "odd number of hex digits"));
    }
    if w.len() / 2 > MAX_PAYLOAD {
        return Err(fail(E2BIG, "payload above 16384 bytes"));
    }
    let mut out = KVec::with_capacity(w.len() / 2, gfp).map_err(out_of_memory)?;
    for pair in w.chunks_exact(2) {
        let (Some(&hi), Some(&lo)) = (pair.first(), pair.get(1)) else {
            return Err(fail(EINVAL, "bad hex byte"));
        };
        let (Some(hi), Some(lo)) = (hex_val(hi), hex_val(lo)) else {
            return Err(fail(EINVAL, "bad hex byte"));
        };
        // Within the capacity reserved above: does not allocate.
        out.push((hi << 4) | lo, gfp).map_err(out_of_memory)?;
    }
    Ok(out)
}
