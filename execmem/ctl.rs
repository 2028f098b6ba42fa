// SPDX-License-Identifier: GPL-2.0

//! debugfs `ctl`: a command channel where each open file is a session.
//!
//! One command per write(2); the reply is returned by the next read(2) on
//! the same file descriptor, then EOF until the next command. A failed
//! command fails the write(2) with an errno and its reply is
//! `error: <reason>`. A command either succeeds completely or changes
//! nothing. Closing the file frees every allocation of the session.
//!
//! Commands (numbers are decimal or `0x` hex; IDs are per session):
//!
//! ```text
//! alloc TYPE SIZE [ALIGN]     -> ID
//! free ID                     -> ok
//! write ID OFFSET HEXBYTES    -> ok
//! fill ID OFFSET LEN BYTE     -> ok
//! read ID OFFSET LEN          -> hex bytes
//! seal ID                     -> ok
//! exec ID OFFSET              -> rax, decimal
//! info ID                     -> type=.. size=.. align=.. pack=.. offset=.. mapping=2M|4K perms=r-x
//! probe ID                    -> pages=N mapping=2M|4K|mixed writable=0|1 executable=0|1
//! list                        -> the session's IDs
//! ```

use crate::execmem::allocator::{Allocator, Any};
use crate::execmem::backend::debugfs::{Failure, FileOps};
use crate::execmem::core_engine::types::{ExecmemType, MAX_ALLOC};
use crate::execmem::text::Text;
use core::fmt::Write;
use kernel::{prelude::*, sync::Arc};

/// Longest `write` payload, in bytes (the hex string is twice as long).
pub const MAX_PAYLOAD: usize = 16384;
/// Longest `read`, in bytes.
pub const MAX_READ: usize = 16384;

type Reply = core::result::Result<(), Failure>;

fn fail(err: Error, reason: &'static str) -> Failure {
    Failure::new(err, reason)
}

/// The whitespace-separated words of one command line.
struct Words<'a> {
    rest: &'a [u8],
}

