// SPDX-License-Identifier: GPL-2.0

//! The iommufd handler: an iommufd's IOASes cross a live update with
//! their ids and every mapping, onto the same memfds at the same offsets,
//! so that user space maps nothing again.
//!
//! - PRESERVE_FD takes an iommufd whose every mapping is of a memfd
//!   (`EOPNOTSUPP` for a mapping of user memory or of another kind of
//!   file), sealed against shrinking (`EPERM`: `F_SEAL_SHRINK` keeps the
//!   mapped pages in the memfd), preserved in the same session already
//!   (`ENOLINK`), and the very file user space preserved (the fd it mapped
//!   with). At most [`MAX_MEMFDS`] memfds (`E2BIG`).
//! - PREPARE freezes the iommufd: until CANCEL, no IOAS is made or
//!   destroyed and no mapping is added or removed (`EBUSY` for map, map
//!   file, copy, unmap, IOAS alloc and destroy); devices still attach and
//!   detach. It checks the mappings again (user space may have mapped
//!   since PRESERVE_FD: the same errnos) and writes the record
//!   ([`iommufd_format`]) into a KHO blob; FREEZE has nothing to add.
//!   CANCEL, UNPRESERVE_FD and closing the session thaw it.
//! - In the new kernel RETRIEVE_FD gets the memfds (retrieving those user
//!   space has not) and makes a new iommufd with every IOAS at its id and
//!   every mapping at its IOVA, onto the retrieved memfds at the same
//!   offsets, with the same protection. Nothing is pinned until a device
//!   attaches; the pages are then charged to the caller of RETRIEVE_FD, as
//!   a map would charge them. A failed RETRIEVE_FD keeps
//!   the record for the next attempt; one nobody retrieves is freed at
//!   FINISH.
//!
//! Not carried: devices, hardware page tables and other objects (a VFIO
//! device binds and attaches again, to the IOAS of the same id), allowed
//! IOVA ranges and the IOAS's huge-page option.

use crate::handlers::iommufd_format::{self, Ioas, Mapping};
use crate::handlers::memfd;
use crate::iommufd::{self, Iommufd, NewMap, Snapshot};
use crate::kho::{IncomingBlob, OutgoingBlob};
use crate::luo_file::{Dependency, FileHandler, HandedOver, Preserved};
use crate::parking::{unpark, Lot, ParkRoom, Parking};
use crate::shmem::Memfd;
use kernel::{bindings, fs::File, prelude::*, str::CStr, sync::aref::ARef};

/// Most memfds one iommufd may map.
pub(crate) const MAX_MEMFDS: usize = 64;

/// The iommufd handler.
pub(crate) struct IommufdHandler;

/// The one instance, registered at luo-rs's init.
pub(crate) static HANDLER: IommufdHandler = IommufdHandler;

kernel::sync::global_lock! {
    // SAFETY: initialised by `init`, before the handler is registered.
    //
    // Locking: a leaf. A RETRIEVE_FD holds its session's lock, so one
    // iommufd is never rebuilt twice at once.
    unsafe(uninit) static PARKED: Mutex<Parking<IncomingBlob>> = Parking::new();
}

/// Records of failed RETRIEVE_FDs, in [`PARKED`].
struct Records;

impl Lot for Records {
    type Item = IncomingBlob;

    fn with<R>(f: impl FnOnce(&mut Parking<IncomingBlob>) -> R) -> R {
        f(&mut PARKED.lock())
    }
}

/// Initialises the handler; called once, before it is registered.
pub(crate) fn init() {
    // SAFETY: called once, before the handler is registered.
    unsafe { PARKED.init() };
}

/// The memfds an iommufd maps, checked, in the order of first mapping.
struct Memfds {
    files: KVec<ARef<File>>,
    depends: KVec<Dependency>,
}

