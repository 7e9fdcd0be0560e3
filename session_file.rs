// SPDX-License-Identifier: GPL-2.0

//! Session files: the anonymous-inode files CREATE_SESSION returns.
//!
//! /dev/liveupdate's own files come from the misc device; session files
//! are anonymous files (`anon_file`) with a `file_operations` of their own
//! whose ioctl and release reach the same [`LuoFile`] code. Each owns a
//! `KBox<LuoFile>` in `private_data`, from creation until release.

use crate::anon_file;
use crate::luo_ioctl::LuoFile;
use crate::luo_uapi::{Name, NAME_LEN};
use kernel::{
    bindings,
    ffi::{c_int, c_long, c_uint, c_ulong},
    fs::File,
    prelude::*,
    str::CStr,
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
    // Every struct has the same layout for 32-bit callers; only the
    // pointer argument needs converting (compat_ptr), as for /dev/liveupdate.
    #[cfg(CONFIG_COMPAT)]
    compat_ioctl: bindings::compat_ptr_ioctl,
    ..pin_init::zeroed()
};

/// What a session file is called: `[luo_session] <name>`, as upstream
/// names it (/proc shows `anon_inode:[luo_session] vm-1`; some clients
/// recognise session fds by that).
const PREFIX: &[u8] = b"[luo_session] ";

/// Makes a new session file owning `luo`, for the session `name`. The
/// caller installs it in an fd.
pub(crate) fn new(luo: KBox<LuoFile>, name: Name) -> Result<ARef<File>> {
    const FOPS: &bindings::file_operations = &SESSION_FOPS;
    let mut buf = [0u8; PREFIX.len() + NAME_LEN + 1];
    let name = name.as_bytes();
    buf[..PREFIX.len()].copy_from_slice(PREFIX);
    buf[PREFIX.len()..][..name.len()].copy_from_slice(name);
    let len = PREFIX.len() + name.len() + 1;
    // A name holds no NUL, and `buf` is zeroed after it.
    let name = CStr::from_bytes_with_nul(&buf[..len]).map_err(|_| EINVAL)?;
    anon_file::new(name, FOPS, luo)
}
