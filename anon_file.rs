// SPDX-License-Identifier: GPL-2.0

//! Anonymous-inode files with luo-rs's own `file_operations`.
//!
//! The kernel crate has no wrapper for `anon_inode_getfile()`; this is the
//! one place that calls it. The file owns `data` (as its `private_data`)
//! until its `release` callback takes it back with `from_foreign`.

use core::ptr::NonNull;
use kernel::{
    bindings, error::from_err_ptr, ffi::c_int, fs::File, prelude::*, str::CStrExt,
    sync::aref::ARef, types::ForeignOwnable,
};

/// Makes a read-write, close-on-exec anonymous file named `name` (copied:
/// /proc shows it as `anon_inode:<name>`) whose callbacks are `fops` and
/// whose `private_data` owns `data`.
///
/// `fops.release` must take `private_data` back as a `T`, and the other
/// callbacks may only borrow it.
pub(crate) fn new<T: ForeignOwnable>(
    name: &CStr,
    fops: &'static bindings::file_operations,
    data: T,
) -> Result<ARef<File>> {
    let private = data.into_foreign();
    // SAFETY: `name` is a valid C string, `fops` lives forever and
    // `private` is the owned pointer its callbacks expect.
    let raw = unsafe {
        bindings::anon_inode_getfile(
            name.as_char_ptr(),
            fops,
            private,
            (bindings::O_RDWR | bindings::O_CLOEXEC) as c_int,
        )
    };
    match from_err_ptr(raw)
        .ok()
        .and_then(|raw| NonNull::new(raw.cast::<File>()))
    {
        // SAFETY: `anon_inode_getfile` returned a new file with one
        // reference, which the `ARef` takes over; `File` wraps
        // `struct file` transparently.
        Some(ptr) => Ok(unsafe { ARef::from_raw(ptr) }),
        None => {
            // SAFETY: no file was created, so `private` is still ours.
            drop(unsafe { T::from_foreign(private) });
            Err(from_err_ptr(raw).err().unwrap_or(ENOMEM))
        }
    }
}
