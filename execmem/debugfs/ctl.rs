// SPDX-License-Identifier: GPL-2.0

//! debugfs `ctl`: a command channel where each open file is a session.
//!
//! One command per write(2); the reply is returned by the next read(2) on
//! the same file descriptor. A failed command fails the write(2) with an
//! errno and its reply is `error: <reason>`. A command either succeeds
//! completely or changes nothing: everything a command needs (its reply
//! included) is allocated before it takes effect. Closing the file frees
//! every allocation of the session.
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
//! info ID                     -> type=.. size=.. align=.. pack=.. offset=.. mapping=2M|4K|mixed perms=r-x
//! probe ID                    -> pages=N mapping=2M|4K|mixed writable=0|1 executable=0|1
//! list                        -> the session's IDs
//! trim                        -> ok
//! ```
//!
//! Locking: the session's table of IDs has a mutex, held only to look an ID
//! up, insert or remove it; each allocation has its own mutex. `exec` holds
//! only the allocation's own lock while the code runs, so another command
//! of the session (even `free` of that ID, which then frees it when the
//! call returns) and every other session go on meanwhile.

use super::buf::Buf;
use super::parse::{fail, out_of_memory, parse_hex, parse_num, parse_usize, Words};
use crate::execmem::allocator::{Allocator, Any, Refusal, Requester};
use crate::execmem::backend::debugfs::{Failure, FileOps};
use crate::execmem::backend::security::code_loading_refused;
use crate::execmem::binpack::types::{ExecmemType, MAX_ALLOC};
use crate::execmem::params::SESSION_CAP;
use core::fmt::Write;
use kernel::{
    new_mutex,
    prelude::*,
    rbtree::{RBTree, RBTreeNodeReservation},
    sync::{Arc, Mutex},
};

/// Longest `read`, in bytes.
pub const MAX_READ: usize = 16384;
/// Room for a short reply (`ok`, an ID, a number, an `info` line).
const SHORT: usize = 160;

type Reply = core::result::Result<(), Failure>;

/// "Disk quota exceeded": the session's byte cap (6.12's `kernel::error`
/// has no constant for it).
fn edquot() -> Error {
    Error::from_errno(-(kernel::bindings::EDQUOT as i32))
}

/// Flags for the session's own bookkeeping, whose size a user chooses.
fn gfp() -> kernel::alloc::Flags {
    GFP_KERNEL | __GFP_NOWARN | __GFP_RETRY_MAYFAIL | __GFP_ACCOUNT
}

fn refused(r: Refusal) -> Failure {
    fail(r.err, r.reason)
}

/// One allocation of a session: its requested size and, under its own
/// lock, the handle (`None` only while `alloc` fills it in).
#[pin_data]
struct Slot {
    size: usize,
    #[pin]
    any: Mutex<Option<Any>>,
}

type Entry = Arc<Slot>;

/// The session's IDs.
///
/// # Invariants
///
/// `entries` holds the live allocations of this session, each under an ID
/// `< next_id`, no ID twice; `bytes` is the sum of their requested sizes.
struct Table {
    entries: RBTree<u64, Entry>,
    next_id: u64,
    bytes: usize,
}

/// One open `ctl` file.
pub struct Session {
    alloc: Arc<Allocator>,
    table: Pin<KBox<Mutex<Table>>>,
}

impl Session {
    /// The entry of ID word `w` (a new reference: the table lock is not
    /// held while the caller uses it).
    fn entry(&self, w: &[u8]) -> core::result::Result<Entry, Failure> {
        let id = parse_num(w)?;
        self.table
            .lock()
            .entries
            .get(&id)
            .cloned()
            .ok_or(fail(ENOENT, "unknown ID"))
    }

    fn cmd_alloc(&self, args: &mut Words<'_>, out: &mut Buf) -> Reply {
        const USAGE: &str = "usage: alloc TYPE SIZE [ALIGN]";
        let ty = args.arg(USAGE)?;
        let size = args.arg(USAGE)?;
        let align = args.next_word();
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
        let size = size as usize;
        // Everything that can fail for lack of memory first: after the
        // allocation, nothing fails.
        out.reserve(SHORT).map_err(out_of_memory)?;
        let node = RBTreeNodeReservation::new(gfp()).map_err(out_of_memory)?;
        let entry: Entry = Arc::pin_init(
            pin_init!(Slot {
                size,
                any <- new_mutex!(None),
            }),
            gfp(),
        )
        .map_err(out_of_memory)?;
        // The bytes are the session's from the check on, so that
        // concurrent allocations (pwrite() takes no position lock) cannot
        // all pass it; given back if the allocation fails.
        {
            let mut t = self.table.lock();
            let bytes = t.bytes.saturating_add(size);
            if bytes > SESSION_CAP.get() {
                return Err(fail(edquot(), "session cap reached (session_cap)"));
            }
            t.bytes = bytes;
        }
        let a = match self.alloc.alloc(ty, size, align, Requester::User) {
            Ok(a) => a,
            Err(r) => {
                let mut t = self.table.lock();
                t.bytes = t.bytes.saturating_sub(size);
                return Err(refused(r));
            }
        };
        *entry.any.lock() = Some(a);
        let mut t = self.table.lock();
        let id = t.next_id;
        t.next_id = t.next_id.wrapping_add(1);
        t.entries.insert(node.into_node(id, entry));
        drop(t);
        Buf::result(writeln!(out, "{id}")).map_err(out_of_memory)
    }

