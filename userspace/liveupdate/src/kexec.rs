// SPDX-License-Identifier: GPL-2.0

//! The kexec that ends a live update: loading the next kernel
//! (`kexec_file_load`) and jumping into it (`reboot(LINUX_REBOOT_CMD_KEXEC)`).
//! The kernel's own kexec runs whatever PREPARE and FREEZE are missing and
//! aborts the jump if one fails.

use crate::error::{Error, Op, Result};
use crate::sys;
use std::ffi::CString;
use std::fs::File;
use std::os::fd::AsFd;
use std::path::Path;

/// `KEXEC_FILE_NO_INITRAMFS`.
const NO_INITRAMFS: libc::c_ulong = 0x4;

fn io_errno(e: &std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(libc::EIO)
}

/// Loads `kernel` (a bzImage) with `initrd` and `cmdline` as the kernel a
/// kexec jumps into.
pub fn load(kernel: &Path, initrd: Option<&Path>, cmdline: &str) -> Result<()> {
    let open = |p: &Path| File::open(p).map_err(|e| Error::new(Op::KexecLoad, io_errno(&e)));
    let cmdline = CString::new(cmdline).map_err(|_| Error::new(Op::KexecLoad, libc::EINVAL))?;
    let kernel = open(kernel)?;
    let initrd = initrd.map(open).transpose()?;
    let flags = if initrd.is_none() { NO_INITRAMFS } else { 0 };
    sys::kexec_file_load(
        kernel.as_fd(),
        initrd.as_ref().map(|f| f.as_fd()),
        &cmdline,
        flags,
    )
    .map_err(|e| Error::new(Op::KexecLoad, e))
}

/// Whether a kernel is loaded (`/sys/kernel/kexec_loaded`).
pub fn loaded() -> Result<bool> {
    std::fs::read_to_string("/sys/kernel/kexec_loaded")
        .map(|s| s.trim() == "1")
        .map_err(|e| Error::new(Op::KexecLoad, io_errno(&e)))
}

/// This kernel's command line (`/proc/cmdline`), for `--reuse-cmdline`.
pub fn current_cmdline() -> Result<String> {
    std::fs::read_to_string("/proc/cmdline")
        .map(|s| s.trim_end().to_string())
        .map_err(|e| Error::new(Op::KexecLoad, io_errno(&e)))
}

/// Writes dirty data back (`sync()`): do it before the update's blackout,
/// where a stuck file system would hold every paused VM.
pub fn sync() {
    sys::sync();
}

/// Jumps into the loaded kernel. Returns only if the kexec was refused
/// (no kernel loaded, the kexec's own PREPARE or FREEZE failed, ...: the
/// kernel log says which).
pub fn jump() -> Error {
    Error::new(Op::Kexec, sys::reboot_kexec())
}
