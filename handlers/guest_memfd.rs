// SPDX-License-Identifier: GPL-2.0

//! The guest_memfd handler: a VM's guest_memfd crosses a live update in
//! place, bound to the VM's successor.
//!
//! A guest_memfd is handed over as a memfd is ([`memfd`]): zero-copy (the
//! very folios come back), holes stay holes, size and flags kept, the same
//! record ([`memfd_format`], kind "LUOGMEMF"), the same steps:
//!
//! - PRESERVE_FD takes a guest_memfd from the process its VM serves
//!   (`EPERM` from any other), whose VM is preserved in the same session
//!   already (`ENOLINK` otherwise: the new one is made for the retrieved
//!   VM), and whose memory is all shared (`GUEST_MEMFD_FLAG_INIT_SHARED`:
//!   user space can map it; private memory is refused with `EOPNOTSUPP`).
//!   It freezes the file (fallocate() gets `EPERM`, so no folio leaves
//!   it; its size is fixed anyway), charges its pages against
//!   `RLIMIT_MEMLOCK` like a memfd's, and pins and preserves every folio
//!   present; a folio never used is zeroed first, as guest_memfd would on
//!   first use.
//! - PREPARE takes in the folios that appeared in holes since; FREEZE
//!   seals the holes (a guest fault into one then fails with `EPERM`, a
//!   user fault gets `SIGBUS`; the VMM has its vCPUs stopped by then),
//!   takes in what appeared since PREPARE and rewrites the record if
//!   anything changed. CANCEL unseals; UNPRESERVE_FD or closing the
//!   session thaws the file.
//! - In the new kernel RETRIEVE_FD gets the retrieved VM (retrieving it
//!   first if user space has not) and makes a guest_memfd of the same size
//!   and flags bound to it, holding the restored folios as its own,
//!   initialised. The VMM binds it to its memslots again. A guest_memfd
//!   nobody retrieves is freed at FINISH, as a memfd is.

use crate::gmem::GuestMemfd;
use crate::handlers::kvm_vm;
use crate::handlers::memfd;
use crate::handlers::memfd_format::{self, Kind, Runs};
use crate::handlers::memfd_incoming::{self, Format};
use crate::kvm::Vm;
use crate::luo_file::{Dependency, FileHandler, HandedOver, Preserved};
use kernel::{bindings, fs::File, prelude::*, str::CStr, sync::aref::ARef};

/// The records this handler writes and reads.
const FORMAT: Format = Format {
    kind: Kind::GuestMemfd,
    version: memfd_format::VERSION,
    runs: Runs::Ascending,
};

/// The guest_memfd handler.
pub(crate) struct GuestMemfdHandler;

/// The one instance, registered at luo-rs's init.
pub(crate) static HANDLER: GuestMemfdHandler = GuestMemfdHandler;

impl FileHandler for GuestMemfdHandler {
    fn compatible(&self) -> &'static CStr {
        c"luo-rs,guest-memfd-v1"
    }

    fn can_preserve(&self, file: &File) -> bool {
        GuestMemfd::is_guest_memfd(file)
    }

    fn max_dependencies(&self) -> usize {
        1
    }

    fn preserve(&self, file: ARef<File>) -> Result<KBox<dyn Preserved>> {
        if bindings::PAGE_SIZE as u64 != memfd_format::PAGE_SIZE {
            return Err(EOPNOTSUPP);
        }
        let gmem = GuestMemfd::new(file).ok_or(ENOENT)?;
        if !gmem.vm_is_callers() {
            // Only the VMM its VM serves can stop the guest for the update.
            return Err(EPERM);
        }
        if !gmem.carried() {
            // Private memory, which the host cannot hand over, or a flag
            // this release does not know.
            return Err(EOPNOTSUPP);
        }
        let mut depends = KVec::with_capacity(1, GFP_KERNEL_ACCOUNT)?;
        depends.push(
            Dependency {
                handler: kvm_vm::HANDLER.compatible(),
                object: gmem.vm_object(),
            },
            GFP_KERNEL_ACCOUNT,
        )?;
        memfd::preserve_folios(gmem, depends)
    }

    fn retrieve(&self, file: &HandedOver<'_>, depends: &[ARef<File>]) -> Result<ARef<File>> {
        // A damaged record could name any earlier file of the session.
        let vm = depends.first().cloned().and_then(Vm::new).ok_or(EINVAL)?;
        memfd_incoming::retrieve(file, FORMAT, Some(&vm))
    }

    fn finish(&self, file: &HandedOver<'_>, retrieved: bool) {
        memfd_incoming::finish(file, retrieved, FORMAT)
    }
}
