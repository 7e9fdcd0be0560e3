// SPDX-License-Identifier: GPL-2.0

//! Safe wrappers of the vfio and PCI steps the VFIO handler needs
//! (`vfio_glue.c`, over the calls patch 0011 adds to vfio). This is the
//! only module that calls them.
//!
//! [`VfioDevice`] is a vfio-pci device file being preserved: bound to an
//! iommufd and attached to one of its IOASes, it can be described
//! ([`Description`]) and frozen (attach, detach, resets and low power
//! answer `EBUSY`). In the new kernel [`hold`] keeps a carried device for its
//! retriever from boot on, and [`open`] makes its file again.

use crate::handlers::vfio_pci_format::Device;
use kernel::{bindings, error::from_err_ptr, fs::File, prelude::*, sync::aref::ARef};

use core::ptr::NonNull;

/// A vfio-pci device file.
///
/// # Invariants
///
/// `file` is a vfio cdev file bound to an iommufd.
pub(crate) struct VfioDevice {
    file: ARef<File>,
}

/// What [`VfioDevice::describe`] found.
pub(crate) struct Description {
    /// The device and its attachment, as the record carries them.
    pub(crate) device: Device,
    /// The iommufd it is bound to.
    pub(crate) iommufd: ARef<File>,
}

fn to_raw(d: &Device) -> bindings::luo_vfio_device {
    bindings::luo_vfio_device {
        segment: d.segment,
        bus: d.bus,
        devfn: d.devfn,
        vendor: d.vendor,
        device: d.device,
        subsystem_vendor: d.subsystem_vendor,
        subsystem_device: d.subsystem_device,
        class: d.class,
        ioas_id: d.ioas_id,
        master: d.master,
    }
}

fn describe(file: &File) -> Result<Description> {
    let mut raw = bindings::luo_vfio_device::default();
    let mut iommufd: *mut bindings::file = core::ptr::null_mut();
    // SAFETY: `file` is valid for the call; `raw` and `iommufd` are valid
    // for writes.
    kernel::error::to_result(unsafe {
        bindings::luo_vfio_describe(file.as_ptr(), &mut raw, &mut iommufd)
    })?;
    let iommufd = NonNull::new(iommufd).ok_or(EINVAL)?;
    // SAFETY: on success `iommufd` is the file the device file holds for
    // as long as `file` lives, which the caller holds; `File` wraps
    // `struct file` transparently, and the reference taken here is its own.
    let iommufd = unsafe { File::from_raw_file(iommufd.as_ptr()) }.into();
    Ok(Description {
        device: Device {
            segment: raw.segment,
            bus: raw.bus,
            devfn: raw.devfn,
            vendor: raw.vendor,
            device: raw.device,
            subsystem_vendor: raw.subsystem_vendor,
            subsystem_device: raw.subsystem_device,
            class: raw.class,
            ioas_id: raw.ioas_id,
            master: raw.master,
        },
        iommufd,
    })
}

impl VfioDevice {
    /// Whether `file` is a vfio device file, bound or not.
    pub(crate) fn is_device_file(file: &File) -> bool {
        // SAFETY: `file` is valid for the call.
        unsafe { bindings::luo_vfio_is_device_file(file.as_ptr()) }
    }

    /// Takes `file` if it is a vfio cdev file bound to an iommufd:
    /// `EINVAL` for any other file, `EOPNOTSUPP` for a device that cannot
    /// be carried, `ENOENT` for one not attached, `EBUSY` for one in low
    /// power.
    pub(crate) fn new(file: ARef<File>) -> Result<(Self, Description)> {
        let description = describe(&file)?;
        // INVARIANT: `describe` checked it.
        Ok((Self { file }, description))
    }

    /// Describes it again (user space may have attached it elsewhere).
    pub(crate) fn describe(&self) -> Result<Description> {
        describe(&self.file)
    }

    /// Refuses attach, detach, resets and low power until
    /// [`VfioDevice::thaw`]: `EBUSY` if it is frozen already or in low
    /// power.
    pub(crate) fn freeze(&self) -> Result {
        // SAFETY: the file is a bound vfio cdev file (type invariant).
        kernel::error::to_result(unsafe { bindings::luo_vfio_freeze(self.file.as_ptr()) })
    }

    /// Undoes [`VfioDevice::freeze`].
    pub(crate) fn thaw(&self) {
        // SAFETY: the file is a bound vfio cdev file (type invariant).
        unsafe { bindings::luo_vfio_thaw(self.file.as_ptr()) }
    }
}

/// In the new kernel, at boot: keeps `device` for its retriever (only
/// vfio-pci may drive it, and nobody else may open it) until [`release`].
/// A device that is gone or another one is not held, with a warning.
pub(crate) fn hold(device: &Device) {
    let raw = to_raw(device);
    // SAFETY: `raw` is valid for the call; process context.
    unsafe { bindings::luo_vfio_hold(&raw) }
}

/// Undoes [`hold`]; nothing if it is not held.
pub(crate) fn release(device: &Device) {
    let raw = to_raw(device);
    // SAFETY: `raw` is valid for the call.
    unsafe { bindings::luo_vfio_release(&raw) }
}

/// Opens the held `device` again, bound to `iommufd` and attached to its
/// IOAS, without resetting it: the new device file. `ENODEV` if the device
/// is gone, is another one or has no vfio-pci.
pub(crate) fn open(device: &Device, iommufd: &File) -> Result<ARef<File>> {
    let raw = to_raw(device);
    // SAFETY: `raw` and `iommufd` are valid for the call; process context.
    let file = from_err_ptr(unsafe { bindings::luo_vfio_open(&raw, iommufd.as_ptr()) })?;
    let ptr = NonNull::new(file.cast::<File>()).ok_or(ENOMEM)?;
    // SAFETY: a new file with one reference, which the `ARef` takes over;
    // `File` wraps `struct file` transparently.
    Ok(unsafe { ARef::from_raw(ptr) })
}
