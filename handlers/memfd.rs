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
//! - PRESERVE_FD then pins and KHO-preserves every present folio (a
//!   folio never written is zeroed first), while the workload runs and
//!   with no luo-rs lock held: the heavy part is done before the update
//!   starts, also for clients that never send PREPARE. Writes into
//!   existing pages, by write() or a shared mapping, need nothing more:
//!   they land in the preserved folios.
//! - PREPARE takes in the folios that appeared in holes since (found by
//!   counting the pages the memfd holds in the page cache and in swap, so
//!   an unchanged memfd costs nothing, and searched for in the holes
//!   only, so a changed one costs in proportion to its holes, not its
//!   size), and writes the record ([`memfd_format`]): in the handover
//!   itself if the folio list is a few runs (a small memfd takes no page
//!   of handover memory of its own), else a header page and, for long
//!   lists, a list of their own.
//! - FREEZE first seals the holes (shmem then refuses a new page in a
//!   hole, `EPERM` for write(), `SIGBUS` for a fault: a page that appeared
//!   after FREEZE would be lost), then takes in the folios that appeared
//!   since PREPARE, swapped out or not, the same way, and rewrites the
//!   record (file position, mode, seals, folio list) if any of it changed:
//!   for an unchanged memfd FREEZE writes nothing.
//! - CANCEL drops the record and lets holes fill again; the folios stay
//!   pinned and preserved and the mapping frozen until the memfd is
//!   unpreserved (by UNPRESERVE_FD or closing its session), which
//!   unpreserves and unpins them, makes it a normal memfd again and gives
//!   the charge back.
//! - In the new kernel, retrieve() makes a new memfd with the old name,
//!   size, permission bits, position and seals, and inserts the restored
//!   folios as shmem's own (`memfd_incoming`): it is an ordinary memfd
//!   from then on. A retrieve that fails for want of memory keeps what it
//!   built for the next attempt; finish() frees whatever is left, or the
//!   folios of a memfd nobody retrieved.
//!
//! The guest_memfd handler (`handlers/guest_memfd.rs`) takes the same
//! steps on a guest_memfd: what they need of a file is [`FolioFile`].

use crate::handlers::memfd_format::{
    self, FormatError, Header, Kind, Runs, HEADER_LEN, HEADER_PAGE, INLINE_RUNS, LIST_DESC_LEN,
    NAME_MAX, STATE_FIXED, STATE_RUNS, VERSION_3,
};
use crate::handlers::memfd_incoming::{self, Format};
use crate::key_set::KeySet;
use crate::kho::{OutgoingBlob, PreservedRuns, PreservedWords, VMALLOC_DESC_LEN};
use crate::luo_file::{Dependency, FileHandler, HandedOver, Preserved};
use crate::luo_handover::STATE_MAX;
use crate::pinned_vm::PinnedVm;
use crate::shmem::{Memfd, PinnedFolio};
use kernel::{alloc::VVec, bindings, fs::File, prelude::*, str::CStr, sync::aref::ARef};

const _: () = assert!(VMALLOC_DESC_LEN == LIST_DESC_LEN && HEADER_LEN <= HEADER_PAGE);
const _: () = assert!(memfd_format::STATE_LEN_MAX <= STATE_MAX);

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

