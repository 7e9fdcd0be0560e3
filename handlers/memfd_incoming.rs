// SPDX-License-Identifier: GPL-2.0

//! The memfd and guest_memfd handlers in the new kernel: a handed-over
//! file, rebuilt.
//!
//! RETRIEVE_FD rebuilds the file in steps ([`Rebuild`]): the record is
//! read (from the handover's state, or from its page, which is freed),
//! the folio list restored, every folio restored and checked, every folio
//! still to insert charged to the caller's memory cgroup, a new file made
//! (a guest_memfd bound to the retrieved VM), the folios inserted as its
//! own, and a memfd's mode, position and seals set. Most steps can fail
//! for want of memory. Then
//! what the attempt built is parked in [`PARKED`] and the next attempt, by
//! a caller with more memory, goes on from there: nothing is given up
//! until finish(), which frees whatever is left. Charges come first and
//! are undone on any failure, so a RETRIEVE_FD in too small a memory
//! cgroup gets `ENOMEM` and leaves that cgroup as it found it. A record
//! that is wrong (bad header, list or folio) is given up at once, with
//! `EINVAL`, freeing what can be trusted, and stays refused: later
//! attempts and FINISH touch none of its folios again. Memfds of different sessions
//! are rebuilt at the same time (RETRIEVE_FD holds only its session's
//! lock).

#[cfg(CONFIG_LIVEUPDATE_RS_KVM)]
use crate::gmem::NewGuestMemfd;
use crate::handlers::memfd_format::{
    self, FolioCheck, FormatError, Header, Kind, Run, Runs, StateRuns, HEADER_LEN, HEADER_PAGE,
    VERSION_1, VERSION_3,
};
use crate::kho::{self, IncomingBlob, RestoredFolio, RestoredWords};
#[cfg(CONFIG_LIVEUPDATE_RS_KVM)]
use crate::kvm::Vm;
use crate::luo_file::HandedOver;
use crate::parking::{unpark, Lot, ParkRoom, Parking};
use crate::shmem::{self, NewMemfd};
use kernel::{fs::File, prelude::*, sync::aref::ARef};

/// Without the VM handler no guest_memfd is rebuilt: there is no VM to
/// bind one to.
#[cfg(not(CONFIG_LIVEUPDATE_RS_KVM))]
pub(crate) enum Vm {}

/// The records a handler reads: the kind and version its compatible
/// string names ([`VERSION_3`]: version 3 in the handover's state, or
/// version 2 in a page).
#[derive(Clone, Copy)]
pub(crate) struct Format {
    pub(crate) kind: Kind,
    pub(crate) version: u32,
    /// The runs its folio lists may have.
    pub(crate) runs: Runs,
}

/// Folios handled between two chances for other tasks to run.
const RESCHED_EVERY: usize = 64;

kernel::sync::global_lock! {
    // SAFETY: initialised by `init`, before the handler is registered.
    //
    // Locking: a leaf. RETRIEVE_FD and FINISH of a file run under its
    // session's `restoring` lock, so one file's rebuild is never worked on
    // twice at once; files of other sessions are rebuilt meanwhile.
    unsafe(uninit) static PARKED: Mutex<Parking<Parked>> = Parking::new();
}

/// Rebuilds that failed attempts left, in [`PARKED`].
struct Rebuilds;

impl Lot for Rebuilds {
    type Item = Parked;

    fn with<R>(f: impl FnOnce(&mut Parking<Parked>) -> R) -> R {
        f(&mut PARKED.lock())
    }
}

/// Initialises the parking; called once from the handler's init.
pub(crate) fn init() {
    // SAFETY: called once, before the handler is registered.
    unsafe { PARKED.init() };
}

/// What a failed RETRIEVE_FD leaves for the next one, and for FINISH.
#[expect(
    clippy::large_enum_variant,
    reason = "parked in place: parking never allocates, so it cannot fail"
)]
enum Parked {
    /// A rebuild to go on with.
    Rebuild(Rebuild),
    /// A record found wrong: what could be trusted is freed already, and
    /// nothing more is tried (its folios must not be restored twice).
    Refused,
}

/// Why a step failed.
enum Failure {
    /// For want of memory or room: the next attempt goes on from here.
    Retry(Error),
    /// The record is wrong: nothing more can be done with it.
    Gone(Error),
}

/// Failures of a restore: only `ENOMEM` is worth another attempt.
fn restore_failure(e: Error) -> Failure {
    if e == ENOMEM {
        Failure::Retry(e)
    } else {
        Failure::Gone(e)
    }
}

