// SPDX-License-Identifier: GPL-2.0

//! Memory areas and windows into them: the only code that calls the
//! kernel's vmalloc, execmem, `set_memory_*`, `text_poke_*` and page-table
//! primitives.
//!
//! An [`Area`] owns one vmalloc area in the range execmem itself uses for
//! the area's kind ([`Range`]: on x86-64 with KASLR, the module range above
//! execmem's randomised base). It is created writable, may be filled while
//! nobody else can see it, then gets its final permissions once
//! ([`Area::protect`]). After that, read-only and executable memory is
//! written only through `text_poke_copy()`/`text_poke_set()`, which write
//! through a temporary writable alias of the physical pages; the area's own
//! mapping is never made writable again while it is in use.
//!
//! Releasing: an area restores its permissions itself before `vfree()`,
//! over the whole area at once (`set_memory_nx()`, then `set_memory_rw()`,
//! which also makes the direct-map alias writable again). For an area
//! mapped with 2 MiB pages that touches the direct map 2 MiB at a time, so
//! it never splits a 2 MiB direct-map entry. `VM_FLUSH_RESET_PERMS` is not
//! used: it makes `vfree()` reset the direct map one 4 KiB page at a time
//! (`set_direct_map_invalid_noflush()`), splitting the entry under every
//! huge pack of every class on release.
//!
//! Writing into an area once it is protected, and reading it, go through a
//! [`super::window::Window`].

use super::arch;
use crate::execmem::binpack::types::Fill;
use core::ptr::NonNull;
use kernel::{bindings, error::code::*, prelude::*};

/// Size of a base page.
pub const PAGE_SIZE: usize = bindings::PAGE_SIZE;
/// Size of a PMD mapping (2 MiB on x86-64), the size and alignment of a pack.
pub const PMD_SIZE: usize = bindings::PMD_SIZE;

// The pure core (shared with the host crate) carries its own copies of the
// architecture's constants: they must be the kernel's.
const _: () = {
    use crate::execmem::binpack::types::arch;
    assert!(
        arch::PAGE_SIZE == PAGE_SIZE,
        "core PAGE_SIZE is not the kernel's"
    );
    assert!(
        arch::PACK_SIZE == PMD_SIZE,
        "core PACK_SIZE is not the kernel's PMD_SIZE"
    );
    assert!(
        1usize << arch::PACK_SHIFT == PMD_SIZE,
        "core PACK_SHIFT is not PMD_SHIFT"
    );
};

/// Permissions of every page of an [`Area`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Perms {
    /// Readable and writable, never executable (`PAGE_KERNEL`).
    ReadWrite,
    /// Read-only, not executable (`set_memory_ro()`).
    ReadOnly,
    /// Read-only and executable (`set_memory_rox()`).
    ReadExec,
    /// A permission change failed half-way and so did the restore: some
    /// pages (or their direct-map alias) may be read-only. Such an area is
    /// never written, called or freed.
    Unknown,
}

/// Which of execmem's ranges an area lives in.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RangeKind {
    /// `EXECMEM_MODULE_TEXT`: code.
    Text,
    /// `EXECMEM_MODULE_DATA`: data, read-only data.
    Data,
}

/// Where and how execmem allocates memory of one kind, read from the
/// kernel at load time (`execmem_get_range()`).
#[derive(Clone, Copy, Debug)]
pub struct Range {
    /// First address (on x86-64 with KASLR: `MODULES_VADDR` + a random
    /// 1..1024 pages, chosen at boot).
    pub start: usize,
    /// End of the range (exclusive, as `__vmalloc_node_range()` takes it).
    pub end: usize,
    /// Alignment and size granule of an area: `MODULE_ALIGN`, 32 KiB with
    /// KASAN without `KASAN_VMALLOC` (each area gets its own shadow pages),
    /// else one page.
    pub granule: usize,
    /// The area needs `kasan_alloc_module_shadow()` (`EXECMEM_KASAN_SHADOW`
    /// with KASAN without `KASAN_VMALLOC`).
    pub kasan_shadow: bool,
    /// Where execmem goes when `[start, end)` is full (`fallback_start`,
    /// `fallback_end`): on arm64 the 2 GiB window that module code reaches
    /// the kernel from through PLTs, when the 128 MiB direct-branch window
    /// is full; none on x86-64.
    pub fallback: Option<(usize, usize)>,
}

