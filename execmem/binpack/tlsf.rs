// SPDX-License-Identifier: GPL-2.0

//! Size classes of the segregated free lists (TLSF-style).
//!
//! Sizes are in granules, `1..=PACK_GRANULES` (32768). Sizes below 4 have a
//! list each; above, every power-of-two range `[2^l, 2^(l+1))` is split into
//! 4 lists of equal width. That gives [`NLISTS`] = 57 lists, so one `u64`
//! bitmap per pack says which lists are non-empty and finding a list that
//! is guaranteed to fit is one mask and one `trailing_zeros`: O(1).

/// log2 of the number of second-level subdivisions.
const SL_SHIFT: u32 = 2;
/// Number of second-level subdivisions per power of two.
const SL: u32 = 1 << SL_SHIFT;

/// Number of lists: `list_of(PACK_GRANULES) + 1`.
pub const NLISTS: usize = 57;

/// floor(log2(g)) for g >= 1 (0 for g == 0).
const fn log2(g: u32) -> u32 {
    31u32.saturating_sub(g.leading_zeros())
}

/// The list a free block of `g` granules lives in.
pub const fn list_of(g: u32) -> u32 {
    if g < SL {
        return g;
    }
    let l = log2(g);
    // l >= SL_SHIFT here; the second level is the next SL_SHIFT bits.
    let sl = g.wrapping_shr(l.wrapping_sub(SL_SHIFT)) & (SL.wrapping_sub(1));
    l.wrapping_sub(SL_SHIFT - 1).wrapping_shl(SL_SHIFT) | sl
}

/// The first list whose every block has at least `g` granules: round `g` up
/// to the next list boundary, then map it.
pub const fn search_list(g: u32) -> u32 {
    if g < SL {
        return g;
    }
    let l = log2(g);
    let round = 1u32.wrapping_shl(l.wrapping_sub(SL_SHIFT)).wrapping_sub(1);
    list_of(g.saturating_add(round))
}

/// Smallest block size (granules) that lands in list `i` (for checks).
pub const fn list_min(i: u32) -> u32 {
    if i < SL {
        return i;
    }
    let fl = i.wrapping_shr(SL_SHIFT);
    let sl = i & SL.wrapping_sub(1);
    let l = fl.wrapping_add(SL_SHIFT - 1);
    (SL | sl).wrapping_shl(l.wrapping_sub(SL_SHIFT))
}

/// Lowest set bit of `bits` at position `>= from`, if any.
pub const fn lowest_from(bits: u64, from: u32) -> Option<u32> {
    let mask = match u64::MAX.checked_shl(from) {
        Some(m) => m,
        None => 0,
    };
    let m = bits & mask;
    if m == 0 {
        None
    } else {
        Some(m.trailing_zeros())
    }
}

/// Highest set bit of a non-zero `bits`.
pub const fn highest(bits: u64) -> Option<u32> {
    if bits == 0 {
        None
    } else {
        Some(63u32.saturating_sub(bits.leading_zeros()))
    }
}
