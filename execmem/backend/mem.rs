// SPDX-License-Identifier: GPL-2.0

//! Memory areas: the only code that calls the kernel's vmalloc, execmem,
//! `set_memory_*`, `text_poke_*` and page-table primitives.
//!
//! An [`Area`] owns one vmalloc area in the module range. It is created
//! writable, may be filled while nobody else can see it, then gets its final
//! permissions once ([`Area::protect`]). After that, read-only and executable
//! areas are written only through `text_poke_copy()`/`text_poke_set()`, which
//! write through a temporary writable alias of the physical pages; the area's
//! own mapping is never made writable again. Dropping an area frees it; the
//! areas are allocated with `VM_FLUSH_RESET_PERMS`, so `vfree()` restores the
//! permissions of the alias and of the direct map.

use core::ptr::NonNull;
use kernel::{bindings, error::code::*, prelude::*};

/// Size of a base page.
pub const PAGE_SIZE: usize = bindings::PAGE_SIZE;
/// Size of a PMD mapping (2 MiB on x86-64), the size and alignment of a pack.
pub const PMD_SIZE: usize = bindings::PMD_SIZE;

/// Permissions of every page of an [`Area`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Perms {
    /// Readable and writable, never executable (`PAGE_KERNEL`).
    ReadWrite,
    /// Read-only, not executable (`set_memory_ro()`).
    ReadOnly,
    /// Read-only and executable (`set_memory_rox()`).
    ReadExec,
}

/// Which allocator an [`Area`] came from, and so how it is freed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Origin {
    /// `__vmalloc_node_range()` in the module range; freed with `vfree()`.
    Vmalloc,
    /// The kernel's own `execmem_alloc()`; freed with `execmem_free()`.
    Execmem,
}

/// The kernel's own execmem types, for [`Area::execmem`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ExecmemKind {
    /// `EXECMEM_MODULE_TEXT`.
    ModuleText,
    /// `EXECMEM_MODULE_DATA`.
    ModuleData,
}

/// How one page of an area is mapped, as the page tables say.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PageInfo {
    /// Mapping level: 1 = 4 KiB PTE, 2 = 2 MiB PMD (`enum pg_level`).
    pub level: u32,
    /// The entry is present.
    pub present: bool,
    /// The entry allows writes.
    pub writable: bool,
    /// The entry allows execution.
    pub executable: bool,
}

/// An owned vmalloc area in the module range.
///
/// # Invariants
///
/// - `addr` is the start of a live allocation of `size` bytes made by
///   `origin`'s allocator, with `VM_FLUSH_RESET_PERMS`, owned by this value
///   alone; `size` is a non-zero multiple of [`PAGE_SIZE`].
/// - Every page of it has the permissions `perms`.
/// - No Rust reference to its bytes exists outside the methods below, so
///   writes through the `text_poke` alias never race with a reference.
pub struct Area {
    addr: NonNull<u8>,
    size: usize,
    perms: Perms,
    origin: Origin,
}

// SAFETY: `Area` owns its allocation; nothing in it is tied to the
// allocating thread, and vfree()/execmem_free() may run on any thread in
// process context.
unsafe impl Send for Area {}
// SAFETY: the `&self` methods either only read the area or write through
// `text_poke_*`, which serialises on `text_mutex`; callers that need
// exclusive ranges get them from the allocator above.
unsafe impl Sync for Area {}

fn pages(len: usize) -> Result<i32> {
    i32::try_from(len / PAGE_SIZE).map_err(|_| E2BIG)
}

impl Area {
    /// Allocates `size` bytes, `align`-aligned, in the module range, mapped
    /// with 2 MiB pages where `allow_huge` and the allocation allows it.
    /// The area starts read-write and not executable.
    pub fn vmalloc(size: usize, align: usize, allow_huge: bool) -> Result<Area> {
        if size == 0 || size % PAGE_SIZE != 0 || !align.is_power_of_two() {
            return Err(EINVAL);
        }
        let mut flags = bindings::VM_FLUSH_RESET_PERMS as usize;
        if allow_huge {
            flags |= bindings::VM_ALLOW_HUGE_VMAP as usize;
        }
        // SAFETY: plain C calls with no pointer arguments but `caller`, which
        // vmalloc only records for /proc/vmallocinfo.
        let ptr = unsafe {
            bindings::__vmalloc_node_range_noprof(
                size,
                align,
                bindings::MODULES_VADDR(),
                bindings::MODULES_END(),
                bindings::GFP_KERNEL | bindings::__GFP_NOWARN,
                bindings::PAGE_KERNEL(),
                flags,
                bindings::NUMA_NO_NODE,
                Self::vmalloc as *const core::ffi::c_void,
            )
        };
        let addr = NonNull::new(ptr.cast::<u8>()).ok_or(ENOMEM)?;
        // INVARIANT: a fresh RW allocation of `size` bytes that we own.
        Ok(Area {
            addr,
            size,
            perms: Perms::ReadWrite,
            origin: Origin::Vmalloc,
        })
    }

