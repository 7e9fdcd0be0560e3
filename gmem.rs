// SPDX-License-Identifier: GPL-2.0

//! Safe wrappers of the guest_memfd steps the guest_memfd handler needs
//! (`gmem_glue.c`, over the calls patch 0007 adds to guest_memfd). This is
//! the only module that calls them.
//!
//! [`GuestMemfd`] is a guest_memfd being preserved: it can be frozen (no
//! fallocate, so no folio leaves it) and its holes sealed, and its folios
//! pinned ([`PinnedFolio`]) without filling holes, as a memfd's
//! ([`crate::shmem::Memfd`]). [`NewGuestMemfd`] is one being rebuilt in the
//! new kernel, bound to the retrieved VM, from folios KHO restored.

use crate::handlers::memfd::{FolioFile, Mutable, Records};
use crate::handlers::memfd_format::{Kind, Runs};
use crate::kho::RestoredFolio;
use crate::kvm::Vm;
use crate::shmem::PinnedFolio;
use core::ptr::NonNull;
use kernel::{bindings, error::from_err_ptr, fs::File, prelude::*, sync::aref::ARef};

/// A guest_memfd.
///
/// # Invariants
///
/// `kvm` is the VM the file is bound to (`luo_gmem_kvm`), kept alive by
/// the file.
pub(crate) struct GuestMemfd {
    file: ARef<File>,
    kvm: NonNull<bindings::kvm>,
}

// SAFETY: the file is refcounted and usable from any thread; `kvm` is
// kept alive by the file, and only fields fixed once the VM exists are
// read through it (by C).
unsafe impl Send for GuestMemfd {}

impl GuestMemfd {
    /// Whether `file` is a guest_memfd.
    pub(crate) fn is_guest_memfd(file: &File) -> bool {
        // SAFETY: `file` is a valid file for the duration of the call.
        !unsafe { bindings::luo_gmem_kvm(file.as_ptr()) }.is_null()
    }

    /// Takes `file` if it is a guest_memfd.
    pub(crate) fn new(file: ARef<File>) -> Option<Self> {
        // SAFETY: `file` is a valid file for the duration of the call.
        let kvm = NonNull::new(unsafe { bindings::luo_gmem_kvm(file.as_ptr()) })?;
        // INVARIANT: the VM `file` is bound to, and holds.
        Some(Self { file, kvm })
    }

    /// The VM it is bound to, as [`Vm::object`] names it.
    pub(crate) fn vm_object(&self) -> usize {
        self.kvm.as_ptr() as usize
    }

    /// The `GUEST_MEMFD_FLAG_*` it was made with.
    pub(crate) fn flags(&self) -> u64 {
        // SAFETY: the file is a guest_memfd (type invariant).
        unsafe { bindings::luo_gmem_flags(self.file.as_ptr()) }
    }

    /// Whether it can cross a live update ([`carried`]).
    pub(crate) fn carried(&self) -> bool {
        carried(self.flags())
    }

    /// Whether its VM serves the calling process.
    pub(crate) fn vm_is_callers(&self) -> bool {
        // SAFETY: `kvm` is alive, held by the file (type invariant).
        unsafe { bindings::luo_kvm_is_callers(self.kvm.as_ptr()) }
    }
}

impl FolioFile for GuestMemfd {
    const KIND: Kind = Kind::GuestMemfd;
    // One per VM, and large: a page is nothing beside it.
    const RECORDS: Records = Records::Page;
    // `luo-rs,guest-memfd-v1` (no run goes down).
    const RUNS: Runs = Runs::Ascending;

    fn inode_id(&self) -> usize {
        // SAFETY: the file is valid; `f_inode` is set for its lifetime.
        unsafe { (*self.file.as_ptr()).f_inode as usize }
    }

    fn freeze(&self) -> Result<u64> {
        // SAFETY: the file is a guest_memfd; its size never changes.
        let size = unsafe {
            bindings::luo_gmem_freeze(self.file.as_ptr());
            bindings::luo_gmem_size(self.file.as_ptr())
        };
        u64::try_from(size).map_err(|_| EINVAL)
    }

    fn seal_holes(&self) {
        // SAFETY: the file is a guest_memfd.
        unsafe { bindings::luo_gmem_seal_holes(self.file.as_ptr()) }
    }

    fn unseal_holes(&self) {
        // SAFETY: the file is a guest_memfd.
        unsafe { bindings::luo_gmem_unseal_holes(self.file.as_ptr()) }
    }

    fn thaw(&self) {
        // SAFETY: the file is a guest_memfd.
        unsafe { bindings::luo_gmem_thaw(self.file.as_ptr()) }
    }

