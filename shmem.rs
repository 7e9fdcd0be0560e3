// SPDX-License-Identifier: GPL-2.0

//! Safe wrappers of the shmem steps the memfd handler needs
//! (`memfd_shmem.c`). This is the only module that calls them.
//!
//! [`Memfd`] is a memfd being preserved: its mapping can be frozen (size
//! and holes fixed) and its present folios pinned ([`PinnedFolio`]) without
//! filling holes. [`NewMemfd`] is one being rebuilt in the new kernel from
//! folios KHO restored.

use crate::handlers::memfd::{FolioFile, Mutable, Records};
use crate::handlers::memfd_format::{Kind, Runs};
use crate::kho::RestoredFolio;
use core::mem::MaybeUninit;
use core::ptr::NonNull;
use kernel::{bindings, error::from_err_ptr, fs::File, prelude::*, sync::aref::ARef};

/// A memfd (a shmem file with no link).
///
/// Invariant: `luo_memfd_is_memfd` holds for the file.
pub(crate) struct Memfd(ARef<File>);

impl Memfd {
    /// Whether `file` is a memfd.
    pub(crate) fn is_memfd(file: &File) -> bool {
        // SAFETY: `file` is a valid file for the duration of the call.
        unsafe { bindings::luo_memfd_is_memfd(file.as_ptr()) }
    }

    /// Takes `file` if it is a memfd.
    pub(crate) fn new(file: ARef<File>) -> Option<Self> {
        Self::is_memfd(&file).then_some(Memfd(file))
    }

    /// Whether the caller owns the memfd (created it, as a uid), or has
    /// `CAP_FOWNER` over it.
    pub(crate) fn caller_owns(&self) -> bool {
        // SAFETY: the file is valid; the check reads the caller's creds.
        unsafe { bindings::luo_memfd_caller_owns(self.0.as_ptr()) }
    }

    /// The file position.
    pub(crate) fn pos(&self) -> u64 {
        // SAFETY: the file is valid.
        unsafe { bindings::luo_file_pos(self.0.as_ptr()) }.max(0) as u64
    }

    /// The seals (`F_SEAL_*`).
    pub(crate) fn seals(&self) -> Result<u32> {
        // SAFETY: the file is a valid memfd.
        let seals = unsafe { bindings::memfd_get_seals(self.0.as_ptr()) };
        kernel::error::to_result(seals.min(0))?;
        u32::try_from(seals).map_err(|_| EINVAL)
    }

    /// The permission bits.
    pub(crate) fn mode(&self) -> u32 {
        // SAFETY: the file is valid.
        unsafe { bindings::luo_memfd_mode(self.0.as_ptr()) }
    }
}

impl FolioFile for Memfd {
    const KIND: Kind = Kind::Memfd;
    const RECORDS: Records = Records::StateOrPage;
    const RUNS: Runs = Runs::EitherWay;

    /// Identifies the memfd itself (its inode), whichever file refers to it.
    fn inode_id(&self) -> usize {
        // SAFETY: the file is valid; `f_inode` is set for its lifetime.
        unsafe { (*self.0.as_ptr()).f_inode as usize }
    }

    /// Freezes the mapping: shmem refuses truncate, growth and fallocate
    /// (`EPERM`) until [`FolioFile::thaw`]. Returns the size, now fixed.
    /// `EAGAIN` if a writer held the memfd for 2 s (try again), `EINTR` if
    /// the caller was killed meanwhile; then nothing changed.
    fn freeze(&self) -> Result<u64> {
        // SAFETY: the file is a valid memfd (type invariant).
        let size = unsafe { bindings::luo_memfd_freeze(self.0.as_ptr()) };
        if size < 0 {
            let errno = i32::try_from(size).unwrap_or(EINVAL.to_errno());
            return Err(Error::from_errno(errno));
        }
        Ok(size as u64)
    }

    /// On a frozen memfd: from now on shmem refuses new pages in holes
    /// (`EPERM` for write(), `SIGBUS` for a fault), so the set of its
    /// pages is final. Undone by [`FolioFile::thaw`].
    fn seal_holes(&self) {
        // SAFETY: the file is a valid memfd.
        unsafe { bindings::luo_memfd_seal_holes(self.0.as_ptr()) }
    }

    /// Undoes [`FolioFile::seal_holes`]: holes may fill again, the mapping
    /// stays frozen.
    fn unseal_holes(&self) {
        // SAFETY: the file is a valid memfd.
        unsafe { bindings::luo_memfd_unseal_holes(self.0.as_ptr()) }
    }