/// The folio list of a handed-over memfd, as restored.
enum List {
    /// No folios.
    Empty,
    /// Version 1: (physical address, index) of every folio.
    Pairs(RestoredWords),
    /// Version 2: runs of folios ([`Run`]), from their own array.
    Runs(RestoredWords),
    /// Version 2: the first `n` runs after the header in its page, kept
    /// (restored) until the rebuild is over.
    InlineRuns(IncomingBlob, usize),
    /// Version 3: the runs of the record in the handover's state.
    StateRuns(StateRuns),
}

/// One folio as the list names it: address, page index and, in versions
/// 2 and 3, its order (checked against what KHO restores).
type Entry = (u64, u64, Option<u32>);

impl List {
    /// The list's word pairs: folios (version 1) or runs (2 and 3).
    fn pairs(&self) -> ListPairs<'_> {
        match self {
            List::Empty => ListPairs::Slice([].iter()),
            List::Pairs(w) | List::Runs(w) => ListPairs::Words(w.pairs()),
            List::InlineRuns(page, n) => ListPairs::Bytes(
                page.as_slice()
                    .get(HEADER_LEN..)
                    .unwrap_or(&[])
                    .chunks_exact(16)
                    .take(*n),
            ),
            List::StateRuns(runs) => ListPairs::Slice(runs.pairs().iter()),
        }
    }

    /// Every folio it names, in order, for a file of `pages` pages in a
    /// format with `runs`; a run that cannot be read is an error in its
    /// place.
    fn entries(&self, pages: u64, runs: Runs) -> Entries<'_> {
        Entries {
            pairs: self.pairs(),
            runs: (!matches!(self, List::Pairs(_) | List::Empty)).then_some(runs),
            pages,
            run: None,
            next: 0,
        }
    }
}

/// The word pairs of a [`List`], whichever its form. A memfd's list is
/// read three times in a RETRIEVE_FD, a pair per run: one `match`, not a
/// chain of adapters per pair.
enum ListPairs<'a> {
    Words(kho::Pairs<'a>),
    Bytes(core::iter::Take<core::slice::ChunksExact<'a, u8>>),
    Slice(core::slice::Iter<'a, [u64; 2]>),
}

impl Iterator for ListPairs<'_> {
    type Item = (u64, u64);

    fn next(&mut self) -> Option<(u64, u64)> {
        match self {
            ListPairs::Words(words) => words.next(),
            ListPairs::Bytes(bytes) => bytes.next().map(|run| {
                let (a, b) = run.split_at(8);
                let word = |w: &[u8]| {
                    let mut le = [0u8; 8];
                    le.copy_from_slice(w);
                    u64::from_le_bytes(le)
                };
                (word(a), word(b))
            }),
            ListPairs::Slice(words) => words.next().map(|&[a, b]| (a, b)),
        }
    }
}

/// The folios of a [`List`] ([`List::entries`]): the run being read is
/// kept, and each folio of it costs a step.
struct Entries<'a> {
    pairs: ListPairs<'a>,
    /// The runs of the format if pairs are runs (versions 2 and 3), `None`
    /// if they are single folios (version 1).
    runs: Option<Runs>,
    /// Pages of the file, which every run must start inside.
    pages: u64,
    /// The run being read, and its next folio.
    run: Option<Run>,
    next: u64,
}