/// A file whose folios cross the update in place, the way this module
/// describes: a memfd ([`Memfd`]) or a guest_memfd
/// ([`crate::gmem::GuestMemfd`], `handlers/guest_memfd.rs`).
pub(crate) trait FolioFile: Send {
    /// What its record says it is.
    const KIND: Kind;
    /// Where its record may go: with [`Records::StateOrPage`] in the
    /// handover's state when the folio list is short.
    const RECORDS: Records;
    /// The runs its folio list may have, as its handler's format says.
    const RUNS: Runs;
    /// Identifies the file's memory (its inode), whichever file refers
    /// to it.
    fn inode_id(&self) -> usize;
    /// Freezes the file's shape: no folio may leave it, and its size is
    /// fixed, until [`FolioFile::thaw`]. Returns the size.
    fn freeze(&self) -> Result<u64>;
    /// On a frozen file: refuses new folios in holes from now on, so the
    /// set of its folios is final. Undone by [`FolioFile::unseal_holes`]
    /// and [`FolioFile::thaw`].
    fn seal_holes(&self);
    /// Undoes [`FolioFile::seal_holes`]; the file stays frozen.
    fn unseal_holes(&self);
    /// Undoes [`FolioFile::freeze`] and [`FolioFile::seal_holes`].
    fn thaw(&self);
    /// Pages the file holds; may read too high for a moment, never too
    /// low.
    fn nr_entries(&self) -> u64;
    /// The record's fields that may change while the file is preserved.
    fn mutable(&self) -> Result<Mutable>;
    /// Copies the file's name into `buf`; returns its length (capped).
    fn name(&self, buf: &mut [u8]) -> usize;
    /// Pins every folio present in pages `[from, end)` of the file (`size`
    /// bytes, frozen), in index order, and gives each to `f`
    /// handover-ready (zeroed and uptodate if it was never written). Holes
    /// are skipped, not filled. Stops at the first error.
    fn pin_present(
        &self,
        size: u64,
        from: u64,
        end: u64,
        f: impl FnMut(PinnedFolio) -> Result,
    ) -> Result;
}

/// Initialises the handler; called once from luo-rs's init.
pub(crate) fn init() {
    // SAFETY: called once, before the handler is registered.
    unsafe { INODES.init() };
    memfd_incoming::init();
}

/// The records [`MemfdHandler`] writes (`luo-rs,memfd-v4`): version 3 in
/// the handover's state, or version 2 in a page, with runs that may go
/// down.
const MEMFD: Format = Format {
    kind: Kind::Memfd,
    version: VERSION_3,
    runs: Runs::EitherWay,
};

/// The records [`V1_READER`] reads.
const MEMFD_V1: Format = Format {
    kind: Kind::Memfd,
    version: memfd_format::VERSION_1,
    runs: Runs::Ascending,
};

/// The records [`V2_READER`] reads.
const MEMFD_V2: Format = Format {
    kind: Kind::Memfd,
    version: memfd_format::VERSION,
    runs: Runs::Ascending,
};

/// The records [`V3_READER`] reads: as [`MEMFD`]'s, with runs going up
/// only.
const MEMFD_V3: Format = Format {
    kind: Kind::Memfd,
    version: VERSION_3,
    runs: Runs::Ascending,
};

/// Where a [`FolioFile`]'s records go.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Records {
    /// Always a header page of its own, version 2 (guest_memfd).
    Page,
    /// In the handover's state (version 3) if the folio list has at most
    /// [`STATE_RUNS`] runs and the record fits the room PRESERVE_FD
    /// counted for it, else a header page (memfd).
    StateOrPage,
}

/// Where a prepared file's record is now.
enum Record {
    /// Not written yet (or a write failed).
    Unwritten,
    /// A header page, whose physical address is the handover data.
    Page(OutgoingBlob),
    /// Version 3, the file's state in the handover (its `state`); the
    /// data is 0.
    State,
}

/// The memfd handler.
pub(crate) struct MemfdHandler;

/// The one instance, registered at luo-rs's init.
pub(crate) static HANDLER: MemfdHandler = MemfdHandler;

/// A preserved memfd or guest_memfd.
///
/// # Invariants
///
/// `file` is frozen while this lives; its holes are sealed only between
/// FREEZE and CANCEL (while `record` is set).
struct PreservedFolios<F: FolioFile> {
    // Dropped in this order, after `drop` thawed the file: the folios
    // are unpreserved and unpinned, then the claim goes while the file
    // (so the inode) is still held.
    /// Every folio present in the file, pinned and preserved (from
    /// PRESERVE_FD on, the ones that appeared since at each PREPARE and
    /// FREEZE).
    folios: PreservedRuns,
    /// The folio list as last handed over, if it is not inline in the
    /// record; `None` if it is, or `folios` changed since.
    list: Option<PreservedWords>,
    /// Whether `folios` changed since the folio list was last written.
    changed: bool,
    /// From PREPARE to CANCEL: the record.
    record: Option<Record>,
    /// What the record says of the fields that can change while the
    /// memfd is preserved, as last written; `None` until it is written.
    published: Option<Mutable>,
    /// The room its version 3 record may take in the handover, counted
    /// at PRESERVE_FD for the record as it was then (0: never one): a
    /// record that outgrows it goes into a page.
    max_state: usize,
    /// Room for that record, allocated (and charged to the caller) at
    /// PRESERVE_FD; holds it while `record` is [`Record::State`].
    state: KVec<u8>,
    _claim: InodeClaim,
    /// Every page of `size`, charged while the file is preserved.
    _charge: PinnedVm,
    /// The files it needs in the new kernel.
    depends: KVec<Dependency>,
    file: F,
    /// Size in bytes, fixed by the freeze.
    size: u64,
}

