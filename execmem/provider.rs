// SPDX-License-Identifier: GPL-2.0

//! The kernel's own users of executable memory, served by execmem_rs.
//!
//! With the test kernel's patches 0005-0007, the callers that write their
//! executable memory only with `text_poke*()` ask a registered provider
//! first: the BPF JIT (`bpf_prog_pack_alloc()`, for programs, trampolines
//! and the dispatcher: type `bpf`) and x86 kprobes (`alloc_insn_page()`,
//! one page of instruction slots: type `kprobes`). Served, they take
//! read-only, executable, trap-filled memory from the rx class's 2 MiB
//! packs, shared with module text, and give it back by address
//! ([`crate::execmem::backend::provider`] is the C side).
//!
//! What the kernel gets is an ordinary [`Code`] allocation, turned into a
//! [`KernelCode`] (which we can only free) and kept here, keyed by its
//! address. The kernel writes it with `text_poke` itself, so
//! the whole block counts as written, and its free refills all of it with
//! one `text_poke_set()` before the block goes back to the allocator. For
//! BPF that is on the freeing thread, as the stock `bpf_prog_pack_free()`
//! invalidates at once: when the kernel's free returns, the image is
//! trap-filled (or unmapped, if the free emptied its pack or extent),
//! whatever the refill worker's queue holds. For kprobes it is in this
//! provider's work item (below): between the kernel's free and that item's
//! run, the freed page keeps its old slots, read-only and executable (the
//! stock `free_insn_page()` unmaps at once), and stays allocated here,
//! so nothing else is placed on it. A fill costs what the
//! stock path's costs (the same `text_poke_set()` over the same bytes:
//! 744 ms for a 617 KB `test_bpf` image under TCG). While any such
//! allocation is live the kernel holds a reference on this module (one per
//! allocation: the hook, patch 0005, takes it for each allocation we make
//! and drops it when our free returns true), so `rmmod` is refused ("in
//! use") rather than pulling memory from under the JIT. A kprobes page
//! freed but not yet released by the work item pins nothing: module exit
//! cancels a queued work item or waits for a running one (`Work`'s drop),
//! then the book's drop releases what is left. `serve` (the module
//! parameter, written in sysfs or through the debugfs file) set to `none`
//! stops new allocations at once and leaves the live ones valid until the
//! kernel frees them. A failed allocation returns NULL, and the kernel uses
//! its stock path.
//!
//! Contexts: every allocation and free comes from process context, but
//! not always a free one. BPF programs are freed from a kworker after an
//! RCU grace period (`bpf_prog_free_deferred()`), trampolines from a
//! kworker (`__bpf_tramp_image_put_deferred()`) or under the trampoline's
//! mutex; kprobes allocates its pages with `text_mutex` held
//! (`register_kprobe()` -> `prepare_kprobe()`, kernel/kprobes.c:1677; for
//! aggregated and optimized probes also `jump_label_mutex`) and frees them
//! with `text_mutex` held too (`kprobe_optimizer()` ->
//! `do_free_cleaned_kprobes()`, kernel/kprobes.c:613) or not
//! (`unregister_kprobes()`). `text_poke*()`
//! takes `text_mutex`, so nothing on the kprobes paths may poke: an
//! allocation for the kernel never refills parked ranges on its own thread
//! (it grows the class or fails, and the kernel falls back to its stock
//! path), and a kprobes free only moves the allocation to a list that this
//! provider's work item refills and releases, in a kworker that holds no
//! lock of the kernel's. A BPF free refills on its own thread: every
//! caller of `bpf_prog_pack_free()` already allows the `text_poke_set()`
//! the stock path makes there. All of it takes only our own mutexes, which
//! no path of ours holds across a poke.
//!
//! Two allocations the kernel never frees: kprobes' last page of each
//! instruction cache (`collect_one_slot()` frees a page only if it is not
//! its cache's only one) and the XDP dispatcher's image (allocated on the
//! first XDP program attached, kept for ever). Once either comes from
//! here, the module stays pinned until reboot, `serve` or not.

