// SPDX-License-Identifier: GPL-2.0

//! The machine code the harness writes into executable allocations and
//! calls (x86-64).

/// `ENDBR64; mov eax, imm32; ret`: a complete function returning `imm`,
/// valid as the target of an indirect call with IBT.
pub fn ret_imm32(imm: u32) -> [u8; 10] {
    let i = imm.to_le_bytes();
    [0xf3, 0x0f, 0x1e, 0xfa, 0xb8, i[0], i[1], i[2], i[3], 0xc3]
}
