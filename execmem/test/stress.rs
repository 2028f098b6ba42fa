// SPDX-License-Identifier: GPL-2.0

//! debugfs `stress`: the in-kernel stress runner.
//!
//! Writing `threads=N ops=N seed=N types=LIST max_size=N` (any subset, any
//! order) runs N kernel threads that together do `ops` random operations
//! over the listed types: alloc (and check the new range holds the fill
//! byte), write a pattern, verify it, exec the code written into RX
//! allocations, seal read-only ones (and check writes are refused), free.
//! The write blocks until every thread is done; a signal stops the run
//! early (the write then fails with `EINTR`), and every allocation is freed
//! either way. Reading returns the last run's report as `key value` lines.
//!
//! Defaults: `threads=2 ops=100000 seed=1 types=all max_size=4096`.
//! Limits: 1..=64 threads, 1..=10^9 ops, `max_size` 1..=64 MiB; anything
//! else is `EINVAL`.

use crate::execmem::allocator::{Allocator, Any, Requester};
use crate::execmem::backend::arch::{ret_imm32, RET_IMM32_LEN};
use crate::execmem::backend::debugfs::{Failure, FileOps};
use crate::execmem::backend::kthread::{signal_pending, Thread};
use crate::execmem::backend::sched::{cond_resched, now_ns};
use crate::execmem::backend::security::code_loading_refused;
use crate::execmem::binpack::types::{Class, ExecmemType, MAX_ALLOC};
use crate::execmem::binpack::workload::Rng;
use crate::execmem::debugfs::buf::Buf;
use crate::execmem::debugfs::parse::parse_num;
use core::fmt::Write;
use core::sync::atomic::{AtomicBool, Ordering};
use kernel::{
    c_str, new_condvar, new_mutex,
    prelude::*,
    sync::{Arc, CondVar, Mutex},
};

/// Live allocations a thread keeps at most.
const SLOTS: usize = 32;
/// Bytes of pattern written and verified per allocation at most.
const PATTERN: usize = 256;

/// Parameters of one run.
#[derive(Clone, Copy)]
pub struct Params {
    threads: u32,
    ops: u64,
    seed: u64,
    types: u8,
    max_size: usize,
}

impl Params {
    fn parse(input: &[u8]) -> core::result::Result<Self, Failure> {
        let mut p = Params {
            threads: 2,
            ops: 100_000,
            seed: 1,
            types: 0x7f,
            max_size: 4096,
        };
        let bad = |r| Failure::new(EINVAL, r);
        for word in input
            .split(|c| c.is_ascii_whitespace())
            .filter(|w| !w.is_empty())
        {
            let eq = word
                .iter()
                .position(|&c| c == b'=')
                .ok_or(bad("expected key=value"))?;
            let (key, val) = (
                word.get(..eq).unwrap_or(&[]),
                word.get(eq + 1..).unwrap_or(&[]),
            );
            match key {
                b"threads" => {
                    p.threads = u32::try_from(parse_num(val)?)
                        .ok()
                        .filter(|t| (1..=64).contains(t))
                        .ok_or(bad("threads must be 1..64"))?
                }
                b"ops" => {
                    p.ops = Some(parse_num(val)?)
                        .filter(|o| (1..=1_000_000_000).contains(o))
                        .ok_or(bad("ops must be 1..10^9"))?
                }
                b"seed" => p.seed = parse_num(val)?,
                b"max_size" => {
                    p.max_size = usize::try_from(parse_num(val)?)
                        .ok()
                        .filter(|s| (1..=MAX_ALLOC).contains(s))
                        .ok_or(bad("max_size must be 1..64 MiB"))?
                }
                b"types" => {
                    p.types = 0;
                    for name in val.split(|&c| c == b',') {
                        p.types |= match name {
                            b"all" => 0x7f,
                            n => {
                                1 << ExecmemType::from_name(n)
                                    .ok_or(bad("unknown type"))?
                                    .index()
                            }
                        };
                    }
                }
                _ => return Err(bad("unknown parameter")),
            }
        }
        Ok(p)
    }
}

/// Errnos counted separately in a report.
const ERRNOS: [(&str, Error); 6] = [
    ("enomem", ENOMEM),
    ("einval", EINVAL),
    ("e2big", E2BIG),
    ("erange", ERANGE),
    ("eperm", EPERM),
    ("enoent", ENOENT),
];

/// What a run did.
#[derive(Clone, Copy, Default)]
pub struct Report {
    ops: u64,
    allocs: u64,
    frees: u64,
    bytes: u64,
    execs: u64,
    seals: u64,
    errors: [u64; 7],
    corruptions: u64,
    elapsed_ns: u64,
    threads: u32,
    seed: u64,
    interrupted: bool,
}

