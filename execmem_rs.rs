// SPDX-License-Identifier: GPL-2.0

//! execmem_rs: a type-aware, binpacking allocator for executable memory.
//!
//! Callers ask for memory of a type (module text, data, rodata,
//! ro_after_init, BPF, ftrace, kprobes); allocations of the same permission
//! class share 2 MiB packs in the module range, read-only and executable
//! memory is written only through `text_poke`, and freed ranges are filled
//! with trapping instructions. The test interface is debugfs
//! `/sys/kernel/debug/execmem_rs/`; see Documentation/execmem_rs.rst.

use kernel::{prelude::*, sync::Arc};

pub mod execmem;

module! {
    type: ExecmemRs,
    name: "execmem_rs",
    author: "execmem_rs developers",
    description: "Type-aware binpacking allocator for executable memory",
    license: "GPL",
}

struct ExecmemRs {
    // Dropped in order: the files (no new users), then our reference.
    _files: execmem::abi::Files,
    alloc: Arc<execmem::allocator::Allocator>,
}

impl kernel::Module for ExecmemRs {
    fn init(module: &'static ThisModule) -> Result<Self> {
        let alloc = execmem::allocator::Allocator::new()?;
        let files = execmem::abi::Files::new(module, &alloc)?;
        pr_info!("loaded: /sys/kernel/debug/execmem_rs/\n");
        Ok(ExecmemRs {
            _files: files,
            alloc,
        })
    }
}

impl Drop for ExecmemRs {
    fn drop(&mut self) {
        let mut live = 0;
        let mut backing = 0;
        for class in execmem::core_engine::types::Class::ALL {
            let r = self.alloc.report(class);
            live += r.engine.live;
            backing += r.engine.backing;
        }
        // Open files pin the module, so no session is left; whatever is
        // still mapped here is the spare packs, unmapped with the allocator.
        pr_info!("unloaded: {live} live allocations, {backing} bytes of packs released\n");
    }
}
