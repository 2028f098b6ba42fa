// SPDX-License-Identifier: GPL-2.0

//! debugfs `types`: the type table, one line per type.

use super::buf::Buf;
use super::show::ShowFile;
use crate::execmem::allocator::Allocator;
use crate::execmem::binpack::types::ExecmemType;
use core::fmt::Write;
use kernel::{prelude::*, sync::Arc};

/// `types`: the type table.
pub struct TypesFile;

impl ShowFile for TypesFile {
    type Shared = Allocator;

    fn show(_: &Arc<Allocator>, out: &mut Buf) -> Result {
        Buf::result(writeln!(out, "name class perms align granularity fill"))?;
        for ty in ExecmemType::ALL {
            let i = ty.info();
            Buf::result(writeln!(
                out,
                "{} {} {} {} {} {}",
                i.name,
                i.class.name(),
                i.class.perms(),
                i.align,
                i.granularity,
                i.fill
            ))?;
        }
        Ok(())
    }
}
