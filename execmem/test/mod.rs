// SPDX-License-Identifier: GPL-2.0

//! The test harness, kept apart from the allocator it tests (as
//! `lib/test_vmalloc.c` is apart from vmalloc): the debugfs files
//! `selftest`, `stress` and `bench`, and the code they run.
//!
//! Compiled only with `--cfg execmem_rs_test`, which `Kbuild` sets when
//! `EXECMEM_RS_TEST=y`. The project's own builds (`make`, `make check`,
//! `make demo`) ask for it; a plain `make KDIR=<tree>` builds the allocator
//! without it unless `EXECMEM_RS_TEST=y` is given too. Nothing outside this
//! directory uses it but the debugfs directory, which creates [`Files`].
//!
//! - [`selftest`]: the end-to-end probe, KTAP out.
//! - [`stress`]: the multi-threaded stress runner.
//! - [`bench`]: execmem_rs against the kernel's own execmem path.
//! - `misuse`: code the API must refuse to build, one case per build
//!   (`scripts/misuse-check.sh`).

pub mod bench;
mod misuse;
pub mod selftest;
pub mod stress;

use crate::execmem::allocator::Allocator;
use crate::execmem::backend::debugfs::{Dir, File};
use crate::execmem::debugfs::show::Show;
use bench::{Bench, BenchState};
use kernel::{c_str, prelude::*, sync::Arc};
use selftest::SelftestFile;
use stress::{Stress, StressState};

/// The harness's debugfs files, removed on drop (before their directory).
pub struct Files {
    _selftest: File<Show<SelftestFile>>,
    _stress: File<Stress>,
    _bench: File<Bench>,
}

impl Files {
    /// Creates `selftest`, `stress` and `bench` in `dir`.
    pub fn new(dir: &Dir, alloc: &Arc<Allocator>) -> Result<Self> {
        Ok(Files {
            _selftest: dir.file(c_str!("selftest"), alloc.clone())?,
            _stress: dir.file(c_str!("stress"), StressState::new(alloc)?)?,
            _bench: dir.file(c_str!("bench"), BenchState::new(alloc)?)?,
        })
    }
}