/// A preserved file's header fields that may change after PREPARE: FREEZE
/// rewrites its header page only if one of them or its folios did. (Size
/// and name cannot change.)
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mutable {
    /// [`Header::flags`].
    pub(crate) flags: u32,
    pub(crate) pos: u64,
    pub(crate) mode: u32,
}

impl<F: FolioFile> PreservedFolios<F> {
    /// Pins and preserves the folios that appeared in the file since the
    /// last call, keeping `folios` in index order. Only the holes between
    /// the folios held are searched, and nothing at all if the file holds
    /// no more pages than they span: an unchanged memfd costs no per-page
    /// work, a changed one work in proportion to its holes.
    fn catch_up(&mut self) -> Result {
        // The folios held are pinned, so they stay in the file (reclaim
        // skips pinned folios, and the frozen mapping cannot be truncated):
        // the memfd holds exactly as many pages as they span unless some
        // appeared in holes since, in the page cache or, swapped out, in
        // swap. The count never reads low, so equality means nothing is
        // new.
        if self.file.nr_entries() == self.folios.pages() {
            return Ok(());
        }
        let mut added = PreservedRuns::new(F::RUNS);
        let end = memfd_format::pages(self.size);
        let held = &self.folios;
        let mut gap_start = 0;
        let mut runs = held.runs();
        loop {
            let (gap_end, after) = match runs.next() {
                Some(run) => (run.index, run.end()),
                None => (end, end),
            };
            if gap_start < gap_end {
                self.file
                    .pin_present(self.size, gap_start, gap_end, |pin| {
                        if pin.index() < gap_start {
                            // A large folio that began before the hole: it
                            // covers the end of the run before it, so it is
                            // held already (cannot happen: runs hold whole
                            // folios). Everything from `gap_start` on lies
                            // in the hole, which no run covers.
                            return Ok(());
                        }
                        added.push(pin)
                    })?;
            }
            if gap_end >= end {
                break;
            }
            gap_start = after;
        }
        drop(runs);
        if added.pages() == 0 {
            return Ok(());
        }
        self.folios.merge(added)?;
        self.changed = true;
        Ok(())
    }

    /// The handover data of the record as written.
    fn data(&self) -> Result<u64> {
        match &self.record {
            Some(Record::Page(page)) => Ok(page.phys()),
            Some(Record::State) => Ok(0),
            _ => Err(EINVAL),
        }
    }