impl Memfds {
    /// Checks every mapping of `snap` and collects the memfds.
    fn of(snap: &Snapshot) -> Result<Self> {
        let mut files: KVec<ARef<File>> = KVec::new();
        for map in snap.maps() {
            // Not a file, or a file that is not a memfd: not carried.
            let file = map.file.filter(|f| Memfd::is_memfd(f)).ok_or(EOPNOTSUPP)?;
            if files.iter().any(|f| core::ptr::eq(&**f, file)) {
                continue;
            }
            let memfd = Memfd::new(file.into()).ok_or(EOPNOTSUPP)?;
            if memfd.seals()? & bindings::F_SEAL_SHRINK == 0 {
                // Truncating it would leave the device on pages the
                // memfd, and so the update, no longer has.
                return Err(EPERM);
            }
            if files.len() == MAX_MEMFDS {
                return Err(E2BIG);
            }
            files.push(file.into(), GFP_KERNEL)?;
        }
        let mut depends = KVec::with_capacity(files.len(), GFP_KERNEL)?;
        for file in &files {
            depends.push(
                Dependency::on_file(memfd::HANDLER.compatible(), file),
                GFP_KERNEL,
            )?;
        }
        Ok(Self { files, depends })
    }

    /// Where `file` is among the memfds.
    fn index_of(&self, file: &File) -> Result<u32> {
        let i = self.files.iter().position(|f| core::ptr::eq(&**f, file));
        i.and_then(|i| u32::try_from(i).ok()).ok_or(EINVAL)
    }
}

/// A preserved iommufd.
struct PreservedIommufd {
    iommufd: Iommufd,
    /// The memfds it maps: what it needs in the new kernel.
    memfds: Memfds,
    /// Written at PREPARE; freed at CANCEL.
    blob: Option<OutgoingBlob>,
    /// Whether this preservation froze the iommufd (and must thaw it).
    frozen: bool,
}

impl PreservedIommufd {
    fn thaw(&mut self) {
        if self.frozen {
            self.iommufd.thaw();
            self.frozen = false;
        }
    }

    /// Writes the record of the frozen iommufd's `snap`, whose memfds are
    /// `memfds`, into a new blob.
    fn record(&self, snap: &Snapshot, memfds: &Memfds) -> Result<OutgoingBlob> {
        let mut maps = KVec::with_capacity(snap.maps().count(), GFP_KERNEL)?;
        let mut counts: KVec<(u32, usize)> =
            KVec::with_capacity(snap.ioas_ids().len(), GFP_KERNEL)?;
        for &id in snap.ioas_ids() {
            counts.push((id, 0), GFP_KERNEL)?;
        }
        for map in snap.maps() {
            let file = map.file.ok_or(EOPNOTSUPP)?;
            let mut prot = 0;
            if map.prot & iommufd::READ != 0 {
                prot |= iommufd_format::PROT_READ;
            }
            if map.prot & iommufd::WRITE != 0 {
                prot |= iommufd_format::PROT_WRITE;
            }
            maps.push(
                Mapping {
                    iova: map.iova,
                    length: map.length,
                    offset: map.offset,
                    file: memfds.index_of(file)?,
                    prot,
                },
                GFP_KERNEL,
            )?;
            // The snapshot lists each IOAS's mappings after it, by id.
            let entry = counts
                .iter_mut()
                .find(|(id, _)| *id == map.ioas_id)
                .ok_or(EINVAL)?;
            entry.1 += 1;
        }
        let mut ioases = KVec::with_capacity(counts.len(), GFP_KERNEL)?;
        let mut rest = &maps[..];
        for &(id, n) in counts.iter() {
            let (mine, after) = rest.split_at_checked(n).ok_or(EINVAL)?;
            ioases.push(Ioas { id, mappings: mine }, GFP_KERNEL)?;
            rest = after;
        }
        let len = iommufd_format::len(ioases.len(), maps.len()).ok_or(E2BIG)?;
        let mut blob = OutgoingBlob::new(len)?;
        let files = u32::try_from(memfds.files.len()).map_err(|_| E2BIG)?;
        iommufd_format::encode(
            blob.as_mut_slice(),
            u32::from(self.iommufd.account_mode()),
            &ioases,
            files,
        )
        .map_err(|_| EINVAL)?;
        Ok(blob)
    }

    /// PREPARE's work on the frozen iommufd: the memfds and the record,
    /// kept only if both are made.
    fn take_in(&mut self) -> Result<u64> {
        let snap = self.iommufd.snapshot()?;
        let memfds = Memfds::of(&snap)?;
        let blob = self.record(&snap, &memfds)?;
        self.memfds = memfds;
        Ok(self.blob.insert(blob).phys())
    }
}

impl Preserved for PreservedIommufd {
    fn dependencies(&self) -> &[Dependency] {
        &self.memfds.depends
    }

