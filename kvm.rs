// SPDX-License-Identifier: GPL-2.0

//! Safe wrappers of the KVM steps the VM handler needs (`kvm_glue.c`).
//! This is the only module that calls them.
//!
//! [`Vm`] is a VM file (one `KVM_CREATE_VM` made) and what luo-rs reads
//! of it; [`create`] makes a new one in the new kernel. A VM serves the
//! memory of the process that made it (every VM ioctl from another one
//! fails with `EIO`): a new one serves the caller's.

use core::ptr::NonNull;
use kernel::{bindings, error::from_err_ptr, fs::File, prelude::*, sync::aref::ARef};

/// A VM file.
///
/// # Invariants
///
/// `kvm` is the VM behind `file`, alive as long as the file is (its
/// release puts the VM).
pub(crate) struct Vm {
    /// Held: keeps the VM alive.
    file: ARef<File>,
    kvm: NonNull<bindings::kvm>,
}

// SAFETY: the VM is KVM's, refcounted and kept alive by the file; the
// wrapper only reads fields that are fixed once the VM exists.
unsafe impl Send for Vm {}

impl Vm {
    /// Whether `file` is a VM file.
    pub(crate) fn is_vm(file: &File) -> bool {
        // SAFETY: `file` is a valid file for the duration of the call.
        !unsafe { bindings::luo_kvm_of_file(file.as_ptr()) }.is_null()
    }

    /// Takes `file` if it is a VM file.
    pub(crate) fn new(file: ARef<File>) -> Option<Self> {
        // SAFETY: `file` is a valid file for the duration of the call.
        let kvm = NonNull::new(unsafe { bindings::luo_kvm_of_file(file.as_ptr()) })?;
        // INVARIANT: the VM behind `file`, which `file` keeps alive.
        Some(Vm { file, kvm })
    }

    /// The machine type `KVM_CREATE_VM` made the VM with.
    pub(crate) fn machine_type(&self) -> u64 {
        // SAFETY: `kvm` is alive (type invariant); its type never changes.
        unsafe { bindings::luo_kvm_type(self.kvm.as_ptr()) as u64 }
    }

    /// Whether the VM serves the calling process: only that one can use
    /// it.
    pub(crate) fn is_callers(&self) -> bool {
        // SAFETY: `kvm` is alive (type invariant); its mm never changes.
        unsafe { bindings::luo_kvm_is_callers(self.kvm.as_ptr()) }
    }

    /// The VM's file.
    pub(crate) fn file(&self) -> &File {
        &self.file
    }

    /// The VM, for a C call; alive while `self` is.
    pub(crate) fn as_ptr(&self) -> *mut bindings::kvm {
        self.kvm.as_ptr()
    }

    /// Identifies the VM (its `struct kvm`), as the files that need it
    /// know it.
    pub(crate) fn object(&self) -> usize {
        self.kvm.as_ptr() as usize
    }
}

/// Whether a VM of `machine_type` can cross a live update: one with no
/// private memory and no state the host cannot read.
pub(crate) fn carried(machine_type: u64) -> bool {
    let Ok(t) = kernel::ffi::c_ulong::try_from(machine_type) else {
        return false;
    };
    // SAFETY: a pure check of a number.
    unsafe { bindings::luo_kvm_type_carried(t) }
}

/// A new VM of `machine_type`, serving the caller's process, if the caller
/// may make VMs itself: the error of opening `/dev/kvm` read-write
/// (`ENOENT` without KVM, `EACCES`, ...) if not, or what `KVM_CREATE_VM`
/// would fail with.
pub(crate) fn create(machine_type: u64) -> Result<ARef<File>> {
    let t = kernel::ffi::c_ulong::try_from(machine_type).map_err(|_| EINVAL)?;
    // SAFETY: process context, in the task that will use the VM; returns a
    // new file or an ERR_PTR.
    let raw = from_err_ptr(unsafe { bindings::luo_kvm_create(t) })?;
    let ptr = NonNull::new(raw.cast::<File>()).ok_or(ENOMEM)?;
    // SAFETY: a new file with one reference, which the `ARef` takes over;
    // `File` wraps `struct file` transparently.
    Ok(unsafe { ARef::from_raw(ptr) })
}