impl Report {
    fn error(&mut self, e: Error) {
        let i = ERRNOS
            .iter()
            .position(|(_, x)| *x == e)
            .unwrap_or(ERRNOS.len());
        if let Some(c) = self.errors.get_mut(i) {
            *c = c.wrapping_add(1);
        }
    }

    fn add(&mut self, o: &Report) {
        self.ops = self.ops.wrapping_add(o.ops);
        self.allocs = self.allocs.wrapping_add(o.allocs);
        self.frees = self.frees.wrapping_add(o.frees);
        self.bytes = self.bytes.wrapping_add(o.bytes);
        self.execs = self.execs.wrapping_add(o.execs);
        self.seals = self.seals.wrapping_add(o.seals);
        self.corruptions = self.corruptions.wrapping_add(o.corruptions);
        for (a, b) in self.errors.iter_mut().zip(o.errors.iter()) {
            *a = a.wrapping_add(*b);
        }
    }

    fn show(&self, out: &mut Buf) -> Result {
        Buf::result(write!(
            out,
            "threads {}\nseed {}\nops {}\nallocs {}\nfrees {}\nbytes {}\nexecs {}\nseals {}\n",
            self.threads,
            self.seed,
            self.ops,
            self.allocs,
            self.frees,
            self.bytes,
            self.execs,
            self.seals
        ))?;
        for ((name, _), n) in ERRNOS.iter().zip(self.errors.iter()) {
            Buf::result(writeln!(out, "errors.{name} {n}"))?;
        }
        Buf::result(write!(
            out,
            "errors.other {}\ncorruptions {}\ninterrupted {}\nelapsed_ns {}\n",
            self.errors.last().copied().unwrap_or(0),
            self.corruptions,
            u8::from(self.interrupted),
            self.elapsed_ns
        ))
    }
}

/// One live allocation of a worker and what was written into it.
struct Slot {
    a: Any,
    tag: u32,
    written: usize,
}

fn pattern(tag: u32, i: usize) -> u8 {
    (tag as usize).wrapping_add(i.wrapping_mul(31)) as u8
}

/// Writes the slot's pattern: a function returning `tag` first for code.
fn write_pattern(s: &mut Slot, r: &mut Report) {
    let len = s.a.common().size().min(PATTERN);
    let mut buf = [0u8; PATTERN];
    for (i, b) in buf.iter_mut().enumerate().take(len) {
        *b = pattern(s.tag, i);
    }
    if let (Any::Code(_), Some(head)) = (&s.a, buf.get_mut(..RET_IMM32_LEN)) {
        if len >= RET_IMM32_LEN {
            head.copy_from_slice(&ret_imm32(s.tag));
        }
    }
    match s.a.write(0, buf.get(..len).unwrap_or(&[])) {
        Ok(()) => {
            s.written = len;
            r.bytes = r.bytes.wrapping_add(len as u64);
        }
        Err(e) if e.err == EPERM && s.a.is_sealed() => {}
        Err(e) => r.error(e.err),
    }
}

fn verify(s: &Slot, r: &mut Report) {
    let mut buf = [0u8; PATTERN];
    let Some(out) = buf.get_mut(..s.written) else {
        return;
    };
    if let Err(e) = s.a.read(0, out) {
        r.error(e.err);
        return;
    }
    let code = matches!(s.a, Any::Code(_)) && s.written >= RET_IMM32_LEN;
    let want = ret_imm32(s.tag);
    let ok = out.iter().enumerate().all(|(i, &b)| {
        let w = if code && i < RET_IMM32_LEN {
            want.get(i).copied().unwrap_or(0)
        } else {
            pattern(s.tag, i)
        };
        b == w
    });
    if !ok {
        r.corruptions = r.corruptions.wrapping_add(1);
    }
}

/// Allocates a random allocation, checks it is filled, writes its pattern.
fn new_slot(
    alloc: &Arc<Allocator>,
    types: &KVec<ExecmemType>,
    p: Params,
    rng: &mut Rng,
    r: &mut Report,
) -> Option<Slot> {
    let &ty = types.get(rng.below(types.len() as u64) as usize)?;
    // Mostly small, sometimes up to max_size.
    let size = if rng.below(8) == 0 {
        1 + rng.below(p.max_size as u64) as usize
    } else {
        1 + rng.below(p.max_size.min(512) as u64) as usize
    };
    let align = match rng.below(16) {
        0 => Some(4096),
        1 => Some(256),
        _ => None,
    };
    let a = match alloc.alloc(ty, size, align, Requester::User) {
        Ok(a) => a,
        Err(e) => {
            r.error(e.err);
            return None;
        }
    };
    r.allocs = r.allocs.wrapping_add(1);
    // A new range must hold the fill all through (freed ranges are
    // refilled, fresh packs are filled): read all of it, a chunk at a time.
    let fill = ty.info().fill;
    let mut chunk = [0u8; 256];
    let mut off = 0;
    while off < size {
        let n = (size - off).min(chunk.len());
        let Some(c) = chunk.get_mut(..n) else { break };
        // Chunks start at multiples of 256, so the pattern's phase is the
        // chunk's own.
        if a.read(off, c).is_err() || c.iter().enumerate().any(|(i, &b)| b != fill.byte_at(i)) {
            r.corruptions = r.corruptions.wrapping_add(1);
            break;
        }
        off += n;
    }
    let mut s = Slot {
        a,
        tag: rng.next_u64() as u32,
        written: 0,
    };
    write_pattern(&mut s, r);
    Some(s)
}