    fn cmd_free(&self, args: &mut Words<'_>, out: &mut Buf) -> Reply {
        const USAGE: &str = "usage: free ID";
        let id = parse_num(args.arg(USAGE)?)?;
        args.end(USAGE)?;
        out.reserve(SHORT).map_err(out_of_memory)?;
        let entry = {
            let mut t = self.table.lock();
            let e = t.entries.remove(&id).ok_or(fail(ENOENT, "unknown ID"))?;
            t.bytes = t.bytes.saturating_sub(e.size);
            e
        };
        // Dropping the last reference frees the allocation (after a running
        // `exec` of it returns, if one holds another).
        drop(entry);
        out.push(b"ok\n").map_err(out_of_memory)
    }

    fn cmd_write(&self, args: &mut Words<'_>, out: &mut Buf) -> Reply {
        const USAGE: &str = "usage: write ID OFFSET HEXBYTES";
        let (id, off, hex) = (args.arg(USAGE)?, args.arg(USAGE)?, args.arg(USAGE)?);
        args.end(USAGE)?;
        let off = parse_usize(off)?;
        let bytes = parse_hex(hex, gfp())?;
        out.reserve(SHORT).map_err(out_of_memory)?;
        let entry = self.entry(id)?;
        let mut a = entry.any.lock();
        let a = a.as_mut().ok_or(fail(ENOENT, "unknown ID"))?;
        a.write(off, bytes.as_slice()).map_err(refused)?;
        out.push(b"ok\n").map_err(out_of_memory)
    }

    fn cmd_fill(&self, args: &mut Words<'_>, out: &mut Buf) -> Reply {
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
        out.reserve(SHORT).map_err(out_of_memory)?;
        let entry = self.entry(id)?;
        let mut a = entry.any.lock();
        let a = a.as_mut().ok_or(fail(ENOENT, "unknown ID"))?;
        a.fill(off, byte, len).map_err(refused)?;
        out.push(b"ok\n").map_err(out_of_memory)
    }

    fn cmd_read(&self, args: &mut Words<'_>, out: &mut Buf) -> Reply {
        const USAGE: &str = "usage: read ID OFFSET LEN";
        let (id, off, len) = (args.arg(USAGE)?, args.arg(USAGE)?, args.arg(USAGE)?);
        args.end(USAGE)?;
        let (off, len) = (parse_usize(off)?, parse_usize(len)?);
        if len > MAX_READ {
            return Err(fail(E2BIG, "read above 16384 bytes"));
        }
        let mut buf = KVec::from_elem(0u8, len, gfp()).map_err(out_of_memory)?;
        out.reserve(2 * len + 1).map_err(out_of_memory)?;
        let entry = self.entry(id)?;
        let a = entry.any.lock();
        let a = a.as_ref().ok_or(fail(ENOENT, "unknown ID"))?;
        a.read(off, buf.as_mut_slice()).map_err(refused)?;
        for b in buf.as_slice() {
            Buf::result(write!(out, "{b:02x}")).map_err(out_of_memory)?;
        }
        out.push(b"\n").map_err(out_of_memory)
    }

    fn cmd_seal(&self, args: &mut Words<'_>, out: &mut Buf) -> Reply {
        const USAGE: &str = "usage: seal ID";
        let id = args.arg(USAGE)?;
        args.end(USAGE)?;
        out.reserve(SHORT).map_err(out_of_memory)?;
        let entry = self.entry(id)?;
        let mut slot = entry.any.lock();
        match slot.take() {
            Some(Any::ReadOnly(r)) => *slot = Some(Any::Sealed(r.seal())),
            Some(Any::Sealed(s)) => {
                *slot = Some(Any::Sealed(s));
                return Err(fail(EPERM, "already sealed"));
            }
            other => {
                *slot = other;
                return Err(fail(EPERM, "only rodata and ro_after_init can be sealed"));
            }
        }
        out.push(b"ok\n").map_err(out_of_memory)
    }