    /// Allocates `size` bytes with the kernel's own `execmem_alloc()`.
    ///
    /// The baseline that execmem_rs is measured against, and the allocator
    /// of the foundation probe. The area starts read-write.
    pub fn execmem(kind: ExecmemKind, size: usize) -> Result<Area> {
        let size = size
            .checked_next_multiple_of(PAGE_SIZE)
            .filter(|s| *s != 0)
            .ok_or(EINVAL)?;
        let ty = match kind {
            ExecmemKind::ModuleText => bindings::execmem_type_EXECMEM_MODULE_TEXT,
            ExecmemKind::ModuleData => bindings::execmem_type_EXECMEM_MODULE_DATA,
        };
        // SAFETY: plain C call; `ty` is a valid `enum execmem_type`.
        let ptr = unsafe { bindings::execmem_alloc(ty, size) };
        let addr = NonNull::new(ptr.cast::<u8>()).ok_or(ENOMEM)?;
        // INVARIANT: execmem_alloc() returns a vmalloc area with
        // VM_FLUSH_RESET_PERMS, PAGE_KERNEL (RW, NX) on x86-64, page-rounded.
        Ok(Area {
            addr,
            size,
            perms: Perms::ReadWrite,
            origin: Origin::Execmem,
        })
    }

    /// Start address, for placement arithmetic and `lookup_address()`.
    /// Never printed: debugfs shows offsets.
    pub fn addr(&self) -> usize {
        self.addr.as_ptr() as usize
    }

    /// Size in bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Current permissions.
    pub fn perms(&self) -> Perms {
        self.perms
    }

    fn check(&self, offset: usize, len: usize) -> Result<*mut u8> {
        let end = offset.checked_add(len).ok_or(ERANGE)?;
        if end > self.size {
            return Err(ERANGE);
        }
        // SAFETY: `offset <= size`, so the result stays inside the area (or
        // one past its end when `len == 0`).
        Ok(unsafe { self.addr.as_ptr().add(offset) })
    }

    /// Sets the final permissions of the whole area. Allowed once, from
    /// read-write; the contents must be complete: nobody can have executed
    /// or relied on them before.
    pub fn protect(&mut self, perms: Perms) -> Result {
        if self.perms != Perms::ReadWrite {
            return Err(EPERM);
        }
        let addr = self.addr();
        let n = pages(self.size)?;
        // SAFETY: the range is exactly our own allocation (type invariant);
        // changing its permissions affects no other user. `&mut self` means
        // no `text_poke` or read of ours is in flight.
        let ret = unsafe {
            match perms {
                Perms::ReadWrite => 0,
                Perms::ReadOnly => bindings::set_memory_ro(addr, n),
                Perms::ReadExec => bindings::set_memory_rox(addr, n),
            }
        };
        kernel::error::to_result(ret)?;
        // INVARIANT: every page now has `perms`.
        self.perms = perms;
        Ok(())
    }

    /// Copies `data` to `offset`: a plain copy while the area is writable,
    /// `text_poke_copy()` once it is read-only or executable.
    pub fn write(&self, offset: usize, data: &[u8]) -> Result {
        let dst = self.check(offset, data.len())?;
        if data.is_empty() {
            return Ok(());
        }
        match self.perms {
            // SAFETY: `dst..dst+len` is inside our writable area (checked
            // above); no reference to those bytes exists (type invariant).
            Perms::ReadWrite => unsafe {
                core::ptr::copy_nonoverlapping(data.as_ptr(), dst, data.len())
            },
            // SAFETY: the destination is inside our own RO/RX area, the
            // source is a valid slice of `len` bytes; text_poke_copy()
            // writes through a temporary alias and handles any length.
            _ => unsafe {
                bindings::text_poke_copy(dst.cast(), data.as_ptr().cast(), data.len());
            },
        }
        Ok(())
    }

