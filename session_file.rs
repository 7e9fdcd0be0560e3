// SPDX-License-Identifier: GPL-2.0

//! Session files: the anonymous-inode files CREATE_SESSION returns.
//!
//! /dev/liveupdate's own files come from the misc device; session files
//! are made here with `anon_inode_getfile()` and a `file_operations` of
//! their own whose ioctl and release reach the same [`LuoFile`] code. Each
//! such file owns a `KBox<LuoFile>` in `private_data`, from creation until
//! release.

use crate::luo_ioctl::LuoFile;
use core::ptr::NonNull;
use kernel::{
    bindings,
    error::from_err_ptr,
    ffi::{c_int, c_long, c_uint, c_ulong},
    fs::File,
    prelude::*,
    str::CStrExt,
    sync::aref::ARef,
    types::ForeignOwnable,
};

/// # Safety
///
/// `file` is a session file made by [`new`], being released.
unsafe extern "C" fn release(_inode: *mut bindings::inode, file: *mut bindings::file) -> c_int {
    // SAFETY: release owns `private_data`, which `new` set from a
    // `KBox<LuoFile>` and nothing else changes.
    let me = unsafe { <KBox<LuoFile> as ForeignOwnable>::from_foreign((*file).private_data) };
    drop(me);
    0
}

/// # Safety
///
/// `file` is a session file made by [`new`].
unsafe extern "C" fn ioctl(file: *mut bindings::file, cmd: c_uint, arg: c_ulong) -> c_long {
    // SAFETY: `private_data` is the `KBox<LuoFile>` set by `new`; it is freed
    // only by release, which cannot run while an ioctl holds the file.
    let me = unsafe { <KBox<LuoFile> as ForeignOwnable>::borrow((*file).private_data) };
    // SAFETY: the file is valid for this call; no fdget_pos region is active.
    let f = unsafe { File::from_raw_file(file) };
    match LuoFile::dispatch(me, f, cmd, arg) {
        Ok(ret) => ret as c_long,
        Err(e) => e.to_errno() as c_long,
    }
}

const SESSION_FOPS: bindings::file_operations = bindings::file_operations {
    release: Some(release),
    unlocked_ioctl: Some(ioctl),
    // Every struct has the same layout for 32-bit callers.
    compat_ioctl: Some(ioctl),
    ..pin_init::zeroed()
};

/// Makes a new session file owning `luo`. The caller installs it in an fd.
pub(crate) fn new(luo: KBox<LuoFile>) -> Result<ARef<File>> {
    let private = luo.into_foreign();
    let fops: &'static bindings::file_operations = &SESSION_FOPS;
    // SAFETY: the name is a valid C string, `fops` lives forever and
    // `private` is the owned pointer the callbacks above expect.
    let raw = unsafe {
        bindings::anon_inode_getfile(
            c"[liveupdate-session]".as_char_ptr(),
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
            drop(unsafe { <KBox<LuoFile> as ForeignOwnable>::from_foreign(private) });
            Err(from_err_ptr(raw).err().unwrap_or(ENOMEM))
        }
    }
}
