// SPDX-License-Identifier: GPL-2.0

//! Pinned memory charged to the caller's `RLIMIT_MEMLOCK` (`pinned_vm.c`).
//!
//! Memory luo-rs pins for a handover cannot be reclaimed, so it counts
//! against the limit on memory a process may lock, as RDMA's pins do: the
//! caller's process is charged (`mm_struct::pinned_vm`, its `VmPin`), and
//! past its `RLIMIT_MEMLOCK` it is refused unless it has `CAP_IPC_LOCK`.
//! The count is per process, like VFIO's, so a VMM whose limit covers its
//! guest for VFIO can preserve that guest; it is a count of its own, so
//! the same pages pinned by VFIO or iommufd are not charged twice against
//! one count. The charge lives as long as the [`PinnedVm`], whichever
//! process holds the pinned memory by then.

use core::ptr::NonNull;
use kernel::{bindings, error::from_err_ptr, prelude::*};

/// Pages charged to a process's `pinned_vm`.
///
/// # Invariants
///
/// `mm` was grabbed by `luo_pinned_vm_charge`, which charged it `pages`
/// pages; both are given back on drop.
pub(crate) struct PinnedVm {
    mm: NonNull<bindings::mm_struct>,
    pages: usize,
}

// SAFETY: the `mm_struct` is kept alive by its grab, and `pinned_vm` is an
// atomic: the charge may be given back from any task.
unsafe impl Send for PinnedVm {}

impl PinnedVm {
    /// Charges `pages` pages to the caller's process: `ENOMEM` if that
    /// would take it past its `RLIMIT_MEMLOCK` and it lacks `CAP_IPC_LOCK`.
    pub(crate) fn charge(pages: usize) -> Result<Self> {
        // SAFETY: process context; the call reads the current task's mm,
        // rlimits and creds.
        let mm = from_err_ptr(unsafe { bindings::luo_pinned_vm_charge(pages) })?;
        // `luo_pinned_vm_charge` returns an mm or an error, never NULL.
        let mm = NonNull::new(mm).ok_or(ENOMEM)?;
        // INVARIANT: `luo_pinned_vm_charge` succeeded for `pages`.
        Ok(PinnedVm { mm, pages })
    }

    /// Pages `bytes` bytes span, in the kernel's pages (what is charged).
    pub(crate) fn pages_of(bytes: u64) -> Result<usize> {
        usize::try_from(bytes.div_ceil(bindings::PAGE_SIZE as u64)).map_err(|_| ENOMEM)
    }
}

impl Drop for PinnedVm {
    fn drop(&mut self) {
        // SAFETY: by the type invariant, `mm` is grabbed and charged
        // `pages`; this gives both back once.
        unsafe { bindings::luo_pinned_vm_uncharge(self.mm.as_ptr(), self.pages) };
    }
}
