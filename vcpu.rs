// SPDX-License-Identifier: GPL-2.0

//! Safe wrappers of the KVM steps the vCPU handler needs (`vcpu_glue.c`,
//! over the calls patches 0008 and 0009 add to KVM). This is the only
//! module that calls them.
//!
//! [`Vcpu`] is a vCPU file being preserved: it can be frozen (every vCPU
//! ioctl, `KVM_RUN` first, then fails with `EBUSY`) and, frozen, captured
//! into an image, KVM's own versioned layout of the state migration
//! carries. [`rebuild`] makes a vCPU of the retrieved VM from an image in
//! the new kernel.

use crate::kvm::{self, Vm};
use core::ptr::NonNull;
use kernel::{bindings, error::from_err_ptr, fs::File, prelude::*, sync::aref::ARef};

/// A vCPU file.
///
/// # Invariants
///
/// `vcpu` is the vCPU behind `file`; it lives as long as its VM, which the
/// file holds.
pub(crate) struct Vcpu {
    /// Held: keeps the VM, and so the vCPU, alive.
    _file: ARef<File>,
    vcpu: NonNull<bindings::kvm_vcpu>,
}

// SAFETY: the file is refcounted and usable from any thread; KVM
// serialises what is done to the vCPU with the vCPU's own mutex.
unsafe impl Send for Vcpu {}

impl Vcpu {
    /// Whether `file` is a vCPU file.
    pub(crate) fn is_vcpu(file: &File) -> bool {
        // SAFETY: `file` is a valid file for the duration of the call.
        !unsafe { bindings::luo_vcpu_of_file(file.as_ptr()) }.is_null()
    }

    /// Takes `file` if it is a vCPU file.
    pub(crate) fn new(file: ARef<File>) -> Option<Self> {
        // SAFETY: `file` is a valid file for the duration of the call.
        let vcpu = NonNull::new(unsafe { bindings::luo_vcpu_of_file(file.as_ptr()) })?;
        // INVARIANT: the vCPU behind `file`.
        Some(Self { _file: file, vcpu })
    }

    fn kvm(&self) -> *mut bindings::kvm {
        // SAFETY: `vcpu` is alive (type invariant); its VM never changes.
        unsafe { bindings::luo_vcpu_kvm(self.vcpu.as_ptr()) }
    }

    /// Its VM, as [`Vm::object`] names it.
    pub(crate) fn vm_object(&self) -> usize {
        self.kvm() as usize
    }

    /// Whether its VM serves the calling process.
    pub(crate) fn vm_is_callers(&self) -> bool {
        // SAFETY: the VM is alive, held by the file (type invariant).
        unsafe { bindings::luo_kvm_is_callers(self.kvm()) }
    }

    /// Whether its VM's type can cross a live update ([`kvm::carried`]).
    pub(crate) fn vm_carried(&self) -> bool {
        // SAFETY: the VM is alive, held by the file (type invariant).
        kvm::carried(unsafe { bindings::luo_kvm_type(self.kvm()) } as u64)
    }

    /// The most bytes [`Vcpu::save`] writes.
    pub(crate) fn image_max_size(&self) -> usize {
        // SAFETY: `vcpu` is alive (type invariant).
        unsafe { bindings::luo_vcpu_image_max_size(self.vcpu.as_ptr()) }
    }

    /// Stops the vCPU's ioctls until [`Vcpu::thaw`]; `EBUSY`, with
    /// nothing changed, while a thread is in `KVM_RUN` (or if it is frozen
    /// already).
    pub(crate) fn freeze(&self) -> Result {
        // SAFETY: `vcpu` is alive (type invariant).
        kernel::error::to_result(unsafe { bindings::luo_vcpu_freeze(self.vcpu.as_ptr()) })
    }

    /// Lets a frozen vCPU's ioctls run again.
    pub(crate) fn thaw(&self) {
        // SAFETY: `vcpu` is alive (type invariant); the caller froze it.
        unsafe { bindings::luo_vcpu_thaw(self.vcpu.as_ptr()) }
    }

    /// Captures a frozen vCPU's image into `buf` (at least
    /// [`Vcpu::image_max_size`] bytes); returns its size. `EINPROGRESS` if
    /// the VMM has not completed its last exit, `EOPNOTSUPP` for state
    /// that cannot be carried (a nested guest running).
    pub(crate) fn save(&self, buf: &mut [u8]) -> Result<usize> {
        // SAFETY: `vcpu` is alive (type invariant); `buf` is valid for
        // writes of `buf.len()` bytes.
        let n = unsafe {
            bindings::luo_vcpu_save(self.vcpu.as_ptr(), buf.as_mut_ptr().cast(), buf.len())
        };
        if n < 0 {
            return Err(Error::from_errno(n as i32));
        }
        usize::try_from(n).map_err(|_| EINVAL)
    }
}

/// A vCPU of `vm` with the state of `image`, as a file: `EAGAIN` if the
/// VM is not set up for it yet (no memslots, or no in-kernel irqchip for a
/// vCPU that had a local APIC, or a capability it had), `EACCES` without
/// the guest's AMX permission, `EINVAL` for an image this kernel cannot
/// load or state the vCPU refused, `EEXIST` if the VM has a vCPU of that
/// id; call it in the process
/// the VM serves. `made` is a vCPU an earlier attempt made and failed to
/// load: it is loaded again; a vCPU this attempt makes and fails to load
/// is left in `made` for the next one.
pub(crate) fn rebuild(vm: &Vm, image: &[u8], made: &mut Option<ARef<File>>) -> Result<ARef<File>> {
    let mut id = 0u32;
    // SAFETY: the VM is alive while `vm` is; `image` is valid for reads of
    // its length; `id` is valid for a write.
    kernel::error::to_result(unsafe {
        bindings::luo_vcpu_check(vm.as_ptr(), image.as_ptr().cast(), image.len(), &mut id)
    })?;
    let file = match made.take() {
        Some(file) => file,
        None => create(vm, id)?,
    };
    // SAFETY: `file` is a valid file; `image` is valid for reads of its
    // length and was checked for this VM; process context.
    let loaded = kernel::error::to_result(unsafe {
        bindings::luo_vcpu_load(file.as_ptr(), image.as_ptr().cast(), image.len())
    });
    match loaded {
        Ok(()) => Ok(file),
        Err(e) => {
            *made = Some(file);
            Err(e)
        }
    }
}

/// A new, empty vCPU of `vm` with `id`.
fn create(vm: &Vm, id: u32) -> Result<ARef<File>> {
    // SAFETY: `vm.file()` is a VM file; process context, in the caller's
    // task. Returns a new file or an ERR_PTR.
    let raw = from_err_ptr(unsafe { bindings::luo_vcpu_create(vm.file().as_ptr(), id) })?;
    let ptr = NonNull::new(raw.cast::<File>()).ok_or(ENOMEM)?;
    // SAFETY: a new file with one reference, which the `ARef` takes over;
    // `File` wraps `struct file` transparently.
    Ok(unsafe { ARef::from_raw(ptr) })
}