    /// Undoes [`FolioFile::freeze`] and [`FolioFile::seal_holes`].
    fn thaw(&self) {
        // SAFETY: the file is a valid memfd.
        unsafe { bindings::luo_memfd_thaw(self.0.as_ptr()) }
    }

    /// Pages the memfd holds, in the page cache or in swap; may read too
    /// high while pages move to or from swap, never too low.
    fn nr_entries(&self) -> u64 {
        // SAFETY: the file is a valid memfd.
        unsafe { bindings::luo_memfd_nr_entries(self.0.as_ptr()) as u64 }
    }

    /// Copies the dentry name into `buf`; returns its length (capped).
    fn name(&self, buf: &mut [u8]) -> usize {
        // SAFETY: the file is valid and `buf` is writable for its length.
        unsafe { bindings::luo_memfd_name(self.0.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) }
    }

    /// Pins every folio present in pages `[from, end)` of the file (`size`
    /// bytes, frozen), in index order, and gives each to `f`. Holes are
    /// skipped, not filled. Stops at the first error.
    fn pin_present(
        &self,
        size: u64,
        from: u64,
        end: u64,
        mut f: impl FnMut(PinnedFolio) -> Result,
    ) -> Result {
        const BATCH: usize = bindings::LUO_MEMFD_PIN_MAX as usize;
        // Left uninitialised: FREEZE calls this once per hole filled since
        // PREPARE, and clearing these 2.5 KiB each time was its largest
        // cost (perf in the VM).
        let mut scratch = MaybeUninit::<[*mut bindings::folio; BATCH]>::uninit();
        let mut pinned = MaybeUninit::<[bindings::luo_pinned_folio; BATCH]>::uninit();
        let mut start = from as kernel::ffi::c_ulong;
        let end = end as kernel::ffi::c_ulong;
        let mut run_end: kernel::ffi::c_ulong = 0;
        // SAFETY: the file is a valid memfd; the out-pointers are valid.
        while unsafe {
            bindings::luo_memfd_next_run(self.0.as_ptr(), &mut start, end, &mut run_end)
        } {
            while start < run_end {
                let max = (run_end - start).min(BATCH as kernel::ffi::c_ulong) as u32;
                // SAFETY: the file is a valid memfd whose size is `size`
                // (frozen), `[start, run_end)` lies inside it, and
                // `scratch` and `pinned` have room for `max` entries.
                let n = unsafe {
                    bindings::luo_memfd_pin(
                        self.0.as_ptr(),
                        start,
                        run_end,
                        size as bindings::loff_t,
                        scratch.as_mut_ptr().cast(),
                        pinned.as_mut_ptr().cast(),
                        max,
                    )
                };
                if n < 0 {
                    return Err(Error::from_errno(
                        i32::try_from(n).unwrap_or(EIO.to_errno()),
                    ));
                }
                let n = usize::try_from(n).map_err(|_| EIO)?.min(max as usize);
                if n == 0 {
                    return Err(EIO);
                }
                // SAFETY: `luo_memfd_pin` initialised the first `n` entries
                // (at most `max`, checked above, itself at most `BATCH`).
                let entries = unsafe {
                    core::slice::from_raw_parts(
                        pinned.as_ptr().cast::<bindings::luo_pinned_folio>(),
                        n,
                    )
                };
                let mut result = Ok(());
                for entry in entries {
                    // SAFETY: `luo_memfd_pin` pinned the folio of each entry
                    // it filled, described it, and hands the pin over here.
                    match unsafe { PinnedFolio::from_entry(entry) } {
                        Some(p) => {
                            start = start.max((p.index() + p.nr_pages()) as kernel::ffi::c_ulong);
                            if result.is_ok() {
                                result = f(p);
                            }
                        }
                        None => result = Err(EIO),
                    }
                }
                result?;
                // A large memfd is many batches: let others run, and let
                // a killed caller go (PREPARE then rolls everything back).
                crate::sched::cond_resched();
                if crate::sched::killed() {
                    return Err(EINTR);
                }
            }
        }
        Ok(())
    }

    fn mutable(&self) -> Result<Mutable> {
        Ok(Mutable {
            flags: self.seals()?,
            pos: self.pos(),
            mode: self.mode(),
        })
    }
}

