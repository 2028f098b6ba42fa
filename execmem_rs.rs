// SPDX-License-Identifier: GPL-2.0

//! execmem_rs: a type-aware, binpacking allocator for executable memory.
//!
//! Callers ask for memory of a type (module text, data, rodata,
//! ro_after_init, BPF, ftrace, kprobes); allocations of the same permission
//! class share 2 MiB packs in the module range, read-only and executable
//! memory is written only through `text_poke`, and freed ranges are filled
//! with trapping instructions. The test interface is debugfs
//! `/sys/kernel/debug/execmem_rs/`; see Documentation/execmem_rs.rst.

use kernel::prelude::*;

pub mod execmem;

module! {
    type: ExecmemRs,
    name: "execmem_rs",
    author: "execmem_rs developers",
    description: "Type-aware binpacking allocator for executable memory",
    license: "GPL",
}

struct ExecmemRs {
    _files: execmem::abi::Files,
}

impl kernel::Module for ExecmemRs {
    fn init(module: &'static ThisModule) -> Result<Self> {
        let files = execmem::abi::Files::new(module)?;
        pr_info!("loaded: /sys/kernel/debug/execmem_rs/\n");
        Ok(ExecmemRs { _files: files })
    }
}

impl Drop for ExecmemRs {
    fn drop(&mut self) {
        pr_info!("unloaded\n");
    }
}
