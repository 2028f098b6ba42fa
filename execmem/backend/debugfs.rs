// SPDX-License-Identifier: GPL-2.0

//! debugfs: a directory and files whose behaviour is a safe Rust type.
//!
//! 6.12's kernel crate has no debugfs abstraction. This is the smallest one
//! execmem_rs needs: a [`Dir`] and [`File`]s in it, each removed on drop
//! (the directory once its handle and its files' are all gone), whose open,
//! read and write(2) are forwarded to a [`FileOps`] value created per open
//! file and dropped on the last close.
//!
//! Reads are positional (`*ppos`), like `seq_file`: a read at offset 0, or
//! the first read of an open file at any offset, produces the file's text
//! afresh ([`FileOps::show`]) unless a write(2) on this open file left a
//! reply, which is then what reads return; `pread` and `lseek(0)` start
//! over; a zero-length read does nothing. A write(2) is one command
//! ([`FileOps::command`]); it runs with no lock of this layer held, so a
//! command that waits (or runs code) blocks nobody else. Its reply
//! replaces the previous one, and the first read after it starts at
//! the reply's beginning (a failed write(2) cannot move the file position,
//! so the position alone could not say where its `error:` reply starts).
//!
//! Lifetimes: files are created with full debugfs proxies and `owner` set
//! to this module, so an open file pins the module, and `debugfs_remove()`
//! waits for callbacks in flight and refuses new ones. The operation
//! tables are constants, one per [`FileOps`] type, in the module's image:
//! a file removed while open (init dropping the files it made when a later
//! one failed) is still released through its table, which the proxy reads
//! after `debugfs_remove()` returned.

use crate::execmem::debugfs::buf::Buf;
use core::{ffi::c_void, marker::PhantomData, ptr};
use kernel::{
    bindings,
    error::{code::*, from_err_ptr},
    prelude::*,
    str::CStr,
    sync::{new_mutex, Arc, Mutex},
    types::ForeignOwnable,
    uaccess::UserSlice,
};

/// Longest write(2) a file accepts; longer ones fail with `E2BIG`.
pub const MAX_WRITE: usize = 65536;

/// A failed command: the errno write(2) returns and the reason a following
/// read returns as `error: <reason>`.
#[derive(Clone, Copy, Debug)]
pub struct Failure {
    /// Returned by write(2).
    pub err: Error,
    /// One line, no newline.
    pub reason: &'static str,
}

impl Failure {
    /// A failure with errno `err` and `reason`.
    pub fn new(err: Error, reason: &'static str) -> Self {
        Failure { err, reason }
    }
}

/// The behaviour of a debugfs file, one value per open file.
///
/// The value is shared by every thread that uses the open file, so its
/// methods take `&self` and it locks what it changes.
pub trait FileOps: Send + Sync + Sized + 'static {
    /// State shared by every open of the file.
    type Shared: Send + Sync + 'static;

    /// Whether write(2) takes commands: the file's mode is then 0600, else
    /// 0400. Root may still open a read-only file for writing; its writes
    /// fail with `EPERM` and leave what reads return as it was.
    const WRITABLE: bool = false;

    /// open(2): creates the per-open value.
    fn open(shared: &Arc<Self::Shared>) -> Result<Self>;

    /// The file's text, produced by a read at offset 0 or by an open file's
    /// first read. Files with nothing to show write nothing.
    fn show(&self, _out: &mut Buf) -> Result {
        Ok(())
    }

    /// One write(2) = one command; its reply is what reads return next. A
    /// failed command must change nothing: reserve room in `out` for the
    /// reply before anything takes effect. Called only if
    /// [`Self::WRITABLE`]: every such file implements it, so the default
    /// is only a refusal for one that would not.
    fn command(&self, _input: &[u8], _out: &mut Buf) -> Result<(), Failure> {
        Err(Failure::new(EPERM, "file is read-only"))
    }
}

/// A debugfs directory's dentry, removed (with whatever is left in it) when
/// the last [`Dir`] or [`File`] holding it drops.
///
/// # Invariants
///
/// `dentry` is a live debugfs directory created by [`Dir::new`].
struct DirEntry {
    dentry: *mut bindings::dentry,
}

