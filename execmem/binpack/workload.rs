// SPDX-License-Identifier: GPL-2.0

//! What the benchmarks and stress runs replay, shared by the host crate and
//! the kernel's test harness so that both quote the same workloads: the
//! PRNG and the BPF program-size distribution. Integer-only: the kernel
//! has no floating point.

/// The seed of the BPF-size stream of the `bpf` workloads (host and
/// kernel bench).
pub const BPF_SEED: u64 = 0x5eed_0002;

/// xorshift64*: a fast, seedable, deterministic PRNG (not for crypto).
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`; every seed (0 included) gives a usable,
    /// distinct stream.
    pub const fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64().checked_rem(n).unwrap_or(0)
    }
}

/// A BPF program size drawn from `rng`: half below 500 B, three quarters
/// below 2 KiB, a fifth from 2 to 16 KiB, a tail up to 64 KiB (the
/// published fleet numbers, `Documentation/performance.rst`).
pub fn bpf_size(rng: &mut Rng) -> usize {
    let (lo, span) = match rng.below(100) {
        0..=49 => (64, 436),
        50..=74 => (500, 1548),
        75..=94 => (2048, 14336),
        _ => (16384, 49152),
    };
    let r = usize::try_from(rng.below(span)).unwrap_or(0);
    r.saturating_add(lo)
}
