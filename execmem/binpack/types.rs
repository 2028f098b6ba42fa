// SPDX-License-Identifier: GPL-2.0

//! The type table: the one place that says what each execmem type is.
//!
//! Callers name a [`ExecmemType`] and a size (and optionally an alignment).
//! Everything else (permission class, granularity, fill byte, whether the
//! type may share a pack) is looked up here. Architecture values live only in
//! [`arch`]; they never appear in the caller-facing API.

/// Architecture constants (x86_64).
///
/// This is the only place in the core that knows about the architecture.
/// Another architecture would plug in here (e.g. behind `#[cfg(target_arch)]`):
/// its PMD size, its trap instruction byte, its page size.
pub mod arch {
    /// log2 of [`PACK_SIZE`].
    pub const PACK_SHIFT: u32 = 21;
    /// Size of one pack: one PMD (2 MiB) on x86_64, so a pack is one
    /// page-table entry when the backend maps it with a huge page.
    pub const PACK_SIZE: usize = 1 << PACK_SHIFT;
    /// log2 of [`GRANULE`].
    pub const GRANULE_SHIFT: u32 = 6;
    /// Allocation granule: 64 bytes, one cache line (and bpf_prog_pack's chunk).
    pub const GRANULE: usize = 1 << GRANULE_SHIFT;
    /// Granules in one pack (32768).
    pub const PACK_GRANULES: usize = PACK_SIZE >> GRANULE_SHIFT;
    /// Byte that traps when executed: INT3.
    pub const TRAP_BYTE: u8 = 0xcc;
    /// Largest supported alignment: one pack (packs are pack-aligned).
    pub const MAX_ALIGN: usize = PACK_SIZE;
    /// Base page size (only used for reporting and the peer models).
    pub const PAGE_SIZE: usize = 4096;
    /// Most packs (slots: shared packs and dedicated extents) per class:
    /// 512 slots, 1 GiB of shared packs, the size of the x86_64 module area.
    pub const MAX_PACKS: usize = 512;
}

/// Largest single allocation the engine accepts (64 MiB, the size of the
/// x86_64 module area is 1 GiB; no single module section comes near 64 MiB).
pub const MAX_ALLOC: usize = 64 << 20;

/// Permission class: types of one class share packs.
///
/// # Invariants
///
/// `index()` is the position in [`Class::ALL`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Read + execute (text, bpf, ftrace, kprobes).
    Rx,
    /// Read-only (rodata, ro_after_init).
    Ro,
    /// Read + write (data).
    Rw,
}

impl Class {
    /// All classes, in index order.
    pub const ALL: [Class; 3] = [Class::Rx, Class::Ro, Class::Rw];

    /// Short name ("rx", "ro", "rw").
    pub const fn name(self) -> &'static str {
        match self {
            Class::Rx => "rx",
            Class::Ro => "ro",
            Class::Rw => "rw",
        }
    }

    /// Permission string as printed by debugfs ("r-x", "r--", "rw-").
    pub const fn perms(self) -> &'static str {
        match self {
            Class::Rx => "r-x",
            Class::Ro => "r--",
            Class::Rw => "rw-",
        }
    }

    /// Position in [`Class::ALL`].
    pub const fn index(self) -> usize {
        match self {
            Class::Rx => 0,
            Class::Ro => 1,
            Class::Rw => 2,
        }
    }

    /// Byte written into fresh and freed memory of this class.
    pub const fn fill(self) -> u8 {
        match self {
            Class::Rx => arch::TRAP_BYTE,
            Class::Ro | Class::Rw => 0,
        }
    }
}

/// What the engine needs to know about a type.
#[derive(Debug)]
pub struct TypeInfo {
    /// Name as used in debugfs and on the command line.
    pub name: &'static str,
    /// Permission class (which packs it shares).
    pub class: Class,
    /// Default alignment in bytes when the caller passes none.
    pub align: usize,
    /// Allocation granularity in bytes (sizes are rounded up to it).
    pub granularity: usize,
    /// Byte for fresh and freed memory: INT3 for RX, zero otherwise.
    pub fill: u8,
    /// Whether allocations of this type may share a pack with others.
    pub packable: bool,
}

/// An execmem type, as named by callers.
///
/// # Invariants
///
/// `self as usize` indexes [`ExecmemType::ALL`] and the type table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExecmemType {
    /// Module text.
    Text,
    /// Module data (writable, includes .bss).
    Data,
    /// Module read-only data.
    Rodata,
    /// Module data that becomes read-only after init.
    RoAfterInit,
    /// BPF JIT images.
    Bpf,
    /// ftrace trampolines.
    Ftrace,
    /// kprobes instruction slots.
    Kprobes,
}

/// Build one table row. The default alignment is one granule for every type:
/// the point of the engine is sub-page packing, and every section of a
/// module records its own alignment, so callers that need more (a module
/// section with 4 KiB alignment, a 2 MiB aligned text) pass it explicitly.
const fn row(name: &'static str, class: Class) -> TypeInfo {
    TypeInfo {
        name,
        class,
        align: arch::GRANULE,
        granularity: arch::GRANULE,
        fill: class.fill(),
        packable: true,
    }
}

/// The type table, indexed by `ExecmemType as usize`.
static TYPES: [TypeInfo; 7] = [
    row("text", Class::Rx),
    row("data", Class::Rw),
    row("rodata", Class::Ro),
    row("ro_after_init", Class::Ro),
    row("bpf", Class::Rx),
    row("ftrace", Class::Rx),
    row("kprobes", Class::Rx),
];

impl ExecmemType {
    /// All types, in table order.
    pub const ALL: [ExecmemType; 7] = [
        ExecmemType::Text,
        ExecmemType::Data,
        ExecmemType::Rodata,
        ExecmemType::RoAfterInit,
        ExecmemType::Bpf,
        ExecmemType::Ftrace,
        ExecmemType::Kprobes,
    ];

    /// Position in [`ExecmemType::ALL`].
    pub const fn index(self) -> usize {
        match self {
            ExecmemType::Text => 0,
            ExecmemType::Data => 1,
            ExecmemType::Rodata => 2,
            ExecmemType::RoAfterInit => 3,
            ExecmemType::Bpf => 4,
            ExecmemType::Ftrace => 5,
            ExecmemType::Kprobes => 6,
        }
    }

    /// The table row of this type.
    pub fn info(self) -> &'static TypeInfo {
        // Destructure instead of indexing: no bounds check, no panic path.
        let [text, data, rodata, ro_after_init, bpf, ftrace, kprobes] = &TYPES;
        match self {
            ExecmemType::Text => text,
            ExecmemType::Data => data,
            ExecmemType::Rodata => rodata,
            ExecmemType::RoAfterInit => ro_after_init,
            ExecmemType::Bpf => bpf,
            ExecmemType::Ftrace => ftrace,
            ExecmemType::Kprobes => kprobes,
        }
    }

    /// Name of the type ("text", "data", ...).
    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// Permission class of the type.
    pub fn class(self) -> Class {
        self.info().class
    }

    /// Parse a name as written by [`ExecmemType::name`].
    pub fn from_name(name: &[u8]) -> Option<Self> {
        Self::ALL
            .iter()
            .copied()
            .find(|t| t.name().as_bytes() == name)
    }

    /// Type from its index (for compact storage).
    pub fn from_index(i: usize) -> Option<Self> {
        Self::ALL.get(i).copied()
    }
}