impl Iterator for Entries<'_> {
    type Item = Result<Entry, FormatError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(run) = &self.run {
                if self.next < run.count {
                    // Decoded: every folio of the run is addressable.
                    let k = self.next;
                    self.next += 1;
                    let (phys, index) = run.folio(k);
                    return Some(Ok((phys, index, Some(run.order))));
                }
                self.run = None;
            }
            let (a, b) = self.pairs.next()?;
            let Some(runs) = self.runs else {
                return Some(Ok((a, b, None)));
            };
            match Run::decode([a, b], self.pages, runs) {
                Ok(run) => {
                    self.run = Some(run);
                    self.next = 0;
                }
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

/// The file a [`Rebuild`] fills.
enum NewFile {
    Memfd(NewMemfd),
    #[cfg(CONFIG_LIVEUPDATE_RS_KVM)]
    GuestMemfd(NewGuestMemfd),
}

/// A handed-over file being rebuilt; dropping it frees what it holds.
struct Rebuild {
    /// The record as handed over (its page, if it has one, is freed).
    header: Header,
    /// The folio list, once restored.
    list: Option<List>,
    /// Every folio, once restored and checked, in list order; `None` once
    /// it is in `file`.
    folios: KVVec<Option<RestoredFolio>>,
    /// The file being filled, once made.
    file: Option<NewFile>,
    /// The runs the format's folio lists may have.
    runs: Runs,
}

impl Rebuild {
    /// Reads the record `file` handed over, which must be of `format`
    /// (the one its handler's compatible names).
    fn start(file: &HandedOver<'_>, format: Format) -> Result<Self> {
        let refused = |e: FormatError| {
            let what = match format.kind {
                Kind::Memfd => "memfd",
                Kind::GuestMemfd => "guest_memfd",
            };
            pr_err!("memfd: refusing a handed-over {}: {:?}\n", what, e);
            Error::from(e)
        };
        if format.kind == Kind::Memfd && format.version == VERSION_3 && !file.state.is_empty() {
            // The record is all in the handover's state; nothing else is.
            if file.data != 0 {
                return Err(refused(FormatError::Header));
            }
            let (header, runs) = Header::decode_state(file.state).map_err(refused)?;
            let list = if header.nr_entries == 0 {
                List::Empty
            } else {
                List::StateRuns(runs)
            };
            return Ok(Self::new(header, Some(list), format.runs));
        }
        if !file.state.is_empty() {
            // No other version has one.
            return Err(refused(FormatError::Header));
        }
        // A version 3 record without state is a version 2 header page.
        let version = match format.version {
            VERSION_3 => memfd_format::VERSION,
            v => v,
        };
        // The page is freed when `page` goes (with the rebuild, if the
        // folio list is in it); the header is copied.
        let page = IncomingBlob::restore(file.data, HEADER_PAGE)?;
        let header = Header::decode(page.as_slice())
            .and_then(|h| {
                if h.kind == format.kind && h.version == version {
                    Ok(h)
                } else {
                    Err(FormatError::Header)
                }
            })
            .map_err(refused)?;
        let list = if header.nr_entries == 0 {
            Some(List::Empty)
        } else if header.version != VERSION_1 && header.list_inline() {
            // At most INLINE_RUNS (checked by the decoder): in the page.
            let n = usize::try_from(header.nr_entries).map_err(|_| EINVAL)?;
            Some(List::InlineRuns(page, n))
        } else {
            None
        };
        Ok(Self::new(header, list, format.runs))
    }

    /// A rebuild of the file `header` describes, whose folio list is
    /// `list` if it is at hand already, in a format with `runs`.
    fn new(header: Header, list: Option<List>, runs: Runs) -> Self {
        Self {
            header,
            list,
            folios: KVVec::new(),
            file: None,
            runs,
        }
    }

    /// Every folio its list names, in order.
    fn entries(&self) -> Entries<'_> {
        entries(&self.list, self.pages(), self.runs)
    }

    /// Pages of the file.
    fn pages(&self) -> u64 {
        memfd_format::pages(self.header.size)
    }

    /// Restores the folio list, if not done yet.
    fn restore_list(&mut self) -> core::result::Result<(), Failure> {
        if self.list.is_some() {
            return Ok(());
        }
        let len = self.header.list_words().ok_or(Failure::Gone(EINVAL))?;
        let words = RestoredWords::restore(&self.header.list, len).map_err(restore_failure)?;
        self.list = Some(if self.header.version == VERSION_1 {
            List::Pairs(words)
        } else {
            List::Runs(words)
        });
        Ok(())
    }

    /// Folios the list names (a bad run counts as one; it is refused when
    /// its folios are restored).
    fn nr_folios(&self) -> core::result::Result<usize, Failure> {
        let Some(list) = &self.list else {
            return Ok(0);
        };
        let mut n: u64 = 0;
        for (a, b) in list.pairs() {
            n += match list {
                List::Pairs(_) | List::Empty => 1,
                _ => Run::decode([a, b], self.pages(), self.runs).map_or(1, |r| r.count),
            };
            if n > self.pages() {
                // More folios than pages: cannot be right.
                return Err(Failure::Gone(EINVAL));
            }
        }
        usize::try_from(n).map_err(|_| Failure::Gone(EINVAL))
    }

    /// Restores and checks every folio, if not done yet. On a wrong folio
    /// the folios after it are freed too (`Gone`).
    fn restore_folios(&mut self) -> core::result::Result<(), Failure> {
        let nr = self.nr_folios()?;
        if nr == 0 || self.folios.len() == nr {
            return Ok(());
        }
        let mut folios =
            KVVec::with_capacity(nr, GFP_KERNEL_ACCOUNT).map_err(|_| Failure::Retry(ENOMEM))?;
        let mut check = FolioCheck::new(self.header.size);
        let kind = self.header.kind;
        let mut restoring = kho::restoring();
        let mut refused = None;
        for (i, entry) in self.entries().enumerate() {
            let checked = entry.map_err(Error::from).and_then(|(phys, index, order)| {
                let folio = RestoredFolio::restore_with(phys, &mut restoring)?;
                if order.is_some_and(|o| folio.nr_pages() != 1 << o) {
                    // Not the size the run says: the record is wrong.
                    return Err(EINVAL);
                }
                if kind == Kind::GuestMemfd && folio.nr_pages() != 1 {
                    // guest_memfd has no large folios: it cannot be right.
                    return Err(EINVAL);
                }
                check.accept(index, folio.nr_pages())?;
                Ok(folio)
            });
            match checked {
                Ok(folio) => folios
                    .push_within_capacity(Some(folio))
                    .map_err(|_| Failure::Gone(EINVAL))?,
                Err(e) => {
                    refused = Some((i, e));
                    break;
                }
            }
            if (i + 1) % RESCHED_EVERY == 0 {
                // Other sessions' restores take their turn, and the
                // folios restored so far are counted (`kho::Restoring`).
                drop(restoring);
                crate::sched::cond_resched();
                restoring = kho::restoring();
            }
        }
        drop(restoring);
        if let Some((i, e)) = refused {
            pr_err!("memfd: refusing handed-over folio {}: {:?}\n", i, e);
            discard(self.entries(), i + 1);
            return Err(Failure::Gone(e));
        }
        self.folios = folios;
        Ok(())
    }

    /// Makes the new file: a memfd, or a guest_memfd bound to `vm`.
    fn create(&self, vm: Option<&Vm>) -> Result<NewFile> {
        let h = &self.header;
        match (h.kind, vm) {
            (Kind::Memfd, _) => NewMemfd::create(h.name(), h.size).map(NewFile::Memfd),
            #[cfg(CONFIG_LIVEUPDATE_RS_KVM)]
            (Kind::GuestMemfd, Some(vm)) => {
                NewGuestMemfd::create(vm, h.size, h.flags.into()).map(NewFile::GuestMemfd)
            }
            (Kind::GuestMemfd, _) => Err(EINVAL),
        }
    }

    /// Goes on with the rebuild from where the last attempt stopped.
    fn step(&mut self, vm: Option<&Vm>) -> core::result::Result<ARef<File>, Failure> {
        self.restore_list()?;
        self.restore_folios()?;
        if self.file.is_none() {
            // Even a VM that does not take the flags decides nothing: the
            // folios stay for FINISH, as after any failure but a bad record.
            self.file = Some(self.create(vm).map_err(Failure::Retry)?);
        }
        self.charge_all()?;
        let inserted = self.insert_all();
        if inserted.is_err() {
            self.uncharge(usize::MAX);
        }
        inserted?;
        let h = &self.header;
        match self.file.as_ref().ok_or(Failure::Gone(EINVAL))? {
            NewFile::Memfd(memfd) => memfd.finish(h.flags, h.mode, h.pos).map_err(Failure::Retry),
            #[cfg(CONFIG_LIVEUPDATE_RS_KVM)]
            NewFile::GuestMemfd(gmem) => Ok(gmem.file()),
        }
    }

    /// Charges every folio still to insert to the caller's memory cgroup;
    /// if it has not the room, none stays charged.
    fn charge_all(&mut self) -> core::result::Result<(), Failure> {
        for (charged, folio) in self.folios.iter().flatten().enumerate() {
            if let Err(e) = shmem::charge(folio) {
                self.uncharge(charged);
                return Err(Failure::Retry(e));
            }
            if charged % RESCHED_EVERY == 0 {
                crate::sched::cond_resched();
            }
        }
        Ok(())
    }

    /// Uncharges the first `n` folios still to insert.
    fn uncharge(&self, n: usize) {
        for folio in self.folios.iter().flatten().take(n) {
            shmem::uncharge(folio);
        }
    }

    /// Inserts every charged folio still to insert; on failure the folio
    /// stays in its place (charged).
    fn insert_all(&mut self) -> core::result::Result<(), Failure> {
        let entries = entries(&self.list, self.pages(), self.runs);
        let folios = &mut self.folios;
        match self.file.as_mut().ok_or(Failure::Gone(EINVAL))? {
            NewFile::Memfd(memfd) => {
                let mut batch = memfd.batch();
                insert_each(entries, folios, |f, i| batch.insert(f, i))
            }
            #[cfg(CONFIG_LIVEUPDATE_RS_KVM)]
            NewFile::GuestMemfd(gmem) => insert_each(entries, folios, |f, i| gmem.insert(f, i)),
        }
    }
}