/// A folio of a memfd or guest_memfd, pinned (it can neither move nor
/// leave the file), with where it is, read once when it was pinned.
///
/// # Invariants
///
/// `folio` is a folio pinned as `FOLL_PIN` pins (by `luo_memfd_pin` or
/// `luo_gmem_pin`); the pin is this object's. `phys`, `index` and
/// `nr_pages` are the folio's, which a pinned folio keeps.
pub(crate) struct PinnedFolio {
    folio: NonNull<bindings::folio>,
    phys: u64,
    index: u64,
    nr_pages: u64,
}

// SAFETY: a pin may be dropped from any thread.
unsafe impl Send for PinnedFolio {}
// SAFETY: shared access only reads the folio's index, size and address.
unsafe impl Sync for PinnedFolio {}

impl PinnedFolio {
    /// Takes over the pin on the folio `entry` describes; `None` if it
    /// names none.
    ///
    /// # Safety
    ///
    /// `entry` was filled by `luo_memfd_pin` or `luo_folio_describe` for a
    /// folio pinned as `FOLL_PIN` pins, and the caller gives that pin up.
    unsafe fn from_entry(entry: &bindings::luo_pinned_folio) -> Option<Self> {
        // INVARIANT: pinned, the pin is ours and the fields are the
        // folio's (safety requirement).
        Some(Self {
            folio: NonNull::new(entry.folio)?,
            phys: entry.phys,
            index: entry.index,
            nr_pages: entry.nr_pages,
        })
    }

    /// Takes over the pin on `folio` (for the guest_memfd handler).
    ///
    /// # Safety
    ///
    /// `folio` is pinned as `FOLL_PIN` pins, and the caller gives that pin
    /// up.
    #[cfg(CONFIG_LIVEUPDATE_RS_KVM)]
    pub(crate) unsafe fn from_raw(folio: NonNull<bindings::folio>) -> Self {
        let mut entry = bindings::luo_pinned_folio {
            folio: core::ptr::null_mut(),
            phys: 0,
            index: 0,
            nr_pages: 0,
        };
        // SAFETY: the folio is pinned (safety requirement), so it stays
        // allocated; `entry` is writable.
        unsafe { bindings::luo_folio_describe(folio.as_ptr(), &mut entry) };
        // INVARIANT: pinned, the pin is ours (safety requirement), and
        // the fields were just read from it.
        Self {
            folio,
            phys: entry.phys,
            index: entry.index,
            nr_pages: entry.nr_pages,
        }
    }

    /// The raw folio, for KHO.
    pub(crate) fn as_ptr(&self) -> *mut bindings::folio {
        self.folio.as_ptr()
    }

    /// Page index of its first page in the file.
    pub(crate) fn index(&self) -> u64 {
        self.index
    }

    /// Pages it spans.
    pub(crate) fn nr_pages(&self) -> u64 {
        self.nr_pages
    }

    /// Physical address of its first page.
    pub(crate) fn phys(&self) -> u64 {
        self.phys
    }

    /// Keeps the pin: whoever took the folio's address now owns it and
    /// must drop it with `luo_kho_release_pinned` (`PreservedRuns`).
    pub(crate) fn keep(self) {
        core::mem::forget(self);
    }

    /// Makes it handover-ready: a folio never written (fallocated) is
    /// zeroed and marked uptodate. `luo_memfd_pin` does it for a memfd's.
    #[cfg(CONFIG_LIVEUPDATE_RS_KVM)]
    pub(crate) fn settle(&self) {
        // SAFETY: the folio is pinned; the helper takes the folio lock.
        unsafe { bindings::luo_memfd_settle(self.folio.as_ptr()) }
    }
}

impl Drop for PinnedFolio {
    fn drop(&mut self) {
        // SAFETY: by the type invariant we own one pin.
        unsafe { bindings::luo_folio_unpin(self.folio.as_ptr()) }
    }
}

/// Charges `folio` to the caller's memory cgroup: `ENOMEM` if it has no
/// room (never an OOM kill). A folio must be charged before
/// [`NewMemfd::insert`].
pub(crate) fn charge(folio: &RestoredFolio) -> Result {
    // SAFETY: we hold a reference to the folio, which is in no page cache
    // and not charged (restored from KHO, or uncharged again).
    kernel::error::to_result(unsafe { bindings::luo_folio_charge(folio.as_ptr()) })
}

/// Undoes [`charge`] of a folio that was not inserted.
pub(crate) fn uncharge(folio: &RestoredFolio) {
    // SAFETY: we hold a reference to the charged folio, which is in no
    // page cache and not on the LRU.
    unsafe { bindings::luo_folio_uncharge(folio.as_ptr()) }
}

