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
    // Dropped in order: the kernel's users are told we are gone (none holds
    // our memory: the hook's reference per allocation would pin the
    // module; kprobes pages freed but not yet released may still be parked
    // in the provider, whose drop releases them), the files (no new users),
    // then our references.
    _served: execmem::backend::provider::Registration,
    _files: Option<execmem::debugfs::Files>,
    _provider: Arc<execmem::provider::Provider>,
    alloc: Arc<execmem::allocator::Allocator>,
}

impl kernel::Module for ExecmemRs {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let alloc = execmem::allocator::Allocator::new()?;
        // Serves what the parameter says (the kernel refused a bad value).
        let provider = execmem::provider::Provider::new(&alloc, &execmem::params::SERVE)?;
        let server: Arc<dyn execmem::backend::provider::Serve> = provider.clone();
        // SAFETY: the last fallible step of init; dropped only by exit.
        let served = unsafe { execmem::backend::provider::Registration::new(server) }?;
        // The files last, and their failure not the module's (as debugfs
        // wants): a file opened while init could still fail would outlive
        // the code its release runs (a failed init frees the module
        // whatever its references). One opened before a later file failed
        // outlives its removal: its operations are the module's constants
        // (backend::debugfs).
        let files = match execmem::debugfs::Files::new(&alloc, &provider) {
            Ok(files) => {
                pr_info!("loaded: /sys/kernel/debug/execmem_rs/\n");
                Some(files)
            }
            Err(e) => {
                // Serving is still switched by the parameter's sysfs file.
                pr_warn!("loaded without /sys/kernel/debug/execmem_rs/: {:?}\n", e);
                None
            }
        };
        Ok(ExecmemRs {
            _served: served,
            _files: files,
            _provider: provider,
            alloc,
        })
    }
}

impl Drop for ExecmemRs {
    fn drop(&mut self) {
        let mut live = 0;
        let mut backing = 0;
        for class in execmem::binpack::types::Class::ALL {
            let r = self.alloc.report(class);
            live += r.engine.live;
            backing += r.engine.backing;
        }
        // Open files pin the module, so no session is left; whatever is
        // still mapped here is the spare packs, unmapped with the allocator.
        pr_info!("unloaded: {live} live allocations, {backing} bytes of packs released\n");
    }
}
