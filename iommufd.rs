// SPDX-License-Identifier: GPL-2.0

//! Safe wrappers of the iommufd steps the iommufd handler needs
//! (`iommufd_glue.c`, over the calls patch 0010 adds to iommufd). This is
//! the only module that calls them.
//!
//! [`Iommufd`] is an iommufd file being preserved: it can be frozen (no
//! IOAS made or destroyed, no mapping added or removed: `EBUSY`) and
//! listed ([`Snapshot`]). [`create`] and [`restore_ioas`] rebuild one in
//! the new kernel.

use kernel::{bindings, error::from_err_ptr, fs::File, prelude::*, sync::aref::ARef};

use core::ptr::NonNull;

/// Mapping protection, as iommufd writes it ([`Map::prot`]).
pub(crate) const READ: u32 = bindings::IOMMU_READ;
/// See [`READ`].
pub(crate) const WRITE: u32 = bindings::IOMMU_WRITE;

/// An iommufd file.
///
/// # Invariants
///
/// `file` is an iommufd.
pub(crate) struct Iommufd {
    file: ARef<File>,
}

impl Iommufd {
    /// Whether `file` is an iommufd.
    pub(crate) fn is_iommufd(file: &File) -> bool {
        // SAFETY: `file` is a valid file for the duration of the call.
        unsafe { bindings::luo_iommufd_is_iommufd(file.as_ptr()) }
    }

    /// Takes `file` if it is an iommufd.
    pub(crate) fn new(file: ARef<File>) -> Option<Self> {
        // INVARIANT: checked.
        Self::is_iommufd(&file).then_some(Self { file })
    }

    /// The file.
    pub(crate) fn file(&self) -> &ARef<File> {
        &self.file
    }

    /// Fixes the shape of its IOASes until [`Iommufd::thaw`]: `EBUSY`, with
    /// nothing changed, while user space maps or unmaps, or if it is
    /// frozen already.
    pub(crate) fn freeze(&self) -> Result {
        // SAFETY: the file is a valid iommufd (type invariant).
        kernel::error::to_result(unsafe { bindings::luo_iommufd_freeze(self.file.as_ptr()) })
    }

    /// Undoes [`Iommufd::freeze`].
    pub(crate) fn thaw(&self) {
        // SAFETY: the file is a valid iommufd (type invariant); the caller
        // froze it.
        unsafe { bindings::luo_iommufd_thaw(self.file.as_ptr()) }
    }

    /// Its RLIMIT accounting mode (`IOMMU_OPTION_RLIMIT_MODE`).
    pub(crate) fn account_mode(&self) -> u8 {
        // SAFETY: the file is a valid iommufd (type invariant).
        unsafe { bindings::luo_iommufd_account_mode(self.file.as_ptr()) }
    }

    /// Its IOASes and their mappings: `EBUSY` if user space changed them
    /// meanwhile (only a frozen iommufd keeps still).
    pub(crate) fn snapshot(&self) -> Result<Snapshot> {
        let mut raw = bindings::luo_iommufd_snapshot::default();
        // SAFETY: the file is a valid iommufd (type invariant); `raw` is
        // valid for writes.
        kernel::error::to_result(unsafe {
            bindings::luo_iommufd_snapshot(self.file.as_ptr(), &mut raw)
        })?;
        // INVARIANT: filled by a successful call.
        Ok(Snapshot(raw))
    }
}

/// An iommufd's IOASes and their mappings, as [`Iommufd::snapshot`] found
/// them.
///
/// # Invariants
///
/// Filled by `luo_iommufd_snapshot()`: `ioas_ids` holds `nr_ioas` ids,
/// `maps` holds `nr_maps` mappings, each file one of them names is held.
pub(crate) struct Snapshot(bindings::luo_iommufd_snapshot);

// SAFETY: plain memory owned by the snapshot, and file references, usable
// from any thread.
unsafe impl Send for Snapshot {}

