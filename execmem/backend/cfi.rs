// SPDX-License-Identifier: GPL-2.0

//! Refuses kernels with kCFI at build time.
//!
//! execmem_rs calls code it wrote through a plain function pointer
//! ([`super::window::Window::call`]). Under kCFI (`CONFIG_CFI_CLANG`) every
//! indirect call first checks a type hash placed in front of its target,
//! which written code does not carry: the call would trap. Rather than a
//! module that oopses on its first call, no module.

#[cfg(CONFIG_CFI_CLANG)]
compile_error!(
    "execmem_rs: CONFIG_CFI_CLANG is set, but execmem_rs calls code it wrote through a \
     plain function pointer and written code carries no kCFI type hash: every such call \
     would trap. Build the kernel without CONFIG_CFI_CLANG."
);