    /// Writes the folio list (if it changed) and the record (if anything
    /// in it did); returns the handover data.
    fn publish(&mut self) -> Result<u64> {
        let now = self.file.mutable()?;
        if !self.changed && self.published == Some(now) {
            // The record says it all already.
            return self.data();
        }
        // Rewritten below; if that fails, it says nothing valid.
        self.published = None;
        let runs = self.folios.encoded();
        let mut name = [0u8; NAME_MAX];
        let name_len = self.file.name(&mut name);
        let in_state =
            runs.len() <= STATE_RUNS && STATE_FIXED + 16 * runs.len() + name_len <= self.max_state;
        if self.changed {
            self.list = None;
            if !in_state && runs.len() > INLINE_RUNS {
                let mut words = VVec::with_capacity(runs.len() * 2, GFP_KERNEL_ACCOUNT)?;
                for run in runs {
                    words.extend_from_slice(run, GFP_KERNEL_ACCOUNT)?;
                }
                self.list = Some(PreservedWords::new(words)?);
            }
            self.changed = false;
        }
        let header = Header {
            kind: F::KIND,
            flags: now.flags,
            size: self.size,
            pos: now.pos,
            version: if in_state {
                VERSION_3
            } else {
                memfd_format::VERSION
            },
            nr_entries: runs.len() as u64,
            mode: now.mode,
            list: self
                .list
                .as_ref()
                .map_or([0; LIST_DESC_LEN], |l| l.descriptor()),
            name,
            name_len,
        };
        let record = self.record.as_mut().ok_or(EINVAL)?;
        if in_state {
            // A page it had goes. The state is within the room allocated
            // at PRESERVE_FD: this allocates nothing.
            *record = Record::Unwritten;
            self.state.clear();
            self.state
                .resize(header.state_len(), 0, GFP_KERNEL_ACCOUNT)?;
            header.encode_state(runs, &mut self.state)?;
            *record = Record::State;
        } else {
            if !matches!(record, Record::Page(_)) {
                *record = Record::Page(OutgoingBlob::new(HEADER_PAGE)?);
            }
            let Record::Page(page) = record else {
                return Err(EINVAL);
            };
            let bytes = page.as_mut_slice();
            header.encode(bytes)?;
            if self.list.is_none() {
                let inline = bytes.get_mut(HEADER_LEN..).ok_or(EINVAL)?;
                for (&[a, b], out) in runs.iter().zip(inline.chunks_exact_mut(16)) {
                    out[..8].copy_from_slice(&a.to_le_bytes());
                    out[8..].copy_from_slice(&b.to_le_bytes());
                }
            }
        }
        self.published = Some(now);
        self.data()
    }
}

impl<F: FolioFile> Preserved for PreservedFolios<F> {
    fn dependencies(&self) -> &[Dependency] {
        &self.depends
    }

    fn prepare(&mut self) -> Result<u64> {
        self.record = Some(Record::Unwritten);
        self.published = None;
        let data = self.catch_up().and_then(|()| self.publish());
        if data.is_err() {
            // Not prepared. The folios found stay held, as those of
            // PRESERVE_FD, until the memfd is unpreserved.
            self.record = None;
        }
        data
    }

    fn freeze(&mut self) -> Result<u64> {
        if self.record.is_none() {
            return Err(EINVAL);
        }
        // No page may appear after this: its data would be lost.
        self.file.seal_holes();
        self.catch_up()?;
        self.publish()
    }

    fn cancel(&mut self) {
        self.published = None;
        if self.record.take().is_some() {
            // INVARIANT: holes are sealed only until CANCEL.
            self.file.unseal_holes();
        }
    }

    fn state(&self) -> &[u8] {
        match &self.record {
            Some(Record::State) => &self.state,
            _ => &[],
        }
    }

    fn max_state(&self) -> usize {
        self.max_state
    }

    fn record_bytes(&self) -> usize {
        let page = match &self.record {
            Some(Record::Page(page)) => page.preserved_bytes(),
            _ => 0,
        };
        page + self
            .list
            .as_ref()
            .map_or(0, PreservedWords::preserved_bytes)
    }
}

impl<F: FolioFile> Drop for PreservedFolios<F> {
    fn drop(&mut self) {
        self.cancel();
        self.file.thaw();
    }
}