    fn nr_entries(&self) -> u64 {
        // SAFETY: the file is a guest_memfd.
        unsafe { bindings::luo_gmem_nr_pages(self.file.as_ptr()) as u64 }
    }

    fn mutable(&self) -> Result<Mutable> {
        // Fixed at creation, and known (`carried`): they fit. A
        // guest_memfd has no position or mode worth keeping.
        let flags = u32::try_from(self.flags()).map_err(|_| EOPNOTSUPP)?;
        Ok(Mutable {
            flags,
            pos: 0,
            mode: 0,
        })
    }

    fn name(&self, _buf: &mut [u8]) -> usize {
        0
    }

    fn pin_present(
        &self,
        _size: u64,
        from: u64,
        end: u64,
        mut f: impl FnMut(PinnedFolio) -> Result,
    ) -> Result {
        const MAX: usize = bindings::LUO_GMEM_PIN_MAX as usize;
        let mut folios = [core::ptr::null_mut::<bindings::folio>(); MAX];
        let mut start = kernel::ffi::c_ulong::try_from(from).map_err(|_| EINVAL)?;
        let end = kernel::ffi::c_ulong::try_from(end).map_err(|_| EINVAL)?;
        loop {
            // SAFETY: the file is a guest_memfd; `folios` has room for
            // `LUO_GMEM_PIN_MAX` pointers.
            let n = unsafe {
                bindings::luo_gmem_pin(self.file.as_ptr(), &mut start, end, folios.as_mut_ptr())
            };
            if n < 0 {
                return Err(Error::from_errno(
                    i32::try_from(n).unwrap_or(EIO.to_errno()),
                ));
            }
            let n = usize::try_from(n).map_err(|_| EIO)?.min(MAX);
            if n == 0 {
                return Ok(());
            }
            let mut result = Ok(());
            for &p in &folios[..n] {
                let Some(p) = NonNull::new(p) else {
                    result = Err(EIO);
                    continue;
                };
                // SAFETY: `luo_gmem_pin` pinned each folio it returned, and
                // the pin is handed over here.
                let pin = unsafe { PinnedFolio::from_raw(p) };
                if result.is_ok() {
                    pin.settle();
                    result = f(pin);
                }
            }
            result?;
            crate::sched::cond_resched();
            if crate::sched::killed() {
                return Err(EINTR);
            }
        }
    }
}

/// Whether a guest_memfd made with `flags` can cross a live update: all
/// its memory is shared with the host, and luo-rs knows every flag.
pub(crate) fn carried(flags: u64) -> bool {
    // SAFETY: a pure check of a number.
    unsafe { bindings::luo_gmem_flags_carried(flags) }
}

/// A guest_memfd being rebuilt in the new kernel.
pub(crate) struct NewGuestMemfd(ARef<File>);

impl NewGuestMemfd {
    /// An empty guest_memfd of `size` bytes and `flags`, bound to `vm`:
    /// `EINVAL` for flags that cannot cross (a damaged record) or that the
    /// VM does not take.
    pub(crate) fn create(vm: &Vm, size: u64, flags: u64) -> Result<Self> {
        if !carried(flags) {
            return Err(EINVAL);
        }
        let size = bindings::loff_t::try_from(size).map_err(|_| EINVAL)?;
        // SAFETY: `vm` keeps its VM alive across the call.
        let raw = from_err_ptr(unsafe { bindings::luo_gmem_create(vm.as_ptr(), size, flags) })?;
        let ptr = NonNull::new(raw.cast::<File>()).ok_or(ENOMEM)?;
        // SAFETY: a new file with one reference, which the `ARef` takes
        // over; `File` wraps `struct file` transparently.
        Ok(Self(unsafe { ARef::from_raw(ptr) }))
    }

    /// Puts `folio` (charged) into the file at page `index`. On failure
    /// the folio is given back, as it was (`EINVAL` for a large folio).
    pub(crate) fn insert(
        &mut self,
        folio: RestoredFolio,
        index: u64,
    ) -> core::result::Result<(), (Error, RestoredFolio)> {
        let Ok(index) = kernel::ffi::c_ulong::try_from(index) else {
            return Err((EINVAL, folio));
        };
        // SAFETY: the file is a new guest_memfd, not handed out yet, and
        // we hold a reference to the folio, consumed on success only.
        let ret = unsafe { bindings::luo_gmem_insert(self.0.as_ptr(), folio.as_ptr(), index) };
        match kernel::error::to_result(ret) {
            Ok(()) => {
                folio.consumed();
                Ok(())
            }
            Err(e) => Err((e, folio)),
        }
    }

    /// Hands the file out.
    pub(crate) fn file(&self) -> ARef<File> {
        self.0.clone()
    }
}
