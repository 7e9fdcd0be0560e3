// SPDX-License-Identifier: GPL-2.0

//! The VFIO handler: a vfio-pci device file crosses a live update bound to
//! its iommufd and attached to the same IOAS, and the device is not reset
//! on the way, so the VMM opens, binds and attaches nothing again.
//!
//! - PRESERVE_FD takes a vfio cdev file bound to an iommufd (`EINVAL` for
//!   any other file, also a group-opened device) whose device is a
//!   physical PCI function bound to vfio-pci itself, attached without
//!   PASID to an IOAS by its id (`EOPNOTSUPP` for a VF, a PF with VFs, a
//!   variant driver's or a no-IOMMU device, a page table user space
//!   allocated or a nested one; `ENOENT` if not attached; `EBUSY` in low
//!   power). The iommufd must be preserved in the same session first
//!   (`ENOLINK`).
//! - PREPARE freezes the device file: until CANCEL, attach, detach, every
//!   reset (VFIO_DEVICE_RESET, FLR through config space, a hot reset
//!   through any device of its set) and low power (the feature, or D1-D3
//!   through config space) answer `EBUSY`; DMA, interrupts and config and
//!   BAR access go on. On Intel VT-d the page table it is attached to is
//!   handed over too (patch 0012: its pages KHO-preserved, its domain id
//!   kept). It records the device ([`vfio_pci_format`]) as the handler's
//!   state; FREEZE records it again, with whether it may master the bus
//!   then. CANCEL, UNPRESERVE_FD and closing the session thaw it.
//! - The old kernel's shutdown still stops the device's DMA (it clears bus
//!   mastering, and VT-d translation is turned off): nothing runs across
//!   the jump itself.
//! - In the new kernel, from luo-rs's init, the device is held for its
//!   retriever: only vfio-pci may bind it (its probe neither resets nor
//!   enables it), it stays powered, no bus reset of its set happens, and
//!   opening it through vfio answers `EBUSY` to anyone else. RETRIEVE_FD
//!   (the iommufd first: the dependency) opens it again without resetting
//!   it, bound to the retrieved iommufd and attached to the IOAS of the
//!   same id (adopting the handed-over page table and domain id where
//!   there is one), and lets it master the bus again if it could at
//!   FREEZE; if that fails, the device is closed again without a reset
//!   and a retry may open it. FINISH of a file nobody retrieved lets the device go:
//!   vfio-pci keeps it, anyone may open it, and its handed-over page
//!   table is freed.
//!
//! Not carried: interrupts (the new kernel turns MSI and MSI-X off at
//! enumeration: the VMM sets its interrupts again), the device's id in the
//! iommufd (BIND's `out_devid`: the device gets a new one), a KVM it was
//! associated with, PASID attachments, dma-bufs, and DMA during the jump.

use crate::handlers::iommufd::HANDLER as IOMMUFD_HANDLER;
use crate::handlers::vfio_pci_format::{self, Device};
use crate::iommufd::Iommufd;
use crate::luo_file::{Dependency, FileHandler, HandedOver, Preserved};
use crate::luo_session;
use crate::vfio::{self, VfioDevice};
use kernel::{fs::File, prelude::*, str::CStr, sync::aref::ARef};

/// The VFIO handler.
pub(crate) struct VfioPciHandler;

/// The one instance, registered at luo-rs's init.
pub(crate) static HANDLER: VfioPciHandler = VfioPciHandler;

/// Holds, for their retrievers, the devices of the files handed over to
/// this kernel; called once, when the handler is registered at boot.
pub(crate) fn hold_incoming() {
    luo_session::each_incoming_of(HANDLER.compatible(), |file| {
        match Device::decode(file.state) {
            Ok(device) => vfio::hold(&device),
            Err(e) => pr_err!("a handed-over vfio-pci record is damaged: {:?}\n", e),
        }
    });
}

/// A preserved device file.
struct PreservedDevice {
    device: VfioDevice,
    /// The iommufd it is bound to, its one dependency.
    depends: [Dependency; 1],
    /// The iommufd's file, held while it is named in `depends`.
    iommufd: ARef<File>,
    /// The record, written at PREPARE and FREEZE.
    record: [u8; vfio_pci_format::LEN],
    /// Whether this preservation froze the device file (and must thaw it).
    frozen: bool,
}

impl PreservedDevice {
    fn thaw(&mut self) {
        if self.frozen {
            self.device.thaw();
            self.frozen = false;
        }
    }

    /// Records the device as it is now.
    fn take_in(&mut self) -> Result {
        let now = self.device.describe()?;
        if !core::ptr::eq(&*now.iommufd, &*self.iommufd) {
            // Bound once and for all at BIND: cannot happen.
            return Err(EINVAL);
        }
        self.record = now.device.encode();
        Ok(())
    }
}

impl Preserved for PreservedDevice {
    fn dependencies(&self) -> &[Dependency] {
        &self.depends
    }

    fn prepare(&mut self) -> Result<u64> {
        if !self.frozen {
            self.device.freeze()?;
            self.frozen = true;
        }
        if let Err(e) = self.take_in() {
            self.thaw();
            return Err(e);
        }
        Ok(0)
    }

    fn freeze(&mut self) -> Result<u64> {
        // Frozen since PREPARE; whether it may master the bus may change.
        self.take_in()?;
        Ok(0)
    }

    fn state(&self) -> &[u8] {
        &self.record
    }

    fn max_state(&self) -> usize {
        vfio_pci_format::LEN
    }

    fn cancel(&mut self) {
        self.thaw();
    }
}

impl Drop for PreservedDevice {
    fn drop(&mut self) {
        self.thaw();
    }
}

impl FileHandler for VfioPciHandler {
    fn compatible(&self) -> &'static CStr {
        c"luo-rs,vfio-pci-v1"
    }

    fn can_preserve(&self, file: &File) -> bool {
        // Any vfio cdev file: preserve() says what it refuses, and why.
        VfioDevice::is_device_file(file)
    }

    fn max_dependencies(&self) -> usize {
        1
    }

    fn preserve(&self, file: ARef<File>) -> Result<KBox<dyn Preserved>> {
        let (device, description) = VfioDevice::new(file)?;
        let iommufd = description.iommufd;
        Ok(KBox::new(
            PreservedDevice {
                device,
                depends: [Dependency::on_file(IOMMUFD_HANDLER.compatible(), &iommufd)],
                iommufd,
                record: description.device.encode(),
                frozen: false,
            },
            GFP_KERNEL_ACCOUNT,
        )?)
    }

    fn retrieve(&self, file: &HandedOver<'_>, depends: &[ARef<File>]) -> Result<ARef<File>> {
        let device = Device::decode(file.state).map_err(|_| EINVAL)?;
        // A damaged record could name any earlier file of the session.
        let iommufd = match depends {
            [f] if Iommufd::is_iommufd(f) => f,
            _ => return Err(EINVAL),
        };
        let opened = vfio::open(&device, iommufd)?;
        vfio::release(&device);
        Ok(opened)
    }

    fn finish(&self, file: &HandedOver<'_>, retrieved: bool) {
        if retrieved {
            return;
        }
        // Nobody retrieved it: anyone may open the device now.
        if let Ok(device) = Device::decode(file.state) {
            vfio::release(&device);
        }
    }
}
