// SPDX-License-Identifier: GPL-2.0

//! The vCPU handler: a vCPU's architectural state crosses a live update,
//! and the VM's successor gets a vCPU that runs on from the next
//! instruction.
//!
//! - PRESERVE_FD takes a vCPU file from the process its VM serves
//!   (`EPERM` from any other), whose VM is preserved in the same session
//!   already (`ENOLINK` otherwise) and of a type that crosses
//!   (`EOPNOTSUPP`). Nothing is captured yet: the guest runs on.
//! - PREPARE allocates the KHO blob the image will go into (about 20 KiB,
//!   [`kvm_vcpu_format`]). FREEZE freezes the vCPU, so that it cannot run
//!   past what is captured (its memory crosses live: an instruction run
//!   after the capture would run again), and captures it. The VMM has
//!   stopped it by then: a thread in `KVM_RUN` makes FREEZE fail with
//!   `EBUSY`, an exit the VMM has not completed (the next `KVM_RUN` would
//!   finish an `OUT`) with `EINPROGRESS`, a guest that turned hardware
//!   virtualization on (its nested state is not carried) with
//!   `EOPNOTSUPP`; nothing is left frozen then. From FREEZE on every vCPU
//!   ioctl gets `EBUSY`; CANCEL thaws the vCPU, and so do UNPRESERVE_FD
//!   and closing the session.
//! - In the new kernel RETRIEVE_FD gets the retrieved VM (retrieving it
//!   first if user space has not), and, in the process that VM serves
//!   (`EPERM` otherwise), makes a vCPU of the same id in it with the
//!   captured state loaded. The VM must be set up first: its memslots set,
//!   its in-kernel irqchip made if the vCPU had a local APIC, and the
//!   capabilities enabled that change what the state means (`EAGAIN`,
//!   with nothing changed, until then; `EACCES` if the process lacks the
//!   guest's AMX permission). A failed RETRIEVE_FD keeps the
//!   image, and the vCPU if it made one, for the next attempt, which loads
//!   that vCPU again; an image nobody retrieves is freed at FINISH.

use crate::handlers::kvm_vcpu_format;
use crate::handlers::kvm_vm;
use crate::kho::{IncomingBlob, OutgoingBlob};
use crate::kvm::Vm;
use crate::luo_file::{Dependency, FileHandler, HandedOver, Preserved};
use crate::parking::{unpark, Lot, ParkRoom, Parking};
use crate::vcpu::{self, Vcpu};
use kernel::{fs::File, prelude::*, str::CStr, sync::aref::ARef};

/// The vCPU handler.
pub(crate) struct VcpuHandler;

/// The one instance, registered at luo-rs's init.
pub(crate) static HANDLER: VcpuHandler = VcpuHandler;

kernel::sync::global_lock! {
    // SAFETY: initialised by `init`, before the handler is registered.
    //
    // Locking: a leaf. A RETRIEVE_FD holds its session's lock, so one
    // vCPU is never rebuilt twice at once; vCPUs of other sessions are
    // rebuilt meanwhile.
    unsafe(uninit) static PARKED: Mutex<Parking<Leftover>> = Parking::new();
}

/// What a failed RETRIEVE_FD leaves: the image, and the vCPU it made if it
/// got that far (loaded again by the next attempt).
struct Leftover {
    image: IncomingBlob,
    vcpu: Option<ARef<File>>,
}

/// Leftovers of failed RETRIEVE_FDs, in [`PARKED`].
struct Images;

impl Lot for Images {
    type Item = Leftover;

    fn with<R>(f: impl FnOnce(&mut Parking<Leftover>) -> R) -> R {
        f(&mut PARKED.lock())
    }
}

/// Initialises the handler; called once, before it is registered.
pub(crate) fn init() {
    // SAFETY: called once, before the handler is registered.
    unsafe { PARKED.init() };
}

/// A preserved vCPU.
struct PreservedVcpu {
    vcpu: Vcpu,
    /// What it needs in the new kernel: its VM.
    depends: [Dependency; 1],
    /// Allocated at PREPARE, written at FREEZE; freed at CANCEL.
    blob: Option<OutgoingBlob>,
    /// Whether this preservation froze the vCPU (and must thaw it).
    frozen: bool,
}

impl PreservedVcpu {
    fn thaw(&mut self) {
        if self.frozen {
            self.vcpu.thaw();
            self.frozen = false;
        }
    }