use crate::execmem::allocator::{Allocator, Code, KernelCode, Requester};
use crate::execmem::backend::debugfs::{Failure, FileOps};
use crate::execmem::backend::mem::PAGE_SIZE;
use crate::execmem::backend::param::Flags;
use crate::execmem::backend::provider::{Consumer, Serve};
use crate::execmem::backend::sched::{cond_resched, now_ns};
use crate::execmem::backend::storage::KernelStorage;
use crate::execmem::backend::work::{HasWork, Work};
use crate::execmem::binpack::{
    addrmap::AddrMap,
    types::{arch, ExecmemType},
};
use crate::execmem::debugfs::buf::Buf;
use core::fmt::Write;
use core::sync::atomic::{AtomicU64, Ordering};
use kernel::{
    new_mutex,
    prelude::*,
    rbtree::{RBTree, RBTreeNodeReservation},
    sync::{Arc, Mutex},
};

/// `serve`'s bit for the BPF JIT.
pub const SERVE_BPF: u32 = 1;
/// `serve`'s bit for kprobes.
pub const SERVE_KPROBES: u32 = 2;

/// The consumers' names in `serve`, with their bits, in the order it lists
/// them.
pub static SERVE_NAMES: [(&str, u32); 2] = [("bpf", SERVE_BPF), ("kprobes", SERVE_KPROBES)];

fn bit(who: Consumer) -> u32 {
    match who {
        Consumer::Bpf => SERVE_BPF,
        Consumer::Kprobes => SERVE_KPROBES,
    }
}

/// Counters of one consumer.
#[derive(Default)]
struct Counts {
    allocs: AtomicU64,
    frees: AtomicU64,
    live: AtomicU64,
    live_bytes: AtomicU64,
    failures: AtomicU64,
    /// Longest time from the kernel's free to the refill and release, in
    /// ns (on the freeing thread for BPF, in a kworker for kprobes).
    release_max_ns: AtomicU64,
}

/// One live allocation of the kernel's.
struct Held {
    code: KernelCode,
    who: Consumer,
    /// When the kernel freed it (`ktime_get()` ns), 0 while live.
    freed_at: u64,
}

/// What the kernel holds, and what it gave back.
struct Book {
    /// The JIT's live allocations, by address: one per live program,
    /// inserted on the program load's path, so a map that allocates only
    /// when it grows or shrinks.
    bpf: AddrMap<Held, KernelStorage>,
    /// kprobes' live pages, by address (one per 256 instruction slots).
    kprobes: RBTree<usize, Held>,
    /// Freed by kprobes, to be released by [`Provider::run`]: the node
    /// moves here from `kprobes`, so a free allocates nothing.
    freed: RBTree<usize, Held>,
}

/// Serves the kernel's requests from an allocator.
#[pin_data]
pub struct Provider {
    // First: a running release is waited for before anything else drops.
    #[pin]
    release: Work<Provider>,
    alloc: Arc<Allocator>,
    /// Which consumers are served: the module parameter `serve`, or a
    /// probe's own.
    serve: &'static Flags,
    #[pin]
    book: Mutex<Book>,
    bpf: Counts,
    kprobes: Counts,
}

impl Provider {
    /// A provider over `alloc`, serving the consumers `serve` says, whenever
    /// it says them.
    pub fn new(alloc: &Arc<Allocator>, serve: &'static Flags) -> Result<Arc<Self>> {
        Arc::pin_init(
            pin_init!(Provider {
                release <- Work::new(),
                alloc: alloc.clone(),
                serve,
                book <- new_mutex!(Book {
                    bpf: AddrMap::new(),
                    kprobes: RBTree::new(),
                    freed: RBTree::new(),
                }),
                bpf: Counts::default(),
                kprobes: Counts::default(),
            }),
            GFP_KERNEL,
        )
    }