/// Gives every folio of `folios` still to insert, with its index in
/// `entries` (the list's, in the same order), to `insert`; on failure the
/// folio stays in its place.
fn insert_each(
    entries: Entries<'_>,
    folios: &mut KVVec<Option<RestoredFolio>>,
    mut insert: impl FnMut(RestoredFolio, u64) -> core::result::Result<(), (Error, RestoredFolio)>,
) -> core::result::Result<(), Failure> {
    for (i, (slot, entry)) in folios.iter_mut().zip(entries).enumerate() {
        let index = entry.map_or(0, |(_, index, _)| index);
        if let Some(folio) = slot.take() {
            if let Err((e, folio)) = insert(folio, index) {
                *slot = Some(folio);
                return Err(Failure::Retry(e));
            }
        }
        if i % RESCHED_EVERY == 0 {
            crate::sched::cond_resched();
        }
    }
    Ok(())
}

/// The folios `list` names, in order, for a file of `pages` pages in a
/// format with `runs`.
fn entries(list: &Option<List>, pages: u64, runs: Runs) -> Entries<'_> {
    match list {
        Some(list) => list.entries(pages, runs),
        None => Entries {
            pairs: ListPairs::Slice([].iter()),
            runs: None,
            pages,
            run: None,
            next: 0,
        },
    }
}