impl Range {
    /// The range execmem uses for `kind`.
    pub fn of(kind: RangeKind) -> Result<Range> {
        let ty = match kind {
            RangeKind::Text => bindings::execmem_type_EXECMEM_MODULE_TEXT,
            RangeKind::Data => bindings::execmem_type_EXECMEM_MODULE_DATA,
        };
        // SAFETY: plain C call; the result is NULL or points to execmem's
        // `__ro_after_init` range table, valid and unchanging until reboot.
        let r = unsafe { bindings::execmem_get_range(ty).as_ref() }.ok_or(ENODEV)?;
        let granule = usize::try_from(r.alignment)
            .unwrap_or(PAGE_SIZE)
            .max(PAGE_SIZE);
        if !granule.is_power_of_two() || r.start >= r.end {
            return Err(EINVAL);
        }
        Ok(Range {
            start: r.start as usize,
            // execmem's `end` is inclusive in its documentation but passed
            // to vmalloc as the exclusive end; do what execmem does.
            end: r.end as usize,
            granule,
            // x86 sets the flag in every configuration; like
            // `kasan_alloc_module_shadow()` it means something only with KASAN
            // without KASAN_VMALLOC.
            kasan_shadow: r.flags & bindings::execmem_range_flags_EXECMEM_KASAN_SHADOW != 0
                && cfg!(all(
                    any(CONFIG_KASAN_GENERIC, CONFIG_KASAN_SW_TAGS),
                    not(CONFIG_KASAN_VMALLOC)
                )),
            fallback: (r.fallback_start != 0 && r.fallback_start < r.fallback_end)
                .then_some((r.fallback_start as usize, r.fallback_end as usize)),
        })
    }

    /// Whether `[addr, addr + size)` lies inside the range or its fallback.
    pub fn contains(&self, addr: usize, size: usize) -> bool {
        let Some(end) = addr.checked_add(size) else {
            return false;
        };
        let inside = |(s, e): (usize, usize)| addr >= s && end <= e;
        inside((self.start, self.end)) || self.fallback.is_some_and(inside)
    }
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
    /// An indirect branch into the page must land on a landing pad: arm64
    /// BTI's guarded page (`PTE_GP`); x86-64 has no such bit.
    pub guarded: bool,
}

impl PageInfo {
    /// What the walk found at `level`: an entry that allows nothing unless
    /// it is `present`.
    pub fn new(level: u32, present: bool, writable: bool, executable: bool) -> PageInfo {
        PageInfo {
            level,
            present,
            writable: present && writable,
            executable: present && executable,
            guarded: false,
        }
    }

    /// The same, guarded as the entry says.
    pub fn with_guard(self, guarded: bool) -> PageInfo {
        PageInfo {
            guarded: self.present && guarded,
            ..self
        }
    }

    /// `r-x`, `rw-`, `r--`, `rwx` (never expected), or `none` when the page
    /// is not mapped there.
    pub fn perms(&self) -> &'static str {
        match (self.present, self.writable, self.executable) {
            (false, _, _) => "none",
            (true, false, false) => "r--",
            (true, false, true) => "r-x",
            (true, true, false) => "rw-",
            (true, true, true) => "rwx",
        }
    }
}

/// Which allocator an [`Area`] came from, and so how it is freed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Origin {
    /// `__vmalloc_node_range()`; restored and freed with `vfree()`.
    Vmalloc,
    /// `__vmalloc_node_range()` with its final protection and
    /// `VM_FLUSH_RESET_PERMS` ([`Area::sealed`]); freed with `vfree()`,
    /// which restores the linear-map alias.
    Sealed,
    /// The kernel's own `execmem_alloc()` (`VM_FLUSH_RESET_PERMS`); freed
    /// with `execmem_free()`. The test harness's baseline only.
    #[cfg(execmem_rs_test)]
    Execmem,
}

/// The kernel's own execmem types, for [`Area::execmem`] (the test
/// harness's baseline).
#[cfg(execmem_rs_test)]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ExecmemKind {
    /// `EXECMEM_MODULE_TEXT`.
    ModuleText,
    /// `EXECMEM_MODULE_DATA`.
    ModuleData,
}

