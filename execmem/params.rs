// SPDX-License-Identifier: GPL-2.0

//! Module parameters: the resource bounds.
//!
//! The x86-64 module range is 1 GiB and is shared with the kernel's own
//! modules, BPF programs and kprobes; a user of execmem_rs must not be able
//! to take all of it (or all memory). Both bounds can be changed at run time
//! in `/sys/module/execmem_rs/parameters/` (root only).
//!
//! - `global_cap`: bytes of packs execmem_rs maps, over all classes and
//!   users (default 512 MiB, half the module range). A request that would
//!   need more fails with `ENOSPC`.
//! - `session_cap`: bytes one `ctl` session may have allocated (requested
//!   sizes; default 256 MiB). A request above it fails with `EDQUOT`.
//! - `serve`: which of the kernel's users of executable memory to serve
//!   (`bpf`, `kprobes`, both comma-separated, or `none`, the default): at
//!   load, and at run time by a write to its sysfs file (or to the debugfs
//!   file `serve`, which shows what is served too). A bad value is
//!   `EINVAL`.

crate::module_param_ulong!(
    GLOBAL_CAP,
    "global_cap",
    512 << 20,
    0o644,
    "Bytes of packs mapped at most, all classes (default 512 MiB)"
);

crate::module_param_flags!(
    SERVE,
    "serve",
    0,
    &crate::execmem::provider::SERVE_NAMES,
    0o644,
    "Which of the kernel's users to serve: bpf,kprobes (any) or none (default)"
);

crate::module_param_ulong!(
    SESSION_CAP,
    "session_cap",
    256 << 20,
    0o644,
    "Bytes one ctl session may hold (default 256 MiB)"
);