impl<'a> Words<'a> {
    fn next(&mut self) -> Option<&'a [u8]> {
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
    fn arg(&mut self, usage: &'static str) -> core::result::Result<&'a [u8], Failure> {
        self.next().ok_or(fail(EINVAL, usage))
    }

    /// Fails unless every word was consumed.
    fn end(&mut self, usage: &'static str) -> Reply {
        match self.next() {
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
            .ok_or(fail(EINVAL, "bad number"))?;
    }
    Ok(v)
}

fn parse_usize(w: &[u8]) -> core::result::Result<usize, Failure> {
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

/// Decodes `HEXBYTES` into `out`.
fn parse_hex(w: &[u8], out: &mut KVec<u8>) -> Reply {
    if w.len() % 2 != 0 {
        return Err(fail(EINVAL, "odd number of hex digits"));
    }
    if w.len() / 2 > MAX_PAYLOAD {
        return Err(fail(E2BIG, "payload above 16384 bytes"));
    }
    out.reserve(w.len() / 2, GFP_KERNEL)
        .map_err(|_| fail(ENOMEM, "out of memory"))?;
    for pair in w.chunks_exact(2) {
        let (Some(&hi), Some(&lo)) = (pair.first(), pair.get(1)) else {
            return Err(fail(EINVAL, "bad hex byte"));
        };
        let (Some(hi), Some(lo)) = (hex_val(hi), hex_val(lo)) else {
            return Err(fail(EINVAL, "bad hex byte"));
        };
        out.push((hi << 4) | lo, GFP_KERNEL)
            .map_err(|_| fail(ENOMEM, "out of memory"))?;
    }
    Ok(())
}

fn errno_reason(e: Error) -> Failure {
    let reason = if e == ERANGE {
        "offset/length outside the allocation"
    } else if e == EPERM {
        "not permitted for this allocation"
    } else if e == ENOMEM {
        "out of memory"
    } else if e == E2BIG {
        "size above the 64 MiB limit"
    } else if e == EINVAL {
        "invalid size or alignment"
    } else if e == ENOENT {
        "unknown ID"
    } else {
        "internal error"
    };
    fail(e, reason)
}

/// The `ENOMEM` failure, for `map_err` on any allocation error.
pub fn out_of_memory<T>(_: T) -> Failure {
    fail(ENOMEM, "out of memory")
}

/// One open `ctl` file.
///
/// # Invariants
///
/// `entries` holds the live allocations of this session, each under an ID
/// `< next_id`, no ID twice.
pub struct Session {
    alloc: Arc<Allocator>,
    next_id: u64,
    entries: KVec<Option<(u64, Any)>>,
}

impl Session {
    fn slot(&mut self, w: &[u8]) -> core::result::Result<&mut Option<(u64, Any)>, Failure> {
        let id = parse_num(w)?;
        self.entries
            .as_mut_slice()
            .iter_mut()
            .find(|e| matches!(e, Some((i, _)) if *i == id))
            .ok_or(fail(ENOENT, "unknown ID"))
    }

    fn get(&mut self, w: &[u8]) -> core::result::Result<&mut Any, Failure> {
        match self.slot(w)? {
            Some((_, a)) => Ok(a),
            None => Err(fail(ENOENT, "unknown ID")),
        }
    }

    fn cmd_alloc(&mut self, args: &mut Words<'_>, out: &mut Text) -> Reply {
        const USAGE: &str = "usage: alloc TYPE SIZE [ALIGN]";
        let ty = args.arg(USAGE)?;
        let size = args.arg(USAGE)?;
        let align = args.next();
        args.end(USAGE)?;
        let ty = ExecmemType::from_name(ty).ok_or(fail(EINVAL, "unknown type"))?;
        let size = parse_num(size)?;
        let align = align.map(parse_usize).transpose()?;
        if size == 0 {
            return Err(fail(EINVAL, "size 0"));
        }
        if size > MAX_ALLOC as u64 {
            return Err(fail(E2BIG, "size above the 64 MiB limit"));
        }
        if align.is_some_and(|a| !a.is_power_of_two()) {
            return Err(fail(EINVAL, "alignment not a power of two"));
        }
        // Make room for the entry first: after the allocation nothing fails.
        let slot = match self.entries.as_slice().iter().position(|e| e.is_none()) {
            Some(i) => i,
            None => {
                self.entries.push(None, GFP_KERNEL).map_err(out_of_memory)?;
                self.entries.len() - 1
            }
        };
        let a = self
            .alloc
            .alloc(ty, size as usize, align)
            .map_err(errno_reason)?;
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        if let Some(e) = self.entries.as_mut_slice().get_mut(slot) {
            *e = Some((id, a));
        }
        Text::result(writeln!(out, "{id}")).map_err(out_of_memory)
    }

    fn cmd_free(&mut self, args: &mut Words<'_>, out: &mut Text) -> Reply {
        const USAGE: &str = "usage: free ID";
        let id = args.arg(USAGE)?;
        args.end(USAGE)?;
        let slot = self.slot(id)?;
        // Dropping the handle refills the range and frees it.
        drop(slot.take());
        out.push(b"ok\n").map_err(out_of_memory)
    }

    fn cmd_write(&mut self, args: &mut Words<'_>, out: &mut Text) -> Reply {
        const USAGE: &str = "usage: write ID OFFSET HEXBYTES";
        let (id, off, hex) = (args.arg(USAGE)?, args.arg(USAGE)?, args.arg(USAGE)?);
        args.end(USAGE)?;
        let off = parse_usize(off)?;
        let mut bytes = KVec::new();
        parse_hex(hex, &mut bytes)?;
        let a = self.get(id)?;
        if a.is_sealed() {
            return Err(fail(EPERM, "write after seal"));
        }
        a.write(off, bytes.as_slice()).map_err(errno_reason)?;
        out.push(b"ok\n").map_err(out_of_memory)
    }

    fn cmd_fill(&mut self, args: &mut Words<'_>, out: &mut Text) -> Reply {
        const USAGE: &str = "usage: fill ID OFFSET LEN BYTE";
        let (id, off, len, byte) = (
            args.arg(USAGE)?,
            args.arg(USAGE)?,
            args.arg(USAGE)?,
            args.arg(USAGE)?,
        );
        args.end(USAGE)?;
        let (off, len) = (parse_usize(off)?, parse_usize(len)?);
        let byte = u8::try_from(parse_num(byte)?).map_err(|_| fail(EINVAL, "byte above 255"))?;
        let a = self.get(id)?;
        if a.is_sealed() {
            return Err(fail(EPERM, "write after seal"));
        }
        a.fill(off, byte, len).map_err(errno_reason)?;
        out.push(b"ok\n").map_err(out_of_memory)
    }

    fn cmd_read(&mut self, args: &mut Words<'_>, out: &mut Text) -> Reply {
        const USAGE: &str = "usage: read ID OFFSET LEN";
        let (id, off, len) = (args.arg(USAGE)?, args.arg(USAGE)?, args.arg(USAGE)?);
        args.end(USAGE)?;
        let (off, len) = (parse_usize(off)?, parse_usize(len)?);
        if len > MAX_READ {
            return Err(fail(E2BIG, "read above 16384 bytes"));
        }
        let a = self.get(id)?;
        let mut buf = KVec::from_elem(0u8, len, GFP_KERNEL).map_err(out_of_memory)?;
        a.read(off, buf.as_mut_slice()).map_err(errno_reason)?;
        for b in buf.as_slice() {
            Text::result(write!(out, "{b:02x}")).map_err(out_of_memory)?;
        }
        out.push(b"\n").map_err(out_of_memory)
    }

    fn cmd_seal(&mut self, args: &mut Words<'_>, out: &mut Text) -> Reply {
        const USAGE: &str = "usage: seal ID";
        let id = args.arg(USAGE)?;
        args.end(USAGE)?;
        let slot = self.slot(id)?;
        match slot.take() {
            Some((id, Any::ReadOnly(r))) => *slot = Some((id, Any::Sealed(r.seal()))),
            Some((id, Any::Sealed(s))) => {
                *slot = Some((id, Any::Sealed(s)));
                return Err(fail(EPERM, "already sealed"));
            }
            other => {
                *slot = other;
                return Err(fail(EPERM, "only rodata and ro_after_init can be sealed"));
            }
        }
        out.push(b"ok\n").map_err(out_of_memory)
    }

    fn cmd_exec(&mut self, args: &mut Words<'_>, out: &mut Text) -> Reply {
        const USAGE: &str = "usage: exec ID OFFSET";
        let (id, off) = (args.arg(USAGE)?, args.arg(USAGE)?);
        args.end(USAGE)?;
        let off = parse_usize(off)?;
        let Any::Code(code) = self.get(id)? else {
            return Err(fail(EPERM, "exec of a non-executable type"));
        };
        // SAFETY: this is the root-only test interface (the directory is
        // 0700, `ctl` 0600): root asks to run bytes root wrote, which is no
        // more than loading a module. The ABI documentation says the code
        // must be a complete function (ENDBR64 ... ret).
        let rax = unsafe { code.call(off) }.map_err(errno_reason)?;
        Text::result(writeln!(out, "{rax}")).map_err(out_of_memory)
    }

    fn cmd_info(&mut self, args: &mut Words<'_>, out: &mut Text) -> Reply {
        const USAGE: &str = "usage: info ID";
        let id = args.arg(USAGE)?;
        args.end(USAGE)?;
        let a = self.get(id)?;
        let m = a.common().probe().map_err(errno_reason)?;
        let c = a.common();
        let perms = if a.is_sealed() {
            "r--"
        } else {
            c.ty().class().perms()
        };
        Text::result(writeln!(
            out,
            "type={} size={} align={} pack={} offset={} mapping={} perms={}",
            c.ty().name(),
            c.size(),
            c.align(),
            c.pack(),
            c.offset(),
            if m.huge_pages == m.pages { "2M" } else { "4K" },
            perms
        ))
        .map_err(out_of_memory)
    }

    fn cmd_probe(&mut self, args: &mut Words<'_>, out: &mut Text) -> Reply {
        const USAGE: &str = "usage: probe ID";
        let id = args.arg(USAGE)?;
        args.end(USAGE)?;
        let m = self.get(id)?.common().probe().map_err(errno_reason)?;
        let mapping = match m.huge_pages {
            n if n == m.pages => "2M",
            0 => "4K",
            _ => "mixed",
        };
        Text::result(writeln!(
            out,
            "pages={} mapping={} writable={} executable={}",
            m.pages,
            mapping,
            u8::from(m.writable),
            u8::from(m.executable)
        ))
        .map_err(out_of_memory)
    }

    fn cmd_list(&mut self, args: &mut Words<'_>, out: &mut Text) -> Reply {
        args.end("usage: list")?;
        let mut sep = "";
        for (id, _) in self.entries.as_slice().iter().flatten() {
            Text::result(write!(out, "{sep}{id}")).map_err(out_of_memory)?;
            sep = " ";
        }
        out.push(b"\n").map_err(out_of_memory)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Free the session's allocations, then refill what they parked:
        // after close, none of the session's code stays executable.
        self.entries = KVec::new();
        self.alloc.flush();
    }
}

impl FileOps for Session {
    type Shared = Allocator;

    fn open(shared: &Arc<Allocator>) -> Result<Self> {
        Ok(Session {
            alloc: shared.clone(),
            next_id: 1,
            entries: KVec::new(),
        })
    }

    fn command(&mut self, input: &[u8], out: &mut Text) -> Reply {
        // One command per write(2): one line, an optional final newline.
        let line = input.strip_suffix(b"\n").unwrap_or(input);
        if line.iter().any(|&c| c == b'\n' || c == 0) {
            return Err(fail(EINVAL, "one command per write, no NUL bytes"));
        }
        let mut args = Words { rest: line };
        let Some(cmd) = args.next() else {
            return Err(fail(EINVAL, "empty command"));
        };
        match cmd {
            b"alloc" => self.cmd_alloc(&mut args, out),
            b"free" => self.cmd_free(&mut args, out),
            b"write" => self.cmd_write(&mut args, out),
            b"fill" => self.cmd_fill(&mut args, out),
            b"read" => self.cmd_read(&mut args, out),
            b"seal" => self.cmd_seal(&mut args, out),
            b"exec" => self.cmd_exec(&mut args, out),
            b"info" => self.cmd_info(&mut args, out),
            b"probe" => self.cmd_probe(&mut args, out),
            b"list" => self.cmd_list(&mut args, out),
            _ => Err(fail(EINVAL, "unknown command")),
        }
    }
}
