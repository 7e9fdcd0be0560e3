// SPDX-License-Identifier: GPL-2.0

//! The memfd handler: VM memory and caches cross a live update in place.
//!
//! Zero-copy: the new kernel puts the very folios the old one used back
//! into a new memfd; nothing is copied in either kernel, and large folios
//! stay large. Only folios present in the file are handed over: a sparse
//! memfd stays sparse.
//!
//! - PRESERVE_FD takes any memfd (a shmem file with no link; hugetlb
//!   memfds are not shmem and are refused with `ENOENT`, like every file
//!   no handler takes), once: another file of the same memfd (opened
//!   through /proc/PID/fd) gets `EBUSY` while the first is preserved.
//!   Only a file open for reading and writing is taken (`EBADF`
//!   otherwise: the memfd comes back read-write), and only from the
//!   memfd's owner (`EPERM` otherwise; or `CAP_FOWNER`): anyone a memfd was
//!   shared with can reopen it read-write, but must not be able to freeze
//!   it under its owner, or take its place and its memory.
//! - PRESERVE_FD also freezes the mapping, as long as the memfd stays
//!   preserved: shmem refuses truncate, growth and fallocate, hole
//!   punching included, with `EPERM`. Its size is then final, and is
//!   charged to the caller against `RLIMIT_MEMLOCK` ([`PinnedVm`];
//!   `ENOMEM` beyond it, unless `CAP_IPC_LOCK`): every page of it may be
//!   pinned by the update, and a process must not pin more than it may
//!   lock. Holes are charged too, so no page written later can go past
//!   the limit, nor make PREPARE fail for everyone.
//! - PREPARE, while the workload runs, pins and KHO-preserves every
//!   present folio (a folio never written is zeroed first), and writes the
//!   header and the folio list ([`memfd_format`]). Writes into existing
//!   pages, by write() or a shared mapping, need nothing more: they land
//!   in the preserved folios.
//! - FREEZE first seals the holes (shmem then refuses a new page in a
//!   hole, `EPERM` for write(), `SIGBUS` for a fault: a page that appeared
//!   after FREEZE would be lost), then preserves the folios that appeared
//!   in holes since PREPARE, swapped out or not (found by counting the
//!   pages the memfd holds in the page cache and in swap, so an unchanged
//!   memfd costs nothing), and records the file position.
//! - CANCEL unpreserves and unpins everything and lets holes fill again;
//!   the mapping stays frozen until the memfd is unpreserved (by
//!   UNPRESERVE_FD or closing its session), which makes it a normal memfd
//!   again and gives the charge back.
//! - In the new kernel, retrieve() makes a new memfd with the old name,
//!   size, permission bits, position and seals, and inserts the restored
//!   folios as shmem's own (`memfd_incoming`): it is an ordinary memfd
//!   from then on. A retrieve that fails for want of memory keeps what it
//!   built for the next attempt; finish() frees whatever is left, or the
//!   folios of a memfd nobody retrieved.

use crate::handlers::memfd_format::{
    self, FormatError, Header, HEADER_LEN, LIST_DESC_LEN, NAME_MAX,
};
use crate::handlers::memfd_incoming;
use crate::key_set::KeySet;
use crate::kho::{OutgoingBlob, PreservedFolio, PreservedWords, VMALLOC_DESC_LEN};
use crate::luo_file::{FileHandler, Preserved};
use crate::pinned_vm::PinnedVm;
use crate::shmem::Memfd;
use kernel::{alloc::VVec, bindings, fs::File, prelude::*, str::CStr, sync::aref::ARef};

/// The header page.
pub(crate) const HEADER_PAGE: usize = 4096;

const _: () = assert!(VMALLOC_DESC_LEN == LIST_DESC_LEN && HEADER_LEN <= HEADER_PAGE);

impl From<FormatError> for Error {
    fn from(_: FormatError) -> Error {
        EINVAL
    }
}

kernel::sync::global_lock! {
    // SAFETY: initialised by `init`, before the handler is registered.
    //
    // Locking: a leaf, taken in `preserve` and when a preserved memfd is
    // dropped. Holds the inode of every preserved memfd.
    unsafe(uninit) static INODES: Mutex<KeySet<usize>> = KeySet::new();
}