/// An owned vmalloc area.
///
/// # Invariants
///
/// - `addr` is the start of a live allocation of `size` bytes made by
///   `origin`'s allocator, owned by this value alone; `size` is a non-zero
///   multiple of [`PAGE_SIZE`].
/// - Every page of it (and the direct-map alias of every page) has the
///   permissions `perms`, unless `perms` is [`Perms::Unknown`].
/// - The bytes are accessed only through `&mut self` methods or through
///   [`super::window::Window`]s, which never overlap.
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
// SAFETY: the `&self` methods only read the area's own fields and the page
// tables (`probe`); the memory itself is reached through `&mut self` or
// through exclusive `Window`s.
unsafe impl Sync for Area {}

fn pages(len: usize) -> Result<i32> {
    i32::try_from(len / PAGE_SIZE).map_err(|_| E2BIG)
}

impl Area {
    /// Allocates `size` bytes aligned to `align` in `range`, mapped with
    /// 2 MiB pages where `huge` and the allocation allow it, with the
    /// allocation flags `gfp`. Size and alignment are rounded up to the
    /// range's granule. The area starts read-write and not executable.
    pub fn vmalloc(
        size: usize,
        align: usize,
        huge: bool,
        range: &Range,
        gfp: bindings::gfp_t,
    ) -> Result<Area> {
        // SAFETY: a pure helper returning a constant protection.
        let prot = unsafe { bindings::PAGE_KERNEL() };
        Self::vmalloc_as(size, align, huge, range, gfp, prot, Perms::ReadWrite)
    }

    /// A pack's area: as [`Area::vmalloc`], holding `fill` all through and
    /// mapped with `perms`, both done before anyone else can see it.
    ///
    /// How is the architecture's ([`arch::SEALED_AT_BIRTH`]): either filled
    /// with plain stores while read-write, then protected (x86-64), or
    /// mapped with its final protection from the start, its linear-map
    /// alias taken away, then filled through the text-patching alias (arm64, where
    /// `set_memory_*()` refuse areas mapped with PMDs). Either way no
    /// mapping of the pages is writable and executable at any time.
    pub fn sealed(
        size: usize,
        align: usize,
        huge: bool,
        range: &Range,
        gfp: bindings::gfp_t,
        perms: Perms,
        fill: Fill,
    ) -> Result<Area> {
        if perms == Perms::Unknown {
            return Err(EINVAL);
        }
        if !arch::SEALED_AT_BIRTH || perms == Perms::ReadWrite {
            let mut area = Self::vmalloc(size, align, huge, range, gfp)?;
            area.fill(fill)?;
            if perms != Perms::ReadWrite {
                area.protect(perms)?;
            }
            return Ok(area);
        }
        let zero = fill.as_byte() == Some(0);
        let gfp = if zero {
            gfp | bindings::__GFP_ZERO
        } else {
            gfp
        };
        let mut area = Self::vmalloc_as(
            size,
            align,
            huge,
            range,
            gfp,
            arch::sealed_prot(perms),
            perms,
        )?;
        // The alias goes before the fill, which writes through the patching
        // alias (a mapping of its own): the pages are never writable through
        // the linear map while executable here.
        // SAFETY: our own live area, allocated with VM_FLUSH_RESET_PERMS
        // (`vmalloc_as` for sealed perms); nobody reaches its pages through
        // the linear map.
        unsafe { arch::seal_alias(area.addr(), area.size) }?;
        // Mappings of these pages left by vmalloc areas freed lazily (their
        // TLB entries may outlive them) go too, as set_memory_*() does.
        // SAFETY: no precondition; it may sleep, as this path may.
        unsafe { bindings::vm_unmap_aliases() };
        if !zero {
            let size = area.size;
            area.window()?.fill(0, fill, size)?;
        }
        Ok(area)
    }