    /// Sets `len` bytes at `offset` to `byte`, like [`Area::write`].
    pub fn fill(&self, offset: usize, byte: u8, len: usize) -> Result {
        let dst = self.check(offset, len)?;
        if len == 0 {
            return Ok(());
        }
        match self.perms {
            // SAFETY: as in `write`.
            Perms::ReadWrite => unsafe { core::ptr::write_bytes(dst, byte, len) },
            // SAFETY: as in `write`; text_poke_set() fills through an alias.
            _ => unsafe {
                bindings::text_poke_set(dst.cast(), i32::from(byte), len);
            },
        }
        Ok(())
    }

    /// Copies `out.len()` bytes from `offset` into `out`.
    pub fn read(&self, offset: usize, out: &mut [u8]) -> Result {
        let src = self.check(offset, out.len())?;
        // SAFETY: the source range is inside our area and readable in every
        // permission state; `out` is a distinct, valid Rust buffer.
        unsafe { core::ptr::copy_nonoverlapping(src, out.as_mut_ptr(), out.len()) };
        Ok(())
    }

    /// How the page containing `offset` is mapped.
    pub fn probe(&self, offset: usize) -> Result<PageInfo> {
        let addr = self.check(offset, 1)? as usize;
        let mut level: u32 = 0;
        // SAFETY: `addr` is a kernel virtual address inside our area;
        // lookup_address() only walks the kernel page tables.
        let pte = unsafe { bindings::lookup_address(addr, &mut level) };
        if pte.is_null() {
            return Ok(PageInfo {
                level,
                present: false,
                writable: false,
                executable: false,
            });
        }
        // SAFETY: a non-null result points to the live entry mapping `addr`
        // (a PTE, or a PMD/PUD leaf with the same flag layout); the area is
        // ours, so the table cannot be freed while we read it.
        let entry = unsafe { *pte };
        // SAFETY: pure accessors on a copied entry value.
        let (present, writable, executable) = unsafe {
            (
                bindings::pte_present(entry),
                bindings::pte_write(entry),
                bindings::pte_exec(entry),
            )
        };
        Ok(PageInfo {
            level,
            present,
            writable,
            executable,
        })
    }

    /// Calls the code at `offset` as `extern "C" fn() -> u64`.
    ///
    /// # Safety
    ///
    /// The bytes at `offset` must be a complete function for the C ABI of
    /// this kernel (starting with `ENDBR64` when IBT is on) that returns,
    /// preserves callee-saved registers and does nothing the caller is not
    /// allowed to do.
    pub unsafe fn call(&self, offset: usize) -> Result<u64> {
        if self.perms != Perms::ReadExec {
            return Err(EPERM);
        }
        let entry = self.check(offset, 1)?;
        // SAFETY: the area is mapped executable (checked above) and the
        // caller guarantees that `entry` holds a function of this type.
        let f: extern "C" fn() -> u64 = unsafe { core::mem::transmute(entry) };
        Ok(f())
    }
}

impl Drop for Area {
    fn drop(&mut self) {
        let ptr = self.addr.as_ptr().cast();
        // SAFETY: we own the allocation (type invariant) and nobody uses it
        // any more; both frees run in process context and restore the
        // permissions (VM_FLUSH_RESET_PERMS).
        unsafe {
            match self.origin {
                Origin::Vmalloc => bindings::vfree(ptr),
                Origin::Execmem => bindings::execmem_free(ptr),
            }
        }
    }
}

/// `direct_map_level2_splits` from the VM event counters: how often a 2 MiB
/// direct-map entry was split, e.g. by a permission change.
pub fn direct_map_level2_splits() -> u64 {
    let mut ev = [0usize; bindings::vm_event_item_NR_VM_EVENT_ITEMS as usize];
    // SAFETY: all_vm_events() writes exactly NR_VM_EVENT_ITEMS counters.
    unsafe { bindings::all_vm_events(ev.as_mut_ptr()) };
    ev.get(bindings::vm_event_item_DIRECT_MAP_LEVEL2_SPLIT as usize)
        .map_or(0, |&v| v as u64)
}