/// A memfd's inode in [`INODES`]: a memfd is preserved once, whichever of
/// its files is given.
///
/// # Invariants
///
/// The inode is in [`INODES`] while this lives, put there by this claim.
struct InodeClaim(usize);

impl InodeClaim {
    /// Claims `inode`: `EBUSY` if a preserved memfd holds it.
    fn new(inode: usize) -> Result<Self> {
        let node = KeySet::node(inode)?;
        let mut inodes = INODES.lock();
        if inodes.contains(&inode) {
            return Err(EBUSY);
        }
        inodes.insert(node);
        // INVARIANT: inserted just now.
        Ok(InodeClaim(inode))
    }
}

impl Drop for InodeClaim {
    fn drop(&mut self) {
        INODES.lock().remove(&self.0);
    }
}

/// Initialises the handler; called once from luo-rs's init.
pub(crate) fn init() {
    // SAFETY: called once, before the handler is registered.
    unsafe { INODES.init() };
    memfd_incoming::init();
}

/// The memfd handler.
pub(crate) struct MemfdHandler;

/// The one instance, registered at luo-rs's init.
pub(crate) static HANDLER: MemfdHandler = MemfdHandler;

/// What PREPARE built for one memfd.
struct Prepared {
    /// Every present folio, pinned and preserved, in index order.
    folios: KVVec<PreservedFolio>,
    /// Pages those folios span.
    pages: u64,
    /// The folio list as handed over (`None` when there are no folios).
    list: Option<PreservedWords>,
    /// The header page: the handler's handover data is its address.
    header: OutgoingBlob,
}

/// A preserved memfd.
///
/// # Invariants
///
/// The mapping of `memfd` is frozen while this lives; its holes are sealed
/// only between FREEZE and CANCEL.
struct PreservedMemfd {
    // Dropped in this order, after `drop` thawed the memfd: the claim goes
    // while the file (so the inode) is still held.
    _claim: InodeClaim,
    /// Every page of `size`, charged while the memfd is preserved.
    _charge: PinnedVm,
    memfd: Memfd,
    /// Size in bytes, fixed by the frozen mapping.
    size: u64,
    prepared: Option<Prepared>,
}

impl PreservedMemfd {
    /// Pins and preserves the folios present in the file that are not in
    /// `prepared` yet, keeping the list in index order.
    fn add_new_folios(&self, p: &mut Prepared) -> Result {
        let mut added: KVVec<PreservedFolio> = KVVec::new();
        let end = memfd_format::pages(self.size);
        let known = &p.folios;
        self.memfd.pin_present(self.size, 0, end, |pin| {
            let index = pin.index();
            if known
                .binary_search_by_key(&index, |f| f.folio().index())
                .is_ok()
            {
                // Already preserved; dropping the second pin.
                return Ok(());
            }
            pin.settle();
            added.push(PreservedFolio::new(pin)?, GFP_KERNEL)?;
            Ok(())
        })?;
        if added.is_empty() {
            return Ok(());
        }
        let mut merged = KVVec::with_capacity(p.folios.len() + added.len(), GFP_KERNEL)?;
        let mut old = core::mem::take(&mut p.folios).into_iter().peekable();
        let mut new = added.into_iter().peekable();
        loop {
            let take_old = match (old.peek(), new.peek()) {
                (Some(a), Some(b)) => a.folio().index() < b.folio().index(),
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            let next = if take_old { old.next() } else { new.next() };
            if let Some(f) = next {
                p.pages += if take_old { 0 } else { f.folio().nr_pages() };
                merged.push_within_capacity(f).map_err(|_| ENOMEM)?;
            }
        }
        p.folios = merged;
        // The list changed: hand over a new one.
        p.list = None;
        Ok(())
    }

    /// Writes the folio list (if it changed) and the header; returns the
    /// handover data.
    fn publish(&self, p: &mut Prepared) -> Result<u64> {
        if p.list.is_none() && !p.folios.is_empty() {
            let mut words = VVec::with_capacity(p.folios.len() * 2, GFP_KERNEL)?;
            for f in p.folios.iter() {
                words.push(f.folio().phys(), GFP_KERNEL)?;
                words.push(f.folio().index(), GFP_KERNEL)?;
            }
            p.list = Some(PreservedWords::new(words)?);
        }
        let mut name = [0u8; NAME_MAX];
        let name_len = self.memfd.name(&mut name);
        let header = Header {
            seals: self.memfd.seals()?,
            size: self.size,
            pos: self.memfd.pos(),
            nr_folios: p.folios.len() as u64,
            mode: self.memfd.mode(),
            list: p
                .list
                .as_ref()
                .map_or([0; LIST_DESC_LEN], |l| l.descriptor()),
            name,
            name_len,
        };
        header.encode(p.header.as_mut_slice())?;
        Ok(p.header.phys())
    }
}

impl Preserved for PreservedMemfd {
    fn prepare(&mut self) -> Result<u64> {
        if bindings::PAGE_SIZE as u64 != memfd_format::PAGE_SIZE {
            return Err(EOPNOTSUPP);
        }
        let mut p = Prepared {
            folios: KVVec::new(),
            pages: 0,
            list: None,
            header: OutgoingBlob::new(HEADER_PAGE)?,
        };
        // On failure, dropping `p` unpreserves and unpins what was done.
        let data = self
            .add_new_folios(&mut p)
            .and_then(|()| self.publish(&mut p))?;
        self.prepared = Some(p);
        Ok(data)
    }