// SAFETY: a dentry pointer may be used (removed) from any thread.
unsafe impl Send for DirEntry {}
// SAFETY: `&DirEntry` only lets other code create files under it, which
// debugfs serialises itself.
unsafe impl Sync for DirEntry {}

impl Drop for DirEntry {
    fn drop(&mut self) {
        // SAFETY: the directory is live (type invariant): every `File` made
        // in it holds this entry, so all of them were dropped (and removed
        // their files) before this runs; anything else in it goes too.
        unsafe { bindings::debugfs_remove(self.dentry) };
    }
}

/// A debugfs directory. It is removed when this handle and every [`File`]
/// made in it have dropped, in any order: a file never outlives its
/// directory's dentry.
pub struct Dir {
    entry: Arc<DirEntry>,
}

impl Dir {
    /// Creates `/sys/kernel/debug/<name>/` with mode 0700.
    pub fn new(name: &CStr) -> Result<Self> {
        // SAFETY: `name` is NUL-terminated; a NULL parent is the debugfs root.
        let d = unsafe { bindings::debugfs_create_dir(name.as_char_ptr(), ptr::null_mut()) };
        let dentry = from_err_ptr(d)?;
        if dentry.is_null() {
            return Err(ENODEV);
        }
        // SAFETY: the dentry is live until we remove it, so its inode is
        // too. 6.12's debugfs_create_dir() takes no mode: set it under the
        // inode lock, as notify_change() would, before anything is created
        // in the directory.
        unsafe {
            let inode = (*dentry).d_inode;
            bindings::inode_lock(inode);
            (*inode).i_mode = (bindings::S_IFDIR | 0o700) as u16;
            bindings::inode_unlock(inode);
        }
        // INVARIANT: just created. If there is no memory for the `Arc`,
        // the entry is dropped, which removes the directory.
        Ok(Dir {
            entry: Arc::new(DirEntry { dentry }, GFP_KERNEL)?,
        })
    }

    /// Creates file `name`, served by `T`: mode 0600 if it takes commands
    /// ([`FileOps::WRITABLE`]), else 0400.
    pub fn file<T: FileOps>(&self, name: &CStr, shared: Arc<T::Shared>) -> Result<File<T>> {
        let mode = if T::WRITABLE { 0o600 } else { 0o400 };
        let data = shared.into_foreign();
        // SAFETY: `name` is NUL-terminated, the parent is live (`DirEntry`'s
        // invariant), `data` stays valid until `File::drop` removes the file
        // (the full proxy then stops new calls), and the operations are a
        // constant of the module's image, which outlives every open file.
        let d = unsafe {
            bindings::debugfs_create_file(
                name.as_char_ptr(),
                mode,
                self.entry.dentry,
                data.cast_mut(),
                Vtable::<T>::build(),
            )
        };
        match from_err_ptr(d) {
            Ok(dentry) if !dentry.is_null() => Ok(File {
                dentry,
                data,
                _dir: self.entry.clone(),
                _t: PhantomData,
            }),
            r => {
                // SAFETY: `data` came from `into_foreign` above and no file
                // refers to it.
                drop(unsafe { Arc::<T::Shared>::from_foreign(data) });
                Err(r.err().unwrap_or(ENODEV))
            }
        }
    }
}

/// Whether `/sys/kernel/debug/<name>` exists (for the self-test of
/// [`Dir`]'s lifetime).
#[cfg(execmem_rs_test)]
pub fn exists(name: &CStr) -> bool {
    // SAFETY: `name` is NUL-terminated; a NULL parent is the debugfs root.
    let d = unsafe { bindings::debugfs_lookup(name.as_char_ptr(), ptr::null_mut()) };
    if d.is_null() || from_err_ptr(d).is_err() {
        return false;
    }
    // SAFETY: debugfs_lookup() returned a reference to a live dentry: ours
    // to put.
    unsafe { bindings::dput(d) };
    true
}

/// A debugfs file served by `T`; removed on drop.
///
/// # Invariants
///
/// `dentry` is a live debugfs file in the directory `_dir`, whose
/// `i_private` is `data`, a pointer from `Arc::<T::Shared>::into_foreign`,
/// and whose operations are `Vtable::<T>::FOPS`.
pub struct File<T: FileOps> {
    dentry: *mut bindings::dentry,
    data: *const c_void,
    /// Keeps the directory, so that removing it cannot free `dentry`
    /// first; dropped after `drop` removed the file.
    _dir: Arc<DirEntry>,
    _t: PhantomData<T>,
}