    fn counts(&self, who: Consumer) -> &Counts {
        match who {
            Consumer::Bpf => &self.bpf,
            Consumer::Kprobes => &self.kprobes,
        }
    }

    /// Live allocations the kernel holds.
    pub fn live(&self) -> u64 {
        self.bpf.live.load(Ordering::Relaxed) + self.kprobes.live.load(Ordering::Relaxed)
    }
}

// Every placement is aligned to at least a granule: BPF's 64-byte chunk.
const _: () = assert!(arch::GRANULE % 64 == 0);

// SAFETY: `alloc` returns the address of a `Code` allocation of an rx
// class (read-only, executable, trap-filled while unwritten: the
// allocator's invariant), of at least `size` bytes, aligned to a granule
// (64 bytes, asserted above) or, for kprobes, to a page, and kept in the
// book so that nothing else is placed on it until it is released. `free`
// returns true only when it removed the address from the book, where only
// `alloc` put it, once: a second free of it finds nothing.
unsafe impl Serve for Provider {
    fn alloc(&self, who: Consumer, size: usize) -> Option<usize> {
        if self.serve.get() & bit(who) == 0 {
            return None;
        }
        let c = self.counts(who);
        let held = match who {
            Consumer::Bpf => self.alloc_bpf(size),
            Consumer::Kprobes => self.alloc_kprobes(size),
        };
        let Some(addr) = held else {
            c.failures.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        c.allocs.fetch_add(1, Ordering::Relaxed);
        c.live.fetch_add(1, Ordering::Relaxed);
        c.live_bytes.fetch_add(size as u64, Ordering::Relaxed);
        Some(addr)
    }

    fn free(&self, addr: usize) -> bool {
        let mut book = self.book.lock();
        if let Some(mut held) = book.bpf.remove(addr) {
            drop(book);
            held.freed_at = now_ns();
            self.bpf.frees.fetch_add(1, Ordering::Relaxed);
            // Refilled (one text_poke_set(), as bpf_prog_pack_free() does)
            // and released here: no BPF caller holds text_mutex.
            self.release(held);
            return true;
        }
        let Some(h) = book.kprobes.get_mut(&addr) else {
            return false;
        };
        h.freed_at = now_ns();
        self.kprobes.frees.fetch_add(1, Ordering::Relaxed);
        // No allocation: the node moves from one tree to the other.
        let dup = book
            .kprobes
            .remove_node(&addr)
            .and_then(|n| book.freed.insert(n));
        drop(book);
        // Never one (the address is still allocated until released), but
        // not dropped under the lock if it were.
        drop(dup);
        // Released (and refilled) by the work item, not here: the caller
        // holds text_mutex (module doc).
        Work::queue(self, self.alloc.queue());
        true
    }
}

impl Provider {
    /// Allocates code of `ty` for the kernel; `None` if it cannot.
    fn code(&self, ty: ExecmemType, size: usize, align: Option<usize>) -> Option<Code> {
        self.alloc
            .alloc_code(ty, size, align, Requester::Kernel)
            .ok()
    }

    /// A JIT image (program, trampoline, dispatcher), booked by address.
    fn alloc_bpf(&self, size: usize) -> Option<usize> {
        let code = self.code(ExecmemType::Bpf, size, None)?.into_kernel();
        let addr = code.common().addr();
        let held = Held {
            code,
            who: Consumer::Bpf,
            freed_at: 0,
        };
        let mut book = self.book.lock();
        if let Err((_, held)) = book.bpf.insert(addr, held) {
            drop(book);
            // Never handed out, so never written: nothing to refill (the
            // hook drops its module reference: we return NULL).
            drop(held);
            return None;
        }
        // Booked: from here the kernel writes all of it, with text_poke,
        // itself, and its free refills on the freeing thread. (The key was
        // just inserted; were it not found, the kernel must not get memory
        // whose free would not refill it: the unwritten entry then waits
        // for the book's drop.)
        book.bpf.get_mut(addr)?.code.handed_out();
        Some(addr)
    }

