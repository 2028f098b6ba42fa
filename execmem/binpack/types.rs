// SPDX-License-Identifier: GPL-2.0

//! The type table: the one place that says what each execmem type is.
//!
//! Callers name a [`ExecmemType`] and a size (and optionally an alignment).
//! Everything else (permission class, granularity, fill, whether the
//! type may share a pack) is looked up here. Architecture values live only in
//! [`arch`]; they never appear in the caller-facing API.

/// Architecture constants.
///
/// This is the only place in the core that knows about the architecture:
/// its PMD size, its trap instruction, its page size. The backend checks
/// them against the kernel's at build time; the host crate gets the x86-64
/// values.
pub mod arch {
    use super::Fill;

    /// log2 of [`PACK_SIZE`].
    pub const PACK_SHIFT: u32 = 21;
    /// Size of one pack: one PMD (2 MiB with 4 KiB pages, on x86-64 and
    /// arm64), so a pack is one page-table entry when the backend maps it
    /// with a huge page.
    pub const PACK_SIZE: usize = 1 << PACK_SHIFT;
    /// log2 of [`GRANULE`].
    pub const GRANULE_SHIFT: u32 = 6;
    /// Allocation granule: 64 bytes, one cache line (and bpf_prog_pack's
    /// chunk). A multiple of every trap's width, so a range that starts on a
    /// granule starts on a whole trap instruction.
    pub const GRANULE: usize = 1 << GRANULE_SHIFT;
    /// Granules in one pack (32768).
    pub const PACK_GRANULES: usize = PACK_SIZE >> GRANULE_SHIFT;
    /// What traps when executed: INT3, one byte.
    #[cfg(not(target_arch = "aarch64"))]
    pub const TRAP: Fill = Fill::byte(0xcc);
    /// What traps when executed: `BRK #0x100`, one 4-byte word (what the
    /// arm64 BPF JIT fills with).
    #[cfg(target_arch = "aarch64")]
    pub const TRAP: Fill = Fill::word(0xd420_2000);
    /// Largest supported alignment: one pack (packs are pack-aligned).
    pub const MAX_ALIGN: usize = PACK_SIZE;
    /// Base page size (only used for reporting and the peer models).
    pub const PAGE_SIZE: usize = 4096;
    /// Most packs (slots: shared packs and dedicated extents) per class:
    /// 512 slots, 1 GiB of shared packs, the size of the x86_64 module area.
    pub const MAX_PACKS: usize = 512;

    const _: () = assert!(GRANULE % TRAP.width() == 0);
}

/// What fresh and freed memory holds: a pattern of one byte or one 4-byte
/// little-endian word, repeated from the start of every range (ranges start
/// on a granule, a multiple of the width).
///
/// # Invariants
///
/// `width` is 1 or 4; with 1, `value` fits in a byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fill {
    value: u32,
    width: u8,
}

impl Fill {
    /// One byte, repeated.
    pub const fn byte(b: u8) -> Fill {
        // INVARIANT: width 1, a byte's value.
        Fill {
            value: b as u32,
            width: 1,
        }
    }

    /// One 4-byte word, repeated.
    pub const fn word(w: u32) -> Fill {
        // INVARIANT: width 4.
        Fill { value: w, width: 4 }
    }

    /// Width of the pattern in bytes: 1 or 4.
    pub const fn width(self) -> usize {
        self.width as usize
    }

    /// The byte it repeats, if it is a repeated byte (a word of four equal
    /// bytes is one too).
    pub fn as_byte(self) -> Option<u8> {
        let b = self.value.to_le_bytes();
        match self.width {
            1 => Some(b[0]),
            _ if b.iter().all(|&x| x == b[0]) => Some(b[0]),
            _ => None,
        }
    }

    /// The pattern as a 4-byte word (a byte repeated four times).
    pub fn as_word(self) -> u32 {
        match self.width {
            1 => self.value.wrapping_mul(0x0101_0101),
            _ => self.value,
        }
    }

    /// The byte at `offset` of a range filled with it.
    pub fn byte_at(self, offset: usize) -> u8 {
        let b = self.as_word().to_le_bytes();
        b.get(offset & 3).copied().unwrap_or(0)
    }
}

impl core::fmt::Display for Fill {
    /// `0xcc` for a byte, `0xd4202000` for a word.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.width {
            1 => write!(f, "{:#04x}", self.value),
            _ => write!(f, "{:#010x}", self.value),
        }
    }
}

/// Largest single allocation the engine accepts (64 MiB, the size of the
/// x86_64 module area is 1 GiB; no single module section comes near 64 MiB).
pub const MAX_ALLOC: usize = 64 << 20;

/// Permission class: types of one class share packs.
///
/// # Invariants
///
/// The discriminants are `0..NCLASSES`, in [`Class::ALL`] order, so
/// `self as usize` indexes a [`PerClass`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum Class {
    /// Read + execute (text, bpf, ftrace, kprobes).
    Rx = 0,
    /// Read-only (rodata, ro_after_init).
    Ro = 1,
    /// Read + write (data).
    Rw = 2,
}

/// Number of permission classes.
pub const NCLASSES: usize = 3;

/// What a permission class is: one row of the class table.
#[derive(Debug)]
pub struct ClassInfo {
    /// Short name ("rx", "ro", "rw").
    pub name: &'static str,
    /// Permission string as printed by debugfs ("r-x", "r--", "rw-").
    pub perms: &'static str,
    /// What fresh and freed memory of the class holds.
    pub fill: Fill,
}