// SAFETY: the raw pointers are only used to remove the file and drop the
// `Arc`, which is `Send` because `T::Shared` is `Send + Sync`; `DirEntry`
// is `Send + Sync`.
unsafe impl<T: FileOps> Send for File<T> {}
// SAFETY: `&File` gives access to nothing.
unsafe impl<T: FileOps> Sync for File<T> {}

impl<T: FileOps> Drop for File<T> {
    fn drop(&mut self) {
        // SAFETY: the file is live (type invariant: its directory, which
        // would remove it, is still held by `_dir`). debugfs_remove() waits
        // for reads/writes in flight and makes later ones fail, so no callback
        // uses `data` after it returns; open files hold their own `Arc`.
        unsafe { bindings::debugfs_remove(self.dentry) };
        // SAFETY: `data` came from `into_foreign` and nothing uses it now.
        drop(unsafe { Arc::<T::Shared>::from_foreign(self.data) });
    }
}

/// What one open file holds.
#[pin_data]
struct Open<T: FileOps> {
    ops: T,
    #[pin]
    text: Mutex<Shown>,
}

/// The bytes reads return.
struct Shown {
    out: Buf,
    /// `out` is the reply of a write(2), not a `show`.
    reply: bool,
    /// `out` holds a text (of a `show` or a reply): a read at a non-zero
    /// offset reads on in it rather than producing one.
    has_text: bool,
    /// The reply has not been read yet: the next read starts at 0.
    fresh: bool,
}

struct Vtable<T>(PhantomData<T>);

/// A position as an index into the text, if it is one.
fn index(pos: bindings::loff_t) -> Option<usize> {
    usize::try_from(pos).ok()
}

impl<T: FileOps> Vtable<T> {
    /// `T`'s operations: an open file pins this module.
    const FOPS: bindings::file_operations = bindings::file_operations {
        owner: ptr::addr_of!(super::param::__this_module).cast_mut().cast(),
        open: Some(Self::open),
        read: Some(Self::read),
        write: Some(Self::write),
        release: Some(Self::release),
        llseek: Some(bindings::default_llseek),
        // SAFETY: all-zero is a valid `file_operations` (NULL callbacks).
        ..unsafe { core::mem::zeroed() }
    };