    /// A page of kprobes' instruction slots, as `alloc_insn_page()`
    /// returns: its tree node is allocated here, so that the free (under
    /// `text_mutex`) allocates nothing.
    fn alloc_kprobes(&self, size: usize) -> Option<usize> {
        let node = RBTreeNodeReservation::new(GFP_KERNEL | __GFP_NOWARN).ok()?;
        let mut code = self
            .code(ExecmemType::Kprobes, size, Some(PAGE_SIZE))?
            .into_kernel();
        code.handed_out();
        let addr = code.common().addr();
        let held = Held {
            code,
            who: Consumer::Kprobes,
            freed_at: 0,
        };
        // The lock guard is a temporary of this statement: gone before what
        // the insert returns is dropped.
        let replaced = self.book.lock().kprobes.insert(node.into_node(addr, held));
        // Never one (the address was just allocated, so no live entry has
        // it), but its release, were it one, would refill and free with no
        // book lock held, as every release here does.
        drop(replaced);
        Some(addr)
    }

    /// Gives one of the kernel's allocations back: refilled and released
    /// on this thread.
    fn release(&self, held: Held) {
        let c = self.counts(held.who);
        let size = held.code.common().size() as u64;
        drop(held.code);
        c.release_max_ns
            .fetch_max(now_ns().saturating_sub(held.freed_at), Ordering::Relaxed);
        c.live.fetch_sub(1, Ordering::Relaxed);
        c.live_bytes.fetch_sub(size, Ordering::Relaxed);
    }
}

// SAFETY: `release` is a `Work<Provider>` field at this offset, and it is
// the first field: dropping a `Provider` waits for a running `run` before
// anything `run` uses drops.
unsafe impl HasWork for Provider {
    const OFFSET: usize = core::mem::offset_of!(Provider, release);

    /// Releases what kprobes freed, one allocation at a time, with no lock
    /// held while it is refilled and goes back to the allocator.
    fn run(&self) {
        loop {
            let held = {
                let mut book = self.book.lock();
                let Some(key) = book.freed.iter().next().map(|(k, _)| *k) else {
                    return;
                };
                book.freed.remove(&key)
            };
            if let Some(held) = held {
                self.release(held);
            }
            // The kernel may free many back to back: let others run
            // between two releases, even without preemption.
            cond_resched();
        }
    }
}

/// debugfs `serve`: which consumers are served, and what they hold.
pub struct ServeFile(Arc<Provider>);

impl FileOps for ServeFile {
    type Shared = Provider;
    const WRITABLE: bool = true;

    fn open(shared: &Arc<Provider>) -> Result<Self> {
        Ok(ServeFile(shared.clone()))
    }

    fn show(&self, out: &mut Buf) -> Result {
        let serve = self.0.serve;
        out.push(b"serve ")?;
        Buf::result(serve.show(serve.get(), out))?;
        out.push(b"\n")?;
        for who in Consumer::ALL {
            let n = serve.name(bit(who)).unwrap_or("?");
            let c = self.0.counts(who);
            let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
            Buf::result(write!(
                out,
                "{n}.allocs {}\n{n}.frees {}\n{n}.live {}\n{n}.live_bytes {}\n{n}.failures {}\n\
                 {n}.release_max_ns {}\n",
                l(&c.allocs),
                l(&c.frees),
                l(&c.live),
                l(&c.live_bytes),
                l(&c.failures),
                l(&c.release_max_ns)
            ))?;
        }
        Ok(())
    }

    fn command(&self, input: &[u8], out: &mut Buf) -> core::result::Result<(), Failure> {
        out.reserve(8)
            .map_err(|e| Failure::new(e, "out of memory"))?;
        let mask = self.0.serve.parse(input).ok_or(Failure::new(
            EINVAL,
            "usage: bpf,kprobes (any of them) or none",
        ))?;
        self.0.serve.set(mask);
        out.push(b"ok\n")
            .map_err(|e| Failure::new(e, "out of memory"))
    }
}