    fn cmd_exec(&self, args: &mut Words<'_>, out: &mut Buf) -> Reply {
        const USAGE: &str = "usage: exec ID OFFSET";
        let (id, off) = (args.arg(USAGE)?, args.arg(USAGE)?);
        args.end(USAGE)?;
        let off = parse_usize(off)?;
        if let Some(reason) = code_loading_refused() {
            return Err(fail(EPERM, reason));
        }
        out.reserve(SHORT).map_err(out_of_memory)?;
        let entry = self.entry(id)?;
        // Only this allocation's lock is held while its code runs: it cannot
        // be written, refilled or freed meanwhile.
        let a = entry.any.lock();
        let Some(Any::Code(code)) = a.as_ref() else {
            return Err(fail(EPERM, "exec of a non-executable type"));
        };
        // SAFETY: the caller has what loading a module takes (checked just
        // above: CAP_SYS_MODULE, module loading enabled, no signature
        // enforcement, no integrity lockdown), and asks to run bytes it
        // wrote, which is no more than loading a module. The ABI says the
        // code must be a complete function; `call` refuses an entry without
        // the architecture's landing pad.
        let rax = unsafe { code.call(off) }.map_err(refused)?;
        Buf::result(writeln!(out, "{rax}")).map_err(out_of_memory)
    }

    fn cmd_info(&self, args: &mut Words<'_>, out: &mut Buf) -> Reply {
        const USAGE: &str = "usage: info ID";
        let id = args.arg(USAGE)?;
        args.end(USAGE)?;
        out.reserve(SHORT).map_err(out_of_memory)?;
        let entry = self.entry(id)?;
        let a = entry.any.lock();
        let a = a.as_ref().ok_or(fail(ENOENT, "unknown ID"))?;
        let m = a.common().probe().map_err(refused)?;
        let c = a.common();
        let perms = if a.is_sealed() {
            "r--"
        } else {
            c.ty().class().perms()
        };
        Buf::result(writeln!(
            out,
            "type={} size={} align={} pack={} offset={} mapping={} perms={}",
            c.ty().name(),
            c.size(),
            c.align(),
            c.pack(),
            c.offset(),
            m.name(),
            perms
        ))
        .map_err(out_of_memory)
    }

    fn cmd_probe(&self, args: &mut Words<'_>, out: &mut Buf) -> Reply {
        const USAGE: &str = "usage: probe ID";
        let id = args.arg(USAGE)?;
        args.end(USAGE)?;
        out.reserve(SHORT).map_err(out_of_memory)?;
        let entry = self.entry(id)?;
        let a = entry.any.lock();
        let m = a
            .as_ref()
            .ok_or(fail(ENOENT, "unknown ID"))?
            .common()
            .probe()
            .map_err(refused)?;
        Buf::result(writeln!(
            out,
            "pages={} mapping={} writable={} executable={}",
            m.pages,
            m.name(),
            u8::from(m.writable),
            u8::from(m.executable)
        ))
        .map_err(out_of_memory)
    }

    fn cmd_list(&self, args: &mut Words<'_>, out: &mut Buf) -> Reply {
        args.end("usage: list")?;
        let t = self.table.lock();
        // At most 20 digits and a separator per ID.
        out.reserve(
            t.entries
                .iter()
                .count()
                .saturating_mul(21)
                .saturating_add(1),
        )
        .map_err(out_of_memory)?;
        let mut sep = "";
        for id in t.entries.keys() {
            Buf::result(write!(out, "{sep}{id}")).map_err(out_of_memory)?;
            sep = " ";
        }
        out.push(b"\n").map_err(out_of_memory)
    }

    fn cmd_trim(&self, args: &mut Words<'_>, out: &mut Buf) -> Reply {
        args.end("usage: trim")?;
        out.reserve(SHORT).map_err(out_of_memory)?;
        self.alloc.trim();
        out.push(b"ok\n").map_err(out_of_memory)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Free the session's allocations, then refill what they parked:
        // after close, none of the session's code stays executable. They
        // are dropped with the table's lock released (a drop may refill).
        let entries = core::mem::replace(&mut self.table.lock().entries, RBTree::new());
        drop(entries);
        self.alloc.flush();
    }
}

impl FileOps for Session {
    type Shared = Allocator;
    const WRITABLE: bool = true;

    fn open(shared: &Arc<Allocator>) -> Result<Self> {
        let table = KBox::pin_init(
            new_mutex!(Table {
                entries: RBTree::new(),
                next_id: 1,
                bytes: 0,
            }),
            GFP_KERNEL,
        )?;
        Ok(Session {
            alloc: shared.clone(),
            table,
        })
    }

    fn command(&self, input: &[u8], out: &mut Buf) -> Reply {
        // One command per write(2): one line, an optional final newline.
        let line = input.strip_suffix(b"\n").unwrap_or(input);
        if line.iter().any(|&c| c == b'\n' || c == 0) {
            return Err(fail(EINVAL, "one command per write, no NUL bytes"));
        }
        let mut args = Words::new(line);
        let Some(cmd) = args.next_word() else {
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
            b"trim" => self.cmd_trim(&mut args, out),
            _ => Err(fail(EINVAL, "unknown command")),
        }
    }
}