    /// [`Self::FOPS`], in the module's image: valid for as long as any file
    /// made with it can be open (open files pin the module).
    const fn build() -> &'static bindings::file_operations {
        &Self::FOPS
    }

    /// # Safety
    ///
    /// Called by the VFS with a live inode of a file made by [`Dir::file`].
    unsafe extern "C" fn open(inode: *mut bindings::inode, file: *mut bindings::file) -> i32 {
        // SAFETY: the inode is live; `i_private` is the `Arc` pointer stored
        // by `Dir::file`, valid while the file exists (the proxy holds it).
        let shared = unsafe { Arc::<T::Shared>::borrow((*inode).i_private) };
        let shared: Arc<T::Shared> = shared.into();
        let ops = match T::open(&shared) {
            Ok(ops) => ops,
            Err(e) => return e.to_errno(),
        };
        let open = KBox::pin_init(
            pin_init!(Open::<T> {
                ops,
                text <- new_mutex!(Shown {
                    out: Buf::new(),
                    reply: false,
                    has_text: false,
                    fresh: false,
                }),
            }),
            GFP_KERNEL,
        );
        match open {
            Ok(open) => {
                // SAFETY: `file` is live and ours until release.
                unsafe { (*file).private_data = open.into_foreign().cast_mut() };
                0
            }
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// `file` was opened by [`Self::open`] and is not released yet.
    unsafe fn state<'a>(file: *mut bindings::file) -> Pin<&'a Open<T>> {
        // SAFETY: `private_data` was set by `open` from `into_foreign` and is
        // reclaimed only in `release`, after every read/write returned.
        unsafe { <Pin<KBox<Open<T>>>>::borrow((*file).private_data) }
    }

    /// # Safety
    ///
    /// Called by the VFS on a file opened by [`Self::open`], with a user
    /// buffer of `count` bytes and a valid `ppos`.
    unsafe extern "C" fn read(
        file: *mut bindings::file,
        buf: *mut kernel::ffi::c_char,
        count: usize,
        ppos: *mut bindings::loff_t,
    ) -> isize {
        if count == 0 {
            return 0;
        }
        // SAFETY: called by the VFS on an open file of ours.
        let open = unsafe { Self::state(file) };
        let mut shown = open.text.lock();
        let pos = if shown.fresh {
            0
        } else {
            // SAFETY: the VFS passes a valid position for the duration of read.
            unsafe { *ppos }
        };
        let Some(at) = index(pos) else {
            return EINVAL.to_errno() as isize;
        };
        if !shown.reply && (at == 0 || !shown.has_text) {
            let mut out = Buf::new();
            if let Err(e) = open.ops.show(&mut out) {
                return e.to_errno() as isize;
            }
            shown.out = out;
            shown.has_text = true;
        }
        let rest = shown.out.as_bytes().get(at..).unwrap_or(&[]);
        let n = rest.len().min(count);
        let mut w = UserSlice::new(buf as usize, n).writer();
        if let Err(e) = w.write_slice(rest.get(..n).unwrap_or(&[])) {
            // Nothing read: the next read starts where this one would have.
            return e.to_errno() as isize;
        }
        shown.fresh = false;
        // SAFETY: as above; `n` is at most the text's length, so the sum
        // fits (a text is far below `loff_t::MAX`).
        unsafe { *ppos = pos.saturating_add(n as bindings::loff_t) };
        n as isize
    }

    /// # Safety
    ///
    /// Called by the VFS on a file opened by [`Self::open`], with a user
    /// buffer of `count` bytes and a valid `ppos`.
    unsafe extern "C" fn write(
        file: *mut bindings::file,
        buf: *const kernel::ffi::c_char,
        count: usize,
        ppos: *mut bindings::loff_t,
    ) -> isize {
        if !T::WRITABLE {
            return EPERM.to_errno() as isize;
        }
        // SAFETY: called by the VFS on an open file of ours.
        let open = unsafe { Self::state(file) };
        let mut out = Buf::new();
        let result = if count > MAX_WRITE {
            Err(Failure::new(E2BIG, "line longer than 65536 bytes"))
        } else {
            // Up to 64 KiB at the user's say: kvmalloc'ed, and a failure is
            // the caller's ENOMEM, not a report in the kernel log.
            match KVVec::from_elem(0u8, count, GFP_KERNEL | __GFP_NOWARN) {
                Err(_) => Err(Failure::new(ENOMEM, "out of memory")),
                Ok(mut input) => match UserSlice::new(buf as usize, count)
                    .reader()
                    .read_slice(&mut input)
                {
                    // No lock of ours is held while the command runs.
                    Ok(()) => open.ops.command(input.as_slice(), &mut out),
                    Err(e) => Err(Failure::new(e, "cannot read the written bytes")),
                },
            }
        };
        let ret = match result {
            Ok(()) => count as isize,
            Err(f) => {
                out = Buf::new();
                // The whole line or, if there is no memory for it, none:
                // the errno alone still tells the caller.
                let (head, reason) = (b"error: ", f.reason.as_bytes());
                if out
                    .reserve(head.len().saturating_add(reason.len()).saturating_add(1))
                    .is_ok()
                {
                    let _ = out.push(head);
                    let _ = out.push(reason);
                    let _ = out.push(b"\n");
                }
                f.err.to_errno() as isize
            }
        };
        let mut shown = open.text.lock();
        shown.out = out;
        shown.reply = true;
        shown.has_text = true;
        shown.fresh = true;
        let _ = ppos;
        ret
    }

    /// # Safety
    ///
    /// Called by the VFS once, at the last close of a file opened by
    /// [`Self::open`].
    unsafe extern "C" fn release(_inode: *mut bindings::inode, file: *mut bindings::file) -> i32 {
        // SAFETY: last close of a file opened by `open`: nothing else uses
        // `private_data` any more; dropping it drops the `T`.
        drop(unsafe { <Pin<KBox<Open<T>>>>::from_foreign((*file).private_data) });
        0
    }
}