/// A memfd being rebuilt in the new kernel.
pub(crate) struct NewMemfd(ARef<File>);

impl NewMemfd {
    /// An empty memfd named `name` (the old dentry name) of `size` bytes.
    /// `ENOMEM` if the kernel has not the memory for it.
    pub(crate) fn create(name: &[u8], size: u64) -> Result<Self> {
        let mut cname = KVec::with_capacity(name.len() + 1, GFP_KERNEL)?;
        cname.extend_from_slice(name, GFP_KERNEL)?;
        cname.push(0, GFP_KERNEL)?;
        let size = bindings::loff_t::try_from(size).map_err(|_| EINVAL)?;
        // SAFETY: `cname` is NUL-terminated and lives across the call.
        let raw = from_err_ptr(unsafe { bindings::luo_memfd_create(cname.as_ptr().cast(), size) })
            // shmem says ENOSPC when it cannot allocate an inode; memfds
            // live on its internal mount, which has no inode limit, so
            // that is want of memory, and worth another attempt.
            .map_err(|e| if e == ENOSPC { ENOMEM } else { e })?;
        let ptr = NonNull::new(raw.cast::<File>()).ok_or(ENOMEM)?;
        // SAFETY: `luo_memfd_create` returned a new file with one
        // reference, which the `ARef` takes over; `File` wraps `struct
        // file` transparently.
        Ok(NewMemfd(unsafe { ARef::from_raw(ptr) }))
    }

    /// Starts putting folios into the file; shmem counts them when the
    /// batch ends, which the borrow makes come before [`NewMemfd::finish`]
    /// hands the file out.
    pub(crate) fn batch(&mut self) -> Batch<'_> {
        Batch {
            memfd: self,
            pages: 0,
        }
    }

    /// Sets permission bits, position and seals, and hands the file out.
    /// May be tried again if it fails.
    pub(crate) fn finish(&self, seals: u32, mode: u32, pos: u64) -> Result<ARef<File>> {
        let pos = bindings::loff_t::try_from(pos).map_err(|_| EINVAL)?;
        // SAFETY: the file is a memfd made with `MFD_ALLOW_SEALING`.
        kernel::error::to_result(unsafe {
            bindings::luo_memfd_finish_setup(self.0.as_ptr(), seals, mode as bindings::umode_t, pos)
        })?;
        Ok(self.0.clone())
    }
}

/// Folios being put into a [`NewMemfd`]: shmem counts the pages once, when
/// the batch is dropped, as upstream's restore does, not once per folio.
/// Until then shmem's count of allocated pages lags behind the page cache:
/// the memfd must not be handed out (truncate trusts that count), which
/// the exclusive borrow ensures.
pub(crate) struct Batch<'a> {
    memfd: &'a mut NewMemfd,
    /// Pages inserted by this batch, not yet counted by shmem.
    pages: kernel::ffi::c_long,
}

impl Batch<'_> {
    /// Puts `folio` (charged) into the file at page `index`, as shmem's
    /// own page. On failure the folio is given back, as it was.
    pub(crate) fn insert(
        &mut self,
        folio: RestoredFolio,
        index: u64,
    ) -> core::result::Result<(), (Error, RestoredFolio)> {
        let Ok(index) = kernel::ffi::c_ulong::try_from(index) else {
            return Err((EINVAL, folio));
        };
        // SAFETY: the file is a new memfd and we hold a reference to the
        // folio, which `luo_memfd_insert` consumes on success only.
        let ret =
            unsafe { bindings::luo_memfd_insert(self.memfd.0.as_ptr(), folio.as_ptr(), index) };
        match kernel::error::to_result(ret) {
            Ok(()) => {
                folio.consumed();
                // The pages it spans (at most 1 << MAX_PAGE_ORDER).
                self.pages = self.pages.saturating_add(ret as kernel::ffi::c_long);
                Ok(())
            }
            Err(e) => Err((e, folio)),
        }
    }
}

impl Drop for Batch<'_> {
    fn drop(&mut self) {
        if self.pages > 0 {
            // SAFETY: the file is a new memfd, and `pages` pages were
            // inserted into it by `luo_memfd_insert` and not counted yet.
            unsafe { bindings::luo_memfd_account(self.memfd.0.as_ptr(), self.pages) }
        }
    }
}