/// The class table, the one place that says what each class is.
static CLASSES: PerClass<ClassInfo> = PerClass::new([
    ClassInfo {
        name: "rx",
        perms: "r-x",
        fill: arch::TRAP,
    },
    ClassInfo {
        name: "ro",
        perms: "r--",
        fill: Fill::byte(0),
    },
    ClassInfo {
        name: "rw",
        perms: "rw-",
        fill: Fill::byte(0),
    },
]);

impl Class {
    /// All classes, in index order.
    pub const ALL: [Class; NCLASSES] = [Class::Rx, Class::Ro, Class::Rw];

    /// The class's row of the class table.
    pub fn info(self) -> &'static ClassInfo {
        &CLASSES[self]
    }

    /// Short name ("rx", "ro", "rw").
    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// Permission string as printed by debugfs ("r-x", "r--", "rw-").
    pub fn perms(self) -> &'static str {
        self.info().perms
    }

    /// Position in [`Class::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }

    /// What fresh and freed memory of this class holds.
    pub fn fill(self) -> Fill {
        self.info().fill
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
    /// What fresh and freed memory holds: the trap for RX, zero otherwise.
    pub fill: Fill,
}

/// An execmem type, as named by callers.
///
/// # Invariants
///
/// The discriminants are `0..NTYPES`, in [`ExecmemType::ALL`] order, so
/// `self as usize` indexes a [`PerType`] (the type table among them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum ExecmemType {
    /// Module text.
    Text = 0,
    /// Module data (writable, includes .bss).
    Data = 1,
    /// Module read-only data.
    Rodata = 2,
    /// Module data that becomes read-only after init.
    RoAfterInit = 3,
    /// BPF JIT images.
    Bpf = 4,
    /// ftrace trampolines.
    Ftrace = 5,
    /// kprobes instruction slots.
    Kprobes = 6,
}

/// Number of execmem types.
pub const NTYPES: usize = 7;

/// Build one table row. The default alignment is one granule for every type:
/// the point of the engine is sub-page packing, and every section of a
/// module records its own alignment, so callers that need more (a module
/// section with 4 KiB alignment, a 2 MiB aligned text) pass it explicitly.
/// The fill is the class's (the class table's, in a const context).
const fn row(name: &'static str, class: Class) -> TypeInfo {
    TypeInfo {
        name,
        class,
        align: arch::GRANULE,
        granularity: arch::GRANULE,
        fill: match class {
            Class::Rx => arch::TRAP,
            Class::Ro | Class::Rw => Fill::byte(0),
        },
    }
}

/// The type table.
static TYPES: PerType<TypeInfo> = PerType::new([
    row("text", Class::Rx),
    row("data", Class::Rw),
    row("rodata", Class::Ro),
    row("ro_after_init", Class::Ro),
    row("bpf", Class::Rx),
    row("ftrace", Class::Rx),
    row("kprobes", Class::Rx),
]);

impl ExecmemType {
    /// All types, in table order.
    pub const ALL: [ExecmemType; NTYPES] = [
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
        self as usize
    }

    /// The table row of this type.
    pub fn info(self) -> &'static TypeInfo {
        &TYPES[self]
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

/// An array with one element per key of an enum whose discriminants are
/// `0..N` (its `# Invariants`), indexed by the enum: `per[ty]` instead of
/// `arr[ty.index()]` and a seven-arm match.
macro_rules! per_key {
    ($(#[$doc:meta])* $name:ident, $key:ty, $n:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct $name<T>([T; $n]);

        impl<T> $name<T> {
            /// From the elements, in the keys' `ALL` order.
            pub const fn new(elems: [T; $n]) -> Self {
                $name(elems)
            }

            /// Each key with its element, in `ALL` order.
            pub fn iter(&self) -> impl Iterator<Item = ($key, &T)> {
                <$key>::ALL.into_iter().zip(self.0.iter())
            }

            /// The elements, in `ALL` order.
            pub fn values(&self) -> core::slice::Iter<'_, T> {
                self.0.iter()
            }
        }

        impl<T> core::ops::Index<$key> for $name<T> {
            type Output = T;

            // In bounds: the key's discriminant is below `N` (its type
            // invariant, checked at compile time below).
            #[allow(clippy::indexing_slicing)]
            fn index(&self, key: $key) -> &T {
                &self.0[key as usize]
            }
        }

        impl<T> core::ops::IndexMut<$key> for $name<T> {
            // In bounds, as above.
            #[allow(clippy::indexing_slicing)]
            fn index_mut(&mut self, key: $key) -> &mut T {
                &mut self.0[key as usize]
            }
        }
    };
}

// Every discriminant is below the count: the indexing above never misses.
// (Evaluated at compile time: an out-of-range index fails the build.)
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
const _: () = {
    let mut i = 0;
    while i < NTYPES {
        assert!(ExecmemType::ALL[i] as usize == i);
        i += 1;
    }
    let mut j = 0;
    while j < NCLASSES {
        assert!(Class::ALL[j] as usize == j);
        j += 1;
    }
};

per_key!(
    /// One `T` per [`ExecmemType`].
    PerType,
    ExecmemType,
    NTYPES
);
per_key!(
    /// One `T` per permission [`Class`].
    PerClass,
    Class,
    NCLASSES
);