    /// Captures the frozen vCPU into `blob`; returns its address.
    fn capture(vcpu: &Vcpu, blob: &mut OutgoingBlob) -> Result<u64> {
        let bytes = blob.as_mut_slice();
        let image = bytes.get_mut(kvm_vcpu_format::HEADER_LEN..).ok_or(EINVAL)?;
        let len = vcpu.save(image)?;
        kvm_vcpu_format::encode(bytes, len).map_err(|_| EINVAL)?;
        Ok(blob.phys())
    }
}

impl Preserved for PreservedVcpu {
    fn dependencies(&self) -> &[Dependency] {
        &self.depends
    }

    fn prepare(&mut self) -> Result<u64> {
        let blob = match self.blob.take() {
            Some(blob) => blob,
            None => OutgoingBlob::new(kvm_vcpu_format::HEADER_LEN + self.vcpu.image_max_size())?,
        };
        Ok(self.blob.insert(blob).phys())
    }

    fn freeze(&mut self) -> Result<u64> {
        let blob = self.blob.as_mut().ok_or(EINVAL)?;
        if !self.frozen {
            self.vcpu.freeze()?;
            self.frozen = true;
        }
        let captured = Self::capture(&self.vcpu, blob);
        if captured.is_err() {
            // Nothing captured: the VMM may use the vCPU to fix what stood
            // in the way (complete its exit) before the next FREEZE.
            self.thaw();
        }
        captured
    }

    fn record_bytes(&self) -> usize {
        self.blob.as_ref().map_or(0, OutgoingBlob::preserved_bytes)
    }

    fn cancel(&mut self) {
        self.thaw();
        self.blob = None;
    }
}

impl Drop for PreservedVcpu {
    fn drop(&mut self) {
        self.thaw();
    }
}

impl FileHandler for VcpuHandler {
    fn compatible(&self) -> &'static CStr {
        c"luo-rs,kvm-vcpu-v1"
    }

    fn can_preserve(&self, file: &File) -> bool {
        Vcpu::is_vcpu(file)
    }

    fn max_dependencies(&self) -> usize {
        1
    }

    fn preserve(&self, file: ARef<File>) -> Result<KBox<dyn Preserved>> {
        let vcpu = Vcpu::new(file).ok_or(ENOENT)?;
        if !vcpu.vm_is_callers() {
            // Only the VMM its VM serves can stop it for the update.
            return Err(EPERM);
        }
        if !vcpu.vm_carried() {
            return Err(EOPNOTSUPP);
        }
        let depends = [Dependency {
            handler: kvm_vm::HANDLER.compatible(),
            object: vcpu.vm_object(),
        }];
        Ok(KBox::new(
            PreservedVcpu {
                vcpu,
                depends,
                blob: None,
                frozen: false,
            },
            GFP_KERNEL_ACCOUNT,
        )?)
    }

    fn retrieve(&self, file: &HandedOver<'_>, depends: &[ARef<File>]) -> Result<ARef<File>> {
        // A damaged record could name any earlier file of the session.
        let vm = depends.first().cloned().and_then(Vm::new).ok_or(EINVAL)?;
        if !vm.is_callers() {
            // KVM makes vCPUs only for the process the VM serves.
            return Err(EPERM);
        }
        // Room to put the image back, before it is taken out.
        let room = ParkRoom::<Images>::new()?;
        let mut left = match unpark::<Images>(file.key) {
            Some(left) => left,
            None => Leftover {
                image: IncomingBlob::restore_whole(file.data_alone()?)?,
                vcpu: None,
            },
        };
        let rebuilt = kvm_vcpu_format::decode(left.image.as_slice())
            .map_err(|_| EINVAL)
            .and_then(|bytes| vcpu::rebuild(&vm, bytes, &mut left.vcpu));
        if rebuilt.is_err() {
            // For the next attempt, once the VMM has set up the VM (a bad
            // image stays too, for FINISH to free).
            room.park(file.key, left);
        }
        rebuilt
    }

    fn finish(&self, file: &HandedOver<'_>, retrieved: bool) {
        if retrieved {
            // The image was freed when the vCPU was made.
            return;
        }
        if unpark::<Images>(file.key).is_none() {
            // Never retrieved: restore the blob only to free it (a record
            // with a state is not this handler's: it is left alone).
            if let Ok(data) = file.data_alone() {
                let _ = IncomingBlob::restore_whole(data);
            }
        }
    }
}