    /// Allocates the area mapped with `prot`, which gives it `perms`:
    /// `PAGE_KERNEL` and [`Perms::ReadWrite`], or a sealed area's
    /// ([`arch::sealed_prot`]).
    fn vmalloc_as(
        size: usize,
        align: usize,
        huge: bool,
        range: &Range,
        gfp: bindings::gfp_t,
        prot: bindings::pgprot_t,
        perms: Perms,
    ) -> Result<Area> {
        if size == 0 || !align.is_power_of_two() {
            return Err(EINVAL);
        }
        let size = size.checked_next_multiple_of(range.granule).ok_or(E2BIG)?;
        let align = align.max(range.granule);
        let mut flags = 0usize;
        let origin = if perms == Perms::ReadWrite {
            Origin::Vmalloc
        } else {
            // vfree() gives the pages their linear-map alias back.
            flags |= bindings::VM_FLUSH_RESET_PERMS as usize;
            Origin::Sealed
        };
        if huge {
            flags |= bindings::VM_ALLOW_HUGE_VMAP as usize;
        }
        if range.kasan_shadow {
            // As execmem: kmemleak must not scan it before it has a shadow.
            flags |= bindings::VM_DEFER_KMEMLEAK as usize;
        }
        // As execmem: the range first, then its fallback (no warning for
        // the first failure when there is a fallback).
        let windows = [Some((range.start, range.end)), range.fallback];
        let mut ptr = core::ptr::null_mut();
        for (n, (start, end)) in windows.into_iter().flatten().enumerate() {
            let quiet = if n == 0 && range.fallback.is_some() {
                bindings::__GFP_NOWARN
            } else {
                0
            };
            // SAFETY: plain C call with no pointer arguments but `caller`,
            // which vmalloc only records for /proc/vmallocinfo.
            ptr = unsafe {
                bindings::__vmalloc_node_range_noprof(
                    size,
                    align,
                    start as _,
                    end as _,
                    gfp | quiet,
                    prot,
                    flags as _,
                    bindings::NUMA_NO_NODE,
                    Self::vmalloc as *const core::ffi::c_void,
                )
            };
            if !ptr.is_null() {
                break;
            }
        }
        let addr = NonNull::new(ptr.cast::<u8>()).ok_or(ENOMEM)?;
        // INVARIANT: a fresh allocation of `size` bytes that we own, mapped
        // with `prot`, which is `perms` (the caller's contract). A sealed
        // area's linear-map alias is still writable until `sealed` seals
        // it; nothing can see the area before.
        let area = Area {
            addr,
            size,
            perms,
            origin,
        };
        if range.kasan_shadow {
            area.alloc_kasan_shadow(gfp)?;
        }
        Ok(area)
    }