/// Restores and frees every folio of `entries` from entry `from` on; an
/// entry that cannot be restored (a wrong record) is skipped quietly.
fn discard(entries: Entries<'_>, from: usize) {
    let mut restoring = kho::restoring();
    for (i, entry) in entries.skip(from).enumerate() {
        if let Ok((phys, _, _)) = entry {
            drop(RestoredFolio::restore_with(phys, &mut restoring));
        }
        if (i + 1) % RESCHED_EVERY == 0 {
            drop(restoring);
            crate::sched::cond_resched();
            restoring = kho::restoring();
        }
    }
}

/// RETRIEVE_FD of `file`, handed over in `format`; a guest_memfd is
/// bound to `vm`.
pub(crate) fn retrieve(
    file: &HandedOver<'_>,
    format: Format,
    vm: Option<&Vm>,
) -> Result<ARef<File>> {
    // Room to park what this attempt builds, before anything is consumed.
    let room = ParkRoom::<Rebuilds>::new()?;
    let mut rebuild = match unpark::<Rebuilds>(file.key) {
        Some(Parked::Rebuild(r)) => r,
        Some(Parked::Refused) => {
            room.park(file.key, Parked::Refused);
            return Err(EINVAL);
        }
        // start() allocates nothing: it fails only on a record it
        // cannot trust, whose page (if it had one) is consumed.
        None => match Rebuild::start(file, format) {
            Ok(r) => r,
            Err(e) => {
                room.park(file.key, Parked::Refused);
                return Err(e);
            }
        },
    };
    match rebuild.step(vm) {
        Ok(new) => Ok(new),
        Err(Failure::Retry(e)) => {
            room.park(file.key, Parked::Rebuild(rebuild));
            Err(e)
        }
        Err(Failure::Gone(e)) => {
            room.park(file.key, Parked::Refused);
            Err(e)
        }
    }
}

/// The update is over for `file`: frees what a failed RETRIEVE_FD left,
/// or, if it was never retrieved, its folios.
pub(crate) fn finish(file: &HandedOver<'_>, retrieved: bool, format: Format) {
    if let Some(parked) = unpark::<Rebuilds>(file.key) {
        // A rebuild's folios are freed with it; a refused record's were
        // freed when it was refused.
        drop(parked);
        return;
    }
    if retrieved {
        return;
    }
    let Ok(mut rebuild) = Rebuild::start(file, format) else {
        return;
    };
    match rebuild.restore_list() {
        Ok(()) => discard(rebuild.entries(), 0),
        Err(Failure::Retry(e) | Failure::Gone(e)) => {
            pr_warn!("memfd: cannot free an unretrieved memfd: {:?}\n", e);
        }
    }
}
