// SPDX-License-Identifier: GPL-2.0

//! debugfs `packs`: one block per pack, with a 64-cell occupancy map, and
//! how the page tables map its first page and that page's direct-map alias
//! (`pte=`, `alias=`: `r-x`, `r--`, `rw-`, `none`).

use super::buf::Buf;
use super::show::ShowFile;
use crate::execmem::allocator::Allocator;
use crate::execmem::binpack::types::Class;
use core::fmt::Write;
use kernel::{prelude::*, sync::Arc};

/// `packs`: one block per pack.
pub struct PacksFile;

impl ShowFile for PacksFile {
    type Shared = Allocator;

    fn show(alloc: &Arc<Allocator>, out: &mut Buf) -> Result {
        for class in Class::ALL {
            alloc.for_each_pack(class, |p| {
                let i = &p.info;
                Buf::result(writeln!(
                    out,
                    "pack {}.{} class={} mapping={} size={} used={} live={} free_extents={} \
                     largest_free={}{} pte={} alias={}",
                    class.name(),
                    p.index,
                    class.name(),
                    if p.huge { "2M" } else { "4K" },
                    if i.pages != 0 {
                        i.pages * crate::execmem::backend::mem::PAGE_SIZE
                    } else {
                        i.npacks * crate::execmem::backend::mem::PMD_SIZE
                    },
                    i.used,
                    i.live,
                    i.free_extents,
                    i.largest_free,
                    if i.pages != 0 {
                        " overflow"
                    } else if i.dedicated {
                        " dedicated"
                    } else {
                        ""
                    },
                    p.page.map_or("unknown", |p| p.perms()),
                    p.alias.map_or("unknown", |p| p.perms()),
                ))?;
                out.push(b"  [")?;
                out.push(&p.map)?;
                out.push(b"]\n")
            })?;
        }
        Ok(())
    }
}