    fn freeze(&mut self) -> Result<u64> {
        let mut p = self.prepared.take().ok_or(EINVAL)?;
        // No page may appear after this: its data would be lost.
        self.memfd.seal_holes();
        // Every preserved folio is pinned, so it stays in the page cache
        // (reclaim skips pinned folios and the frozen mapping cannot be
        // truncated): the memfd holds exactly `p.pages` pages unless some
        // appeared in holes since PREPARE, in the page cache or, swapped
        // out, in swap. The count never reads low, so equality means
        // nothing is new; then an unchanged memfd costs no per-page work.
        let result = if self.memfd.nr_entries() != p.pages {
            self.add_new_folios(&mut p)
        } else {
            Ok(())
        };
        let result = result.and_then(|()| self.publish(&mut p));
        // Kept even on failure: the core cancels everything next.
        self.prepared = Some(p);
        result
    }

    fn cancel(&mut self) {
        if self.prepared.take().is_some() {
            // INVARIANT: holes are sealed only until CANCEL.
            self.memfd.unseal_holes();
        }
    }
}

impl Drop for PreservedMemfd {
    fn drop(&mut self) {
        self.cancel();
        self.memfd.thaw();
    }
}

impl FileHandler for MemfdHandler {
    fn compatible(&self) -> &'static CStr {
        c"luo-rs,memfd-v1"
    }

    fn can_preserve(&self, file: &File) -> bool {
        Memfd::is_memfd(file)
    }

    fn preserve(&self, file: ARef<File>) -> Result<KBox<dyn Preserved>> {
        if file.flags() & bindings::O_ACCMODE != bindings::O_RDWR {
            // The memfd comes back read-write, and preserving freezes its
            // shape for every user of it: a reader may do neither.
            return Err(EBADF);
        }
        let memfd = Memfd::new(file).ok_or(ENOENT)?;
        if !memfd.caller_owns() {
            // Anyone a memfd was shared with can reopen it read-write
            // (memfds are mode 0777): only its owner may hand it over.
            return Err(EPERM);
        }
        let claim = InodeClaim::new(memfd.inode_id())?;
        let size = memfd.freeze()?;
        let charge = PinnedVm::pages_of(size).and_then(PinnedVm::charge);
        let charge = match charge {
            Ok(c) => c,
            Err(e) => {
                memfd.thaw();
                return Err(e);
            }
        };
        // INVARIANT: frozen above. If the allocation fails, the drop of
        // the new object thaws the memfd and gives back claim and charge.
        Ok(KBox::new(
            PreservedMemfd {
                _claim: claim,
                _charge: charge,
                memfd,
                size,
                prepared: None,
            },
            GFP_KERNEL_ACCOUNT,
        )?)
    }

    fn retrieve(&self, data: u64) -> Result<ARef<File>> {
        memfd_incoming::retrieve(data)
    }

    fn finish(&self, data: u64, retrieved: bool) {
        memfd_incoming::finish(data, retrieved)
    }
}
