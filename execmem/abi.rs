// SPDX-License-Identifier: GPL-2.0

//! The debugfs ABI: `/sys/kernel/debug/execmem_rs/` and its files.
//!
//! | file       | mode | what                                              |
//! |------------|------|---------------------------------------------------|
//! | `selftest` | 0400 | read: run the end-to-end probe, KTAP out          |
//!
//! Documentation/execmem_rs.rst describes every file exactly as here.

use crate::execmem::backend::debugfs::{Dir, File, FileOps};
use crate::execmem::{selftest, text::Text};
use kernel::{c_str, prelude::*, sync::Arc, ThisModule};

/// The directory and the files in it, removed on drop.
pub struct Files {
    // Fields drop in order: files first, then their directory.
    _selftest: File<Selftest>,
    _dir: Dir,
}

impl Files {
    /// Creates the directory and every file.
    pub fn new(module: &'static ThisModule) -> Result<Self> {
        let dir = Dir::new(c_str!("execmem_rs"))?;
        let selftest =
            dir.file::<Selftest>(c_str!("selftest"), 0o400, Arc::new((), GFP_KERNEL)?, module)?;
        Ok(Files {
            _selftest: selftest,
            _dir: dir,
        })
    }
}

/// `selftest`: each open runs the probe at its first read.
struct Selftest;

impl FileOps for Selftest {
    type Shared = ();

    fn open(_shared: &Arc<()>) -> Result<Self> {
        Ok(Selftest)
    }

    fn show(&mut self, out: &mut Text) -> Result {
        let failed = selftest::run(out)?;
        if failed != 0 {
            pr_err!("selftest: {failed} check(s) failed\n");
        }
        Ok(())
    }
}