/// One mapping of a [`Snapshot`].
pub(crate) struct Map<'a> {
    /// Its IOAS.
    pub(crate) ioas_id: u32,
    /// [`READ`] and/or [`WRITE`].
    pub(crate) prot: u32,
    /// Its first IOVA.
    pub(crate) iova: u64,
    /// Its length in bytes.
    pub(crate) length: u64,
    /// The file it maps, `None` for other memory (user memory, a dma-buf).
    pub(crate) file: Option<&'a File>,
    /// Where in the file it starts.
    pub(crate) offset: u64,
}

impl Snapshot {
    /// The IOAS ids, rising.
    pub(crate) fn ioas_ids(&self) -> &[u32] {
        if self.0.nr_ioas == 0 {
            return &[];
        }
        // SAFETY: `nr_ioas` ids at `ioas_ids`, owned by the snapshot (type
        // invariant).
        unsafe { core::slice::from_raw_parts(self.0.ioas_ids, self.0.nr_ioas) }
    }

    /// The mappings, by IOAS, then IOVA.
    pub(crate) fn maps(&self) -> impl Iterator<Item = Map<'_>> {
        let raw = if self.0.nr_maps == 0 {
            &[]
        } else {
            // SAFETY: `nr_maps` mappings at `maps`, owned by the snapshot
            // (type invariant).
            unsafe { core::slice::from_raw_parts(self.0.maps, self.0.nr_maps) }
        };
        raw.iter().map(|m| Map {
            ioas_id: m.ioas_id,
            prot: m.prot,
            iova: m.iova,
            length: m.length,
            // SAFETY: a file the snapshot holds a reference to (type
            // invariant), for as long as it is borrowed.
            file: NonNull::new(m.file).map(|f| unsafe { File::from_raw_file(f.as_ptr()) }),
            offset: m.offset,
        })
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        // SAFETY: filled by `luo_iommufd_snapshot()` (type invariant).
        unsafe { bindings::luo_iommufd_snapshot_free(&mut self.0) }
    }
}

/// A new iommufd with RLIMIT accounting mode `account_mode`.
pub(crate) fn create(account_mode: u8) -> Result<ARef<File>> {
    // SAFETY: returns a new file or an ERR_PTR.
    let raw = from_err_ptr(unsafe { bindings::luo_iommufd_create(account_mode) })?;
    let ptr = NonNull::new(raw.cast::<File>()).ok_or(ENOMEM)?;
    // SAFETY: a new file with one reference, which the `ARef` takes over;
    // `File` wraps `struct file` transparently.
    Ok(unsafe { ARef::from_raw(ptr) })
}

/// One mapping for [`restore_ioas`].
pub(crate) struct NewMap<'a> {
    /// [`READ`] and/or [`WRITE`].
    pub(crate) prot: u32,
    /// Its first IOVA.
    pub(crate) iova: u64,
    /// Its length in bytes.
    pub(crate) length: u64,
    /// The file it maps.
    pub(crate) file: &'a File,
    /// Where in the file it starts.
    pub(crate) offset: u64,
}

/// Makes IOAS `id` in `iommufd` with `maps`, all or nothing: `EBUSY` if
/// the id is taken, iommufd's map errors otherwise. Call it in the task
/// the pinned pages are charged to.
pub(crate) fn restore_ioas(iommufd: &Iommufd, id: u32, maps: &[NewMap<'_>]) -> Result {
    let mut raw = KVec::with_capacity(maps.len(), GFP_KERNEL)?;
    for m in maps {
        raw.push(
            bindings::iommufd_lu_map {
                ioas_id: id,
                prot: m.prot,
                iova: m.iova,
                length: m.length,
                file: m.file.as_ptr(),
                offset: m.offset,
            },
            GFP_KERNEL,
        )?;
    }
    // SAFETY: the file is a valid iommufd (type invariant); `raw` holds
    // `raw.len()` mappings whose files are held by `maps` for the call;
    // process context.
    kernel::error::to_result(unsafe {
        bindings::luo_iommufd_restore_ioas(iommufd.file.as_ptr(), id, raw.as_ptr(), raw.len())
    })
}
