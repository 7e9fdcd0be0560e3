// SPDX-License-Identifier: GPL-2.0

//! The VM handler: a KVM VM crosses a live update as what it takes to
//! make it again.
//!
//! - PRESERVE_FD takes a VM file (one `KVM_CREATE_VM` made) from the
//!   process it serves (`EPERM` from any other: only its VMM can stop it
//!   and knows its memory), of a type the handover can carry: a VM with no
//!   private memory and no protected state (`KVM_X86_DEFAULT_VM`;
//!   `EOPNOTSUPP` for the others). The VM stays alive while preserved,
//!   also if its VMM closes its fd.
//! - Its handover data is its machine type, the whole record: nothing is
//!   preserved with KHO, so nothing is left to free at FINISH.
//! - In the new kernel RETRIEVE_FD makes a new, empty VM of that type
//!   serving the caller's process (a VM serves the process that made it:
//!   retrieve it in the VMM itself, not in a broker that passes it on),
//!   for a caller that could make one itself: one that may open
//!   `/dev/kvm` read-write (that open's error otherwise). The VMM sets its
//!   memslots, irqchip and vCPUs again.
//! - Files that need the VM (its guest_memfds) name it by its
//!   `struct kvm` ([`Preserved::object`]).

use crate::kvm::{self, Vm};
use crate::luo_file::{FileHandler, HandedOver, Preserved};
use kernel::{fs::File, prelude::*, str::CStr, sync::aref::ARef};

/// The VM handler.
pub(crate) struct VmHandler;

/// The one instance, registered at luo-rs's init.
pub(crate) static HANDLER: VmHandler = VmHandler;

/// A preserved VM.
struct PreservedVm(Vm);

impl Preserved for PreservedVm {
    fn object(&self) -> Option<usize> {
        Some(self.0.object())
    }

    fn prepare(&mut self) -> Result<u64> {
        Ok(self.0.machine_type())
    }

    fn freeze(&mut self) -> Result<u64> {
        Ok(self.0.machine_type())
    }

    fn cancel(&mut self) {}
}

impl FileHandler for VmHandler {
    fn compatible(&self) -> &'static CStr {
        c"luo-rs,kvm-vm-v1"
    }

    fn can_preserve(&self, file: &File) -> bool {
        Vm::is_vm(file)
    }

    fn preserve(&self, file: ARef<File>) -> Result<KBox<dyn Preserved>> {
        let vm = Vm::new(file).ok_or(ENOENT)?;
        if !vm.is_callers() {
            // Only the VMM the VM serves can stop it for the update.
            return Err(EPERM);
        }
        if !kvm::carried(vm.machine_type()) {
            return Err(EOPNOTSUPP);
        }
        Ok(KBox::new(PreservedVm(vm), GFP_KERNEL_ACCOUNT)?)
    }

    fn retrieve(&self, file: &HandedOver<'_>, _depends: &[ARef<File>]) -> Result<ARef<File>> {
        let machine_type = file.data_alone()?;
        if !kvm::carried(machine_type) {
            // Not what this handler wrote.
            return Err(EINVAL);
        }
        kvm::create(machine_type)
    }

    fn finish(&self, _file: &HandedOver<'_>, _retrieved: bool) {
        // Nothing was preserved with KHO: the record is all there is.
    }
}