    /// KASAN without `KASAN_VMALLOC` has no shadow for the module range
    /// until `kasan_alloc_module_shadow()` maps one; `vfree()` unmaps it.
    #[cfg(all(
        any(CONFIG_KASAN_GENERIC, CONFIG_KASAN_SW_TAGS),
        not(CONFIG_KASAN_VMALLOC)
    ))]
    fn alloc_kasan_shadow(&self, gfp: bindings::gfp_t) -> Result {
        // SAFETY: our own live vmalloc area of `size` bytes, aligned to the
        // range's granule (MODULE_ALIGN), so its shadow starts on a page.
        let ret = unsafe {
            bindings::kasan_alloc_module_shadow(self.addr.as_ptr().cast(), self.size, gfp)
        };
        kernel::error::to_result(ret)
    }

    #[cfg(not(all(
        any(CONFIG_KASAN_GENERIC, CONFIG_KASAN_SW_TAGS),
        not(CONFIG_KASAN_VMALLOC)
    )))]
    fn alloc_kasan_shadow(&self, _gfp: bindings::gfp_t) -> Result {
        // `Range::of` asks for a shadow only in the configuration above.
        Err(EINVAL)
    }

    /// Allocates `size` bytes with the kernel's own `execmem_alloc()`.
    ///
    /// The baseline that the test harness measures execmem_rs against, and
    /// the allocator of its foundation probe. The area starts read-write.
    #[cfg(execmem_rs_test)]
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

    pub(super) fn at(&self, offset: usize, len: usize) -> Result<NonNull<u8>> {
        let end = offset.checked_add(len).ok_or(ERANGE)?;
        if end > self.size {
            return Err(ERANGE);
        }
        // SAFETY: `offset <= size`, so the result stays inside the area (or
        // one past its end when `len == 0`), and is not null.
        Ok(unsafe { NonNull::new_unchecked(self.addr.as_ptr().add(offset)) })
    }

    /// Fills the whole area with `fill` while it is still private and
    /// writable (before [`Area::protect`]): plain stores.
    pub fn fill(&mut self, fill: Fill) -> Result {
        if self.perms != Perms::ReadWrite {
            return Err(EPERM);
        }
        // SAFETY: the whole area is ours and writable, and `&mut self`
        // means no window or other access exists.
        unsafe { super::window::fill_plain(self.addr.as_ptr(), fill, self.size) }
    }

    /// Sets the final permissions of the whole area. Allowed once, from
    /// read-write; the contents must be complete: nobody can have executed
    /// or relied on them before. On failure the area is read-write again
    /// (or [`Perms::Unknown`] if even that failed). `EINVAL` for an area
    /// mapped with 2 MiB pages where `set_memory_*()` refuse those (arm64:
    /// [`Area::sealed`] is the way there), before anything changes.
    pub fn protect(&mut self, perms: Perms) -> Result {
        if self.perms != Perms::ReadWrite || perms == Perms::Unknown {
            return Err(EPERM);
        }
        if arch::SEALED_AT_BIRTH && self.probe(0)?.level == arch::LEVEL_2M {
            return Err(EINVAL);
        }
        let addr = self.addr();
        let n = pages(self.size)?;
        // SAFETY: the range is exactly our own allocation (type invariant);
        // changing its permissions affects no other user. `&mut self` means
        // no window, `text_poke` or read of ours is in flight.
        let ret = unsafe {
            match perms {
                Perms::ReadWrite | Perms::Unknown => 0,
                Perms::ReadOnly => bindings::set_memory_ro(addr as _, n),
                Perms::ReadExec => arch::set_memory_rox(addr, n),
            }
        };
        if let Err(e) = kernel::error::to_result(ret) {
            // A partial change: some pages may have the new permissions.
            // INVARIANT: `restore` leaves every page RW+NX or marks the
            // area Unknown.
            self.perms = Perms::Unknown;
            let _ = self.restore();
            return Err(e);
        }
        // INVARIANT: every page now has `perms`.
        self.perms = perms;
        Ok(())
    }

    /// Makes every page read-write and not executable again (and its
    /// direct-map alias writable), the whole area in two calls: not
    /// executable first, so no page is ever writable and executable.
    fn restore(&mut self) -> Result {
        if self.perms == Perms::ReadWrite {
            return Ok(());
        }
        let addr = self.addr();
        let n = pages(self.size)?;
        // SAFETY: as in `protect`; RW+NX is what vmalloc created the area
        // with, and `&mut self` excludes every other access.
        let ret = unsafe {
            let r = bindings::set_memory_nx(addr as _, n);
            if r != 0 {
                r
            } else {
                bindings::set_memory_rw(addr as _, n)
            }
        };
        kernel::error::to_result(ret)?;
        // INVARIANT: every page and its alias are RW+NX again.
        self.perms = Perms::ReadWrite;
        Ok(())
    }

    /// How the page containing `offset` is mapped.
    pub fn probe(&self, offset: usize) -> Result<PageInfo> {
        let p = self.at(offset, 1)?;
        // SAFETY: `p` is inside this area, which `&self` keeps mapped.
        unsafe { arch::probe(p) }
    }

    /// How the direct-map (linear-map) alias of the page containing
    /// `offset` is mapped: it must never be writable while the area is
    /// read-only or executable.
    pub fn probe_alias(&self, offset: usize) -> Result<PageInfo> {
        let p = self.at(offset, 1)?;
        // SAFETY: `p` is inside this vmalloc area, which `&self` keeps live;
        // its alias is the direct map's, which is never unmapped.
        unsafe { arch::probe(arch::alias_of(p).ok_or(EFAULT)?) }
    }
}

impl Drop for Area {
    fn drop(&mut self) {
        let ptr = self.addr.as_ptr().cast();
        match self.origin {
            Origin::Vmalloc => {
                if self.restore().is_err() {
                    // Freeing pages whose direct-map alias may still be
                    // read-only would fault their next owner: keep them.
                    pr_err!(
                        "cannot restore the permissions of a {} KiB area; leaking it\n",
                        self.size / 1024
                    );
                    return;
                }
                // SAFETY: we own the allocation (type invariant), nobody uses
                // it any more, and it is RW+NX like any vmalloc area, so a
                // plain vfree() in process context is all it needs.
                unsafe { bindings::vfree(ptr) };
            }
            // SAFETY: we own the allocation and nobody uses it any more;
            // vfree() in process context unmaps it and, for
            // VM_FLUSH_RESET_PERMS, gives the pages their linear-map alias
            // back before freeing them.
            Origin::Sealed => unsafe { bindings::vfree(ptr) },
            // SAFETY: we own the allocation; execmem_free() in process
            // context restores the permissions (VM_FLUSH_RESET_PERMS).
            #[cfg(execmem_rs_test)]
            Origin::Execmem => unsafe { bindings::execmem_free(ptr) },
        }
    }
}