/// Calls the function at the start of a code slot and checks its result.
fn exec(s: &Slot, r: &mut Report) {
    let Any::Code(c) = &s.a else { return };
    if s.written < RET_IMM32_LEN {
        return;
    }
    let mut head = [0u8; RET_IMM32_LEN];
    if s.a.read(0, &mut head).is_err() || head != ret_imm32(s.tag) {
        // Never call bytes that are not what we wrote.
        r.corruptions = r.corruptions.wrapping_add(1);
        return;
    }
    // SAFETY: the first bytes are `ret_imm32(tag)` (checked
    // just above), a complete function that touches no memory and returns.
    match unsafe { c.call(0) } {
        Ok(v) if v == u64::from(s.tag) => {}
        Ok(_) => r.corruptions = r.corruptions.wrapping_add(1),
        Err(e) => r.error(e.err),
    }
    r.execs = r.execs.wrapping_add(1);
}

fn worker(alloc: &Arc<Allocator>, p: Params, ops: u64, seed: u64, stop: &AtomicBool) -> Report {
    let mut r = Report::default();
    let mut rng = Rng::new(seed);
    // On the heap: 32 handles are ~4 KiB, too much for a kthread's stack.
    let mut slots: KVec<Option<Slot>> = KVec::new();
    for _ in 0..SLOTS {
        if slots.push(None, GFP_KERNEL).is_err() {
            r.error(ENOMEM);
            return r;
        }
    }
    let types: KVec<ExecmemType> = {
        let mut v = KVec::new();
        for t in ExecmemType::ALL {
            if p.types & (1 << t.index()) != 0 && v.push(t, GFP_KERNEL).is_err() {
                r.error(ENOMEM);
            }
        }
        v
    };
    let mut done = 0u64;
    while done < ops && !stop.load(Ordering::Relaxed) {
        done += 1;
        if done % 64 == 0 {
            // A non-preemptible kernel: let the refill worker and others run.
            cond_resched();
        }
        r.ops = r.ops.wrapping_add(1);
        let i = rng.below(SLOTS as u64) as usize;
        let Some(slot) = slots.get_mut(i) else {
            continue;
        };
        let Some(s) = slot.as_mut() else {
            if let Some(new) = new_slot(alloc, &types, p, &mut rng, &mut r) {
                *slot = Some(new);
            }
            continue;
        };
        match rng.below(100) {
            0..=29 => verify(s, &mut r),
            30..=44 => match &s.a {
                Any::Code(_) => exec(s, &mut r),
                _ => write_pattern(s, &mut r),
            },
            45..=54 if matches!(s.a, Any::ReadOnly(_)) => {
                if let Some(Slot {
                    a: Any::ReadOnly(ro),
                    tag,
                    written,
                }) = slot.take()
                {
                    let mut sealed = Slot {
                        a: Any::Sealed(ro.seal()),
                        tag,
                        written,
                    };
                    r.seals = r.seals.wrapping_add(1);
                    // A sealed handle must refuse writes, and keep its bytes.
                    if sealed.a.write(0, &[0]).map_err(|r| r.err) != Err(EPERM) {
                        r.corruptions = r.corruptions.wrapping_add(1);
                    }
                    verify(&sealed, &mut r);
                    sealed.written = written;
                    *slot = Some(sealed);
                }
            }
            45..=54 => verify(s, &mut r),
            _ => {
                if let Some(s) = slot.take() {
                    verify(&s, &mut r);
                    // Dropping the handle refills what it wrote and frees it.
                    drop(s);
                    r.frees = r.frees.wrapping_add(1);
                }
            }
        }
    }
    // Free what is left: a run never leaks, interrupted or not.
    for s in slots.as_mut_slice().iter_mut() {
        if s.take().is_some() {
            r.frees = r.frees.wrapping_add(1);
        }
    }
    r
}

/// Progress shared by the threads of one run.
#[pin_data]
struct Run {
    #[pin]
    state: Mutex<(u32, Report)>,
    #[pin]
    done: CondVar,
    stop: AtomicBool,
}