    fn prepare(&mut self) -> Result<u64> {
        if !self.frozen {
            self.iommufd.freeze()?;
            self.frozen = true;
        }
        let taken = self.take_in();
        if taken.is_err() {
            // Nothing recorded: user space may fix what stood in the way.
            self.thaw();
        }
        taken
    }

    fn freeze(&mut self) -> Result<u64> {
        // Frozen since PREPARE: nothing changed.
        self.blob.as_ref().map(OutgoingBlob::phys).ok_or(EINVAL)
    }

    fn record_bytes(&self) -> usize {
        self.blob.as_ref().map_or(0, OutgoingBlob::preserved_bytes)
    }

    fn cancel(&mut self) {
        self.thaw();
        self.blob = None;
    }
}

impl Drop for PreservedIommufd {
    fn drop(&mut self) {
        self.thaw();
    }
}

/// Rebuilds the iommufd of `record` on the retrieved `memfds`.
fn rebuild(record: &iommufd_format::Record<'_>, memfds: &[ARef<File>]) -> Result<ARef<File>> {
    let mode = u8::try_from(record.account_mode).map_err(|_| EINVAL)?;
    let file = iommufd::create(mode)?;
    let iommufd = Iommufd::new(file).ok_or(EINVAL)?;
    let mut maps = KVec::new();
    for (id, mappings) in record.ioases() {
        maps.clear();
        for m in mappings {
            let mut prot = 0;
            if m.prot & iommufd_format::PROT_READ != 0 {
                prot |= iommufd::READ;
            }
            if m.prot & iommufd_format::PROT_WRITE != 0 {
                prot |= iommufd::WRITE;
            }
            // Checked by the decoder: below the number of memfds.
            let file = memfds.get(m.file as usize).ok_or(EINVAL)?;
            maps.push(
                NewMap {
                    prot,
                    iova: m.iova,
                    length: m.length,
                    file,
                    offset: m.offset,
                },
                GFP_KERNEL,
            )?;
        }
        // On failure the new iommufd goes, with what it had.
        iommufd::restore_ioas(&iommufd, id, &maps)?;
    }
    Ok(iommufd.file().clone())
}

impl FileHandler for IommufdHandler {
    fn compatible(&self) -> &'static CStr {
        c"luo-rs,iommufd-v1"
    }

    fn can_preserve(&self, file: &File) -> bool {
        Iommufd::is_iommufd(file)
    }

    fn max_dependencies(&self) -> usize {
        MAX_MEMFDS
    }

    fn preserve(&self, file: ARef<File>) -> Result<KBox<dyn Preserved>> {
        let iommufd = Iommufd::new(file).ok_or(ENOENT)?;
        // Refuse now what PREPARE would refuse, as the mappings are now.
        let memfds = Memfds::of(&iommufd.snapshot()?)?;
        Ok(KBox::new(
            PreservedIommufd {
                iommufd,
                memfds,
                blob: None,
                frozen: false,
            },
            GFP_KERNEL_ACCOUNT,
        )?)
    }

    fn retrieve(&self, file: &HandedOver<'_>, depends: &[ARef<File>]) -> Result<ARef<File>> {
        // A damaged record could name any earlier file of the session.
        if !depends.iter().all(|f| Memfd::is_memfd(f)) {
            return Err(EINVAL);
        }
        let files = u32::try_from(depends.len()).map_err(|_| EINVAL)?;
        // Room to put the record back, before it is taken out.
        let room = ParkRoom::<Records>::new()?;
        let blob = match unpark::<Records>(file.key) {
            Some(blob) => blob,
            None => IncomingBlob::restore_whole(file.data_alone()?)?,
        };
        let rebuilt = iommufd_format::decode(blob.as_slice(), files)
            .map_err(|_| EINVAL)
            .and_then(|record| rebuild(&record, depends));
        if rebuilt.is_err() {
            // For the next attempt (a bad record stays too, for FINISH).
            room.park(file.key, blob);
        }
        rebuilt
    }

    fn finish(&self, file: &HandedOver<'_>, retrieved: bool) {
        if retrieved {
            // The record was freed when the iommufd was made.
            return;
        }
        if unpark::<Records>(file.key).is_none() {
            // Never retrieved: restore the blob only to free it (a record
            // with a state is not this handler's: it is left alone).
            if let Ok(data) = file.data_alone() {
                let _ = IncomingBlob::restore_whole(data);
            }
        }
    }
}
