// SPDX-License-Identifier: GPL-2.0

//! The debugfs interface: `/sys/kernel/debug/execmem_rs/` and its files,
//! each in a source file of its own here ([`Files`] is the table below).
//!
//! | file       | mode | what                                                   |
//! |------------|------|--------------------------------------------------------|
//! | `types`    | 0400 | the type table: `name class perms align granularity fill` |
//! | `ctl`      | 0600 | command channel, one session per open file ([`ctl`])  |
//! | `stats`    | 0400 | `key value` counters per type, per class and in total  |
//! | `packs`    | 0400 | one block per pack with a 64-cell occupancy map        |
//! | `serve`    | 0600 | which kernel users are served; what they hold ([`provider`]) |
//! | `selftest` | 0400 | read: run the end-to-end probe, KTAP out ([`test`])    |
//! | `stress`   | 0600 | write: run the stress runner; read: its report         |
//! | `bench`    | 0600 | write: run a benchmark; read: its table                |
//!
//! The last three are the test harness's, present only in a build with it
//! ([`test`]).
//!
//! No file prints a kernel address: packs are numbered, allocations are
//! placed by pack number and offset. Documentation/execmem_rs.rst describes
//! every file exactly as here. Read-only files go through [`show`];
//! [`parse`] is the command parser; [`buf`] the buffer a read returns.
//!
//! [`test`]: crate::execmem::test
//! [`provider`]: crate::execmem::provider

pub mod buf;
pub mod ctl;
pub mod packs;
pub mod parse;
pub mod show;
pub mod stats;
pub mod types;

use crate::execmem::allocator::Allocator;
use crate::execmem::backend::debugfs::{Dir, File};
use crate::execmem::provider::{Provider, ServeFile};
use ctl::Session;
use kernel::{c_str, prelude::*, sync::Arc};
use packs::PacksFile;
use show::Show;
use stats::StatsFile;
use types::TypesFile;

/// The directory and the files in it, removed on drop.
pub struct Files {
    // Fields drop in order: files first, then their directory.
    _types: File<Show<TypesFile>>,
    _ctl: File<Session>,
    _stats: File<Show<StatsFile>>,
    _packs: File<Show<PacksFile>>,
    _serve: File<ServeFile>,
    #[cfg(execmem_rs_test)]
    _test: crate::execmem::test::Files,
    _dir: Dir,
}

impl Files {
    /// Creates the directory and every file.
    pub fn new(alloc: &Arc<Allocator>, provider: &Arc<Provider>) -> Result<Self> {
        let dir = Dir::new(c_str!("execmem_rs"))?;
        Ok(Files {
            _types: dir.file(c_str!("types"), alloc.clone())?,
            _ctl: dir.file(c_str!("ctl"), alloc.clone())?,
            _stats: dir.file(c_str!("stats"), alloc.clone())?,
            _packs: dir.file(c_str!("packs"), alloc.clone())?,
            _serve: dir.file(c_str!("serve"), provider.clone())?,
            #[cfg(execmem_rs_test)]
            _test: crate::execmem::test::Files::new(&dir, alloc)?,
            _dir: dir,
        })
    }
}