/// State of the `stress` file: the allocator and the last report.
#[pin_data]
pub struct StressState {
    alloc: Arc<Allocator>,
    #[pin]
    last: Mutex<Option<Report>>,
}

impl StressState {
    /// New state for `alloc`.
    pub fn new(alloc: &Arc<Allocator>) -> Result<Arc<Self>> {
        Arc::pin_init(
            pin_init!(StressState {
                alloc: alloc.clone(),
                last <- new_mutex!(None),
            }),
            GFP_KERNEL,
        )
    }
}

/// Runs the stress test with `p`; returns the report.
fn run(alloc: &Arc<Allocator>, p: Params) -> Result<Report> {
    let run = Arc::pin_init(
        pin_init!(Run {
            state <- new_mutex!((0, Report::default())),
            done <- new_condvar!(),
            stop: AtomicBool::new(false),
        }),
        GFP_KERNEL,
    )?;
    let start = now_ns();
    // Room for every thread first: once a thread runs, recording it cannot
    // fail (a thread dropped unrecorded would be joined before it was told
    // to stop, i.e. only after its whole share of the run).
    let mut threads = KVec::with_capacity(p.threads as usize, GFP_KERNEL)?;
    let mut spawn_err = None;
    for t in 0..p.threads {
        let ops =
            p.ops / u64::from(p.threads) + u64::from(u64::from(t) < p.ops % u64::from(p.threads));
        let (run2, alloc2) = (run.clone(), alloc.clone());
        let seed = p.seed.wrapping_add(u64::from(t).wrapping_mul(0x1000_0001));
        let f = move || {
            let r = worker(&alloc2, p, ops, seed, &run2.stop);
            let mut st = run2.state.lock();
            st.0 += 1;
            st.1.add(&r);
            run2.done.notify_all();
        };
        match Thread::spawn(c_str!("execmem_stress"), f) {
            // Within the capacity reserved above `push` does not allocate,
            // so it cannot fail (and drop, i.e. join, a running thread
            // before it was told to stop).
            Ok(th) => {
                if threads.push(th, GFP_KERNEL).is_err() {
                    run.stop.store(true, Ordering::Relaxed);
                    spawn_err = Some(ENOMEM);
                    break;
                }
            }
            Err(e) => {
                // Stop the threads that run; they are joined below.
                run.stop.store(true, Ordering::Relaxed);
                spawn_err = Some(e);
                break;
            }
        }
    }
    let n = threads.len() as u32;
    let mut interrupted = false;
    {
        let mut st = run.state.lock();
        while st.0 < n {
            if !interrupted && run.done.wait_interruptible(&mut st) {
                interrupted = signal_pending();
                if interrupted {
                    run.stop.store(true, Ordering::Relaxed);
                }
            } else if interrupted {
                run.done.wait(&mut st);
            }
        }
    }
    // Every thread function has returned (or returns now); reap them all.
    drop(threads);
    alloc.flush();
    if let Some(e) = spawn_err {
        return Err(e);
    }
    let mut r = run.state.lock().1;
    r.elapsed_ns = now_ns().saturating_sub(start);
    r.threads = n;
    r.seed = p.seed;
    r.interrupted = interrupted;
    Ok(r)
}

/// `stress`: write parameters to run, read the last report.
pub struct Stress(Arc<StressState>);

impl FileOps for Stress {
    type Shared = StressState;
    const WRITABLE: bool = true;

    fn open(shared: &Arc<StressState>) -> Result<Self> {
        Ok(Stress(shared.clone()))
    }

    fn show(&self, out: &mut Buf) -> Result {
        match *self.0.last.lock() {
            Some(r) => r.show(out),
            None => out.push(b"no run yet\n"),
        }
    }

    fn command(&self, input: &[u8], out: &mut Buf) -> core::result::Result<(), Failure> {
        let p = Params::parse(input)?;
        let code = ExecmemType::ALL
            .iter()
            .any(|t| t.class() == Class::Rx && p.types & (1 << t.index()) != 0);
        if code {
            // The run calls the code it writes.
            if let Some(reason) = code_loading_refused() {
                return Err(Failure::new(EPERM, reason));
            }
        }
        out.reserve(1024)
            .map_err(|e| Failure::new(e, "out of memory"))?;
        let r =
            run(&self.0.alloc, p).map_err(|e| Failure::new(e, "could not start the threads"))?;
        *self.0.last.lock() = Some(r);
        r.show(out).map_err(|e| Failure::new(e, "out of memory"))?;
        if r.interrupted {
            return Err(Failure::new(
                EINTR,
                "interrupted; report in the stress file",
            ));
        }
        Ok(())
    }
}
