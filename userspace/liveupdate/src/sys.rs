// SPDX-License-Identifier: GPL-2.0

//! The system calls (the ioctls, kexec_file_load, reboot): the crate's
//! only unsafe code.

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

/// `kexec_file_load(kernel, initrd, cmdline, flags)`: `Ok(())` or the errno.
pub(crate) fn kexec_file_load(
    kernel: BorrowedFd<'_>,
    initrd: Option<BorrowedFd<'_>>,
    cmdline: &std::ffi::CStr,
    flags: libc::c_ulong,
) -> Result<(), i32> {
    use std::os::fd::AsRawFd;

    let initrd = initrd.map_or(-1, |fd| fd.as_raw_fd());
    let len = cmdline.to_bytes_with_nul().len();
    // SAFETY: the fds are open for the call, and `cmdline` is a readable,
    // NUL-terminated buffer of `len` bytes, which is all the kernel reads.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_kexec_file_load,
            kernel.as_raw_fd(),
            initrd,
            len,
            cmdline.as_ptr(),
            flags,
        )
    };
    if ret < 0 {
        Err(last_errno())
    } else {
        Ok(())
    }
}

/// `sync()`.
pub(crate) fn sync() {
    // SAFETY: sync() takes nothing and cannot fail.
    unsafe { libc::sync() };
}

/// `reboot(LINUX_REBOOT_CMD_KEXEC)`: returns only on failure, with the
/// errno.
pub(crate) fn reboot_kexec() -> i32 {
    // SAFETY: no memory is passed; the call either jumps into the loaded
    // kernel or fails.
    let ret = unsafe { libc::reboot(libc::LINUX_REBOOT_CMD_KEXEC) };
    if ret < 0 {
        last_errno()
    } else {
        libc::EIO
    }
}

fn last_errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}
