// SPDX-License-Identifier: GPL-2.0

//! The ioctl calls: the crate's only unsafe code.

use crate::uapi;
use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd};

/// A struct of the uAPI: `#[repr(C)]`, plain data, `size` first.
///
/// # Safety
///
/// The type must be a struct of `include/uapi/linux/liveupdate.h` as
/// bindgen made it, so that the kernel reads and writes at most
/// `size_of::<Self>()` bytes of it.
pub(crate) unsafe trait Arg {}

// SAFETY: each is a bindgen struct of the uAPI header (see `uapi`).
unsafe impl Arg for uapi::liveupdate_ioctl_create_session {}
// SAFETY: as above.
unsafe impl Arg for uapi::liveupdate_ioctl_retrieve_session {}
// SAFETY: as above.
unsafe impl Arg for uapi::liveupdate_ioctl_get_state {}
// SAFETY: as above.
unsafe impl Arg for uapi::liveupdate_ioctl_set_event {}
// SAFETY: as above.
unsafe impl Arg for uapi::liveupdate_session_preserve_fd {}
// SAFETY: as above.
unsafe impl Arg for uapi::liveupdate_session_retrieve_fd {}
// SAFETY: as above.
unsafe impl Arg for uapi::liveupdate_session_unpreserve_fd {}
// SAFETY: as above.
unsafe impl Arg for uapi::liveupdate_session_finish {}
// SAFETY: as above.
unsafe impl Arg for uapi::liveupdate_session_get_name {}
// SAFETY: as above.
unsafe impl Arg for uapi::liveupdate_session_get_state {}
// SAFETY: as above.
unsafe impl Arg for uapi::liveupdate_session_set_name {}

/// `ioctl(fd, cmd, arg)`: `Ok(())` or the errno.
pub(crate) fn ioctl<T: Arg>(fd: BorrowedFd<'_>, cmd: u64, arg: &mut T) -> Result<(), i32> {
    use std::os::fd::AsRawFd;

    // SAFETY: `fd` is open for the call; `arg` is a valid, exclusive
    // `T`, which by `Arg` is a uAPI struct the kernel accesses within
    // its size.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), cmd as _, arg as *mut T) };
    if ret < 0 {
        Err(std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO))
    } else {
        Ok(())
    }
}

/// Takes ownership of a file descriptor an ioctl that succeeded returned.
pub(crate) fn take_fd(raw: i32) -> Result<OwnedFd, i32> {
    if raw < 0 {
        return Err(libc::EIO);
    }
    // SAFETY: the kernel installed `raw` for this process in the ioctl that
    // returned it, and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}
