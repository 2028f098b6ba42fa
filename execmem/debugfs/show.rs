// SPDX-License-Identifier: GPL-2.0

//! Read-only debugfs files in a few lines each: the analogue of C's
//! `DEFINE_SHOW_ATTRIBUTE`. A file's type implements [`ShowFile`] (what it
//! shows, from the state every open shares); [`Show<T>`] is its
//! [`FileOps`], which only keeps a reference to that state per open.

use super::buf::Buf;
use crate::execmem::backend::debugfs::FileOps;
use core::marker::PhantomData;
use kernel::{prelude::*, sync::Arc};

/// What a read-only file shows.
pub trait ShowFile: 'static {
    /// The state every open of the file shares.
    type Shared: Send + Sync + 'static;

    /// The file's text, produced by a read at offset 0 or by an open file's
    /// first read.
    fn show(shared: &Arc<Self::Shared>, out: &mut Buf) -> Result;
}

/// The [`FileOps`] of a [`ShowFile`]: one per open file.
pub struct Show<T: ShowFile> {
    shared: Arc<T::Shared>,
    _file: PhantomData<fn() -> T>,
}

impl<T: ShowFile> FileOps for Show<T> {
    type Shared = T::Shared;

    fn open(shared: &Arc<T::Shared>) -> Result<Self> {
        Ok(Show {
            shared: shared.clone(),
            _file: PhantomData,
        })
    }

    fn show(&self, out: &mut Buf) -> Result {
        T::show(&self.shared, out)
    }
}