/// Preserves `file`, which needs `depends` in the new kernel: claims its
/// memory (`EBUSY` if preserved already), freezes it, charges its pages
/// to the caller and, with KHO, pins and preserves every folio present.
pub(crate) fn preserve_folios<F: FolioFile + 'static>(
    file: F,
    depends: KVec<Dependency>,
) -> Result<KBox<dyn Preserved>> {
    let claim = InodeClaim::new(file.inode_id())?;
    let size = file.freeze()?;
    let charge = PinnedVm::pages_of(size).and_then(PinnedVm::charge);
    let charge = match charge {
        Ok(c) => c,
        Err(e) => {
            file.thaw();
            return Err(e);
        }
    };
    // INVARIANT: frozen above. If a step below fails, the drop of the
    // new object thaws the file, unpins what was pinned and gives back
    // claim and charge.
    let mut preserved = KBox::new(
        PreservedFolios {
            folios: PreservedRuns::new(F::RUNS),
            list: None,
            changed: true,
            record: None,
            published: None,
            max_state: 0,
            state: KVec::new(),
            _claim: claim,
            _charge: charge,
            depends,
            file,
            size,
        },
        GFP_KERNEL_ACCOUNT,
    )?;
    // The heavy part, while the workload runs and with no luo-rs lock
    // held: PREPARE, FREEZE and the kexec then only take in what changed
    // since. Without KHO nothing can be preserved (and no PREPARE runs):
    // the file is only held.
    if crate::kho::enabled() {
        preserved.catch_up()?;
    }
    if F::RECORDS == Records::StateOrPage {
        // Room in the handover for the record as it is now, with room for
        // one run if it has none: a file that gets more runs meanwhile (a
        // VM's memory, faulted in after PRESERVE_FD) gets a page at
        // PREPARE instead, which it needs then anyway.
        let runs = preserved.folios.encoded().len();
        if runs <= STATE_RUNS {
            let name_len = preserved.file.name(&mut [0; NAME_MAX]);
            preserved.max_state = STATE_FIXED + 16 * runs.max(1) + name_len;
            preserved.state = KVec::with_capacity(preserved.max_state, GFP_KERNEL_ACCOUNT)?;
        }
    }
    Ok(preserved)
}

impl FileHandler for MemfdHandler {
    fn compatible(&self) -> &'static CStr {
        c"luo-rs,memfd-v4"
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
        if bindings::PAGE_SIZE as u64 != memfd_format::PAGE_SIZE {
            return Err(EOPNOTSUPP);
        }
        let memfd = Memfd::new(file).ok_or(ENOENT)?;
        if !memfd.caller_owns() {
            // Anyone a memfd was shared with can reopen it read-write
            // (memfds are mode 0777): only its owner may hand it over.
            return Err(EPERM);
        }
        preserve_folios(memfd, KVec::new())
    }

    fn retrieve(&self, file: &HandedOver<'_>, _depends: &[ARef<File>]) -> Result<ARef<File>> {
        memfd_incoming::retrieve(file, MEMFD, None)
    }

    fn finish(&self, file: &HandedOver<'_>, retrieved: bool) {
        memfd_incoming::finish(file, retrieved, MEMFD)
    }
}

/// Reads the memfds an earlier build handed over in a format this one no
/// longer writes: a kernel must take over from the release running before
/// it. It preserves nothing: [`MemfdHandler`] writes the current format.
pub(crate) struct MemfdReader {
    compatible: &'static CStr,
    format: Format,
}

/// Reads the first release's memfds (`luo-rs,memfd-v1`,
/// [`memfd_format::VERSION_1`]); registered at luo-rs's init.
pub(crate) static V1_READER: MemfdReader = MemfdReader {
    compatible: c"luo-rs,memfd-v1",
    format: MEMFD_V1,
};

/// Reads the memfds of builds from before version 3 (`luo-rs,memfd-v2`,
/// [`memfd_format::VERSION`], always in a header page); registered at
/// luo-rs's init.
pub(crate) static V2_READER: MemfdReader = MemfdReader {
    compatible: c"luo-rs,memfd-v2",
    format: MEMFD_V2,
};

/// Reads the memfds of builds from before runs could go down
/// (`luo-rs,memfd-v3`); registered at luo-rs's init.
pub(crate) static V3_READER: MemfdReader = MemfdReader {
    compatible: c"luo-rs,memfd-v3",
    format: MEMFD_V3,
};

impl FileHandler for MemfdReader {
    fn compatible(&self) -> &'static CStr {
        self.compatible
    }

    fn can_preserve(&self, _file: &File) -> bool {
        false
    }

    fn preserve(&self, _file: ARef<File>) -> Result<KBox<dyn Preserved>> {
        Err(EOPNOTSUPP)
    }

    fn retrieve(&self, file: &HandedOver<'_>, _depends: &[ARef<File>]) -> Result<ARef<File>> {
        memfd_incoming::retrieve(file, self.format, None)
    }

    fn finish(&self, file: &HandedOver<'_>, retrieved: bool) {
        memfd_incoming::finish(file, retrieved, self.format)
    }
}
