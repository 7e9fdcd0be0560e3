// SPDX-License-Identifier: GPL-2.0

//! The memfd handler in the new kernel: a handed-over memfd, rebuilt.
//!
//! RETRIEVE_FD rebuilds the memfd in steps ([`Rebuild`]): the header is
//! read (its page freed), the folio list restored, every folio restored
//! and checked, every folio still to insert charged to the caller's memory
//! cgroup, a new memfd made, the folios inserted as shmem's own, and mode,
//! position and seals set. Most steps can fail for want of memory. Then
//! what the attempt built is parked in [`PARKED`] and the next attempt, by
//! a caller with more memory, goes on from there: nothing is given up
//! until finish(), which frees whatever is left. Charges come first and
//! are undone on any failure, so a RETRIEVE_FD in too small a memory
//! cgroup gets `ENOMEM` and leaves that cgroup as it found it. A record
//! that is wrong (bad header, list or folio) is given up at once, with
//! `EINVAL`, freeing what can be trusted. Memfds of different sessions
//! are rebuilt at the same time (RETRIEVE_FD holds only its session's
//! lock).

use crate::handlers::memfd::HEADER_PAGE;
use crate::handlers::memfd_format::{FolioCheck, Header};
use crate::kho::{IncomingBlob, RestoredFolio, RestoredWords};
use crate::shmem::{self, NewMemfd};
use kernel::{fs::File, prelude::*, sync::aref::ARef};

/// Folios handled between two chances for other tasks to run.
const RESCHED_EVERY: usize = 64;

kernel::sync::global_lock! {
    // SAFETY: initialised by `init`, before the handler is registered.
    //
    // Locking: a leaf. RETRIEVE_FD and FINISH of a file run under its
    // session's `restoring` lock, so one file's rebuild is never worked on
    // twice at once; files of other sessions are rebuilt meanwhile.
    unsafe(uninit) static PARKED: Mutex<Parked> = Parked {
        rebuilds: KVec::new(),
        reserved: 0,
    };
}

/// Rebuilds that failed attempts left, by handover data.
struct Parked {
    rebuilds: KVec<(u64, Rebuild)>,
    /// Room in `rebuilds` promised to attempts in progress ([`ParkRoom`]).
    reserved: usize,
}

/// Room for one rebuild in [`PARKED`], reserved before an attempt starts,
/// so that what it built can always be parked.
///
/// # Invariants
///
/// Counted in `PARKED.reserved` while this lives, and `rebuilds` has room
/// for every such reservation.
struct ParkRoom(());

impl ParkRoom {
    fn new() -> Result<Self> {
        let mut parked = PARKED.lock();
        let room = parked.reserved + 1;
        parked.rebuilds.reserve(room, GFP_KERNEL)?;
        parked.reserved = room;
        // INVARIANT: counted, and room made for it.
        Ok(ParkRoom(()))
    }

    /// Parks `rebuild` under `data` in the room reserved.
    fn park(self, data: u64, rebuild: Rebuild) {
        let parked = PARKED.lock().rebuilds.push_within_capacity((data, rebuild));
        if parked.is_err() {
            // Cannot happen: the room was reserved.
            pr_err!("memfd: no room to keep a half-rebuilt memfd: freeing it\n");
        }
        // Then `self` goes, and its reservation with it.
    }
}

impl Drop for ParkRoom {
    fn drop(&mut self) {
        PARKED.lock().reserved -= 1;
    }
}

/// Initialises the parking; called once from the handler's init.
pub(crate) fn init() {
    // SAFETY: called once, before the handler is registered.
    unsafe { PARKED.init() };
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

/// A handed-over memfd being rebuilt; dropping it frees what it holds.
struct Rebuild {
    /// The header as handed over (its page is freed).
    header: Header,
    /// The folio list, once restored (never, for a memfd without folios).
    list: Option<RestoredWords>,
    /// Every folio, once restored and checked, in list order; `None` once
    /// it is in `memfd`.
    folios: KVVec<Option<RestoredFolio>>,
    /// The memfd being filled, once made.
    memfd: Option<NewMemfd>,
}

impl Rebuild {
    /// Reads the header the handover data `data` points at.
    fn start(data: u64) -> Result<Self> {
        // The page is freed when `page` goes; the header is copied.
        let page = IncomingBlob::restore(data, HEADER_PAGE)?;
        let header = Header::decode(page.as_slice()).inspect_err(|e| {
            pr_err!("memfd: refusing a handed-over memfd: {:?}\n", e);
        })?;
        Ok(Self {
            header,
            list: None,
            folios: KVVec::new(),
            memfd: None,
        })
    }

    /// Folios the header announces.
    fn nr_folios(&self) -> core::result::Result<usize, Failure> {
        usize::try_from(self.header.nr_folios).map_err(|_| Failure::Gone(EINVAL))
    }

    /// Restores the folio list, if there is one and it is not yet.
    fn restore_list(&mut self) -> core::result::Result<(), Failure> {
        let nr = self.nr_folios()?;
        if nr == 0 || self.list.is_some() {
            return Ok(());
        }
        let len = nr.checked_mul(2).ok_or(Failure::Gone(EINVAL))?;
        let list = RestoredWords::restore(&self.header.list, len).map_err(restore_failure)?;
        self.list = Some(list);
        Ok(())
    }

    /// Restores and checks every folio, if not done yet. On a wrong folio
    /// the folios after it are freed too (`Gone`).
    fn restore_folios(&mut self) -> core::result::Result<(), Failure> {
        let nr = self.nr_folios()?;
        if nr == 0 || self.folios.len() == nr {
            return Ok(());
        }
        let mut folios =
            KVVec::with_capacity(nr, GFP_KERNEL).map_err(|_| Failure::Retry(ENOMEM))?;
        let mut check = FolioCheck::new(self.header.size);
        for (i, (phys, index)) in entries(&self.list).enumerate() {
            let checked = RestoredFolio::restore(phys).and_then(|folio| {
                check.accept(index, folio.nr_pages())?;
                Ok(folio)
            });
            match checked {
                Ok(folio) => folios
                    .push_within_capacity(Some(folio))
                    .map_err(|_| Failure::Gone(EINVAL))?,
                Err(e) => {
                    pr_err!("memfd: refusing handed-over folio {}: {:?}\n", i, e);
                    discard(&self.list, i + 1);
                    return Err(Failure::Gone(e));
                }
            }
            if i % RESCHED_EVERY == 0 {
                crate::sched::cond_resched();
            }
        }
        self.folios = folios;
        Ok(())
    }

    /// Goes on with the rebuild from where the last attempt stopped.
    fn step(&mut self) -> core::result::Result<ARef<File>, Failure> {
        self.restore_list()?;
        self.restore_folios()?;
        if self.memfd.is_none() {
            let memfd =
                NewMemfd::create(self.header.name(), self.header.size).map_err(Failure::Retry)?;
            self.memfd = Some(memfd);
        }
        self.charge_all()?;
        let inserted = self.insert_all();
        if inserted.is_err() {
            self.uncharge(usize::MAX);
        }
        inserted?;
        let memfd = self.memfd.as_ref().ok_or(Failure::Gone(EINVAL))?;
        let h = &self.header;
        memfd.finish(h.seals, h.mode, h.pos).map_err(Failure::Retry)
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
        let memfd = self.memfd.as_ref().ok_or(Failure::Gone(EINVAL))?;
        for (i, (slot, (_, index))) in self.folios.iter_mut().zip(entries(&self.list)).enumerate() {
            if let Some(folio) = slot.take() {
                if let Err((e, folio)) = memfd.insert(folio, index) {
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
}

/// The folio list's entries, (physical address, index) in list order.
fn entries(list: &Option<RestoredWords>) -> impl Iterator<Item = (u64, u64)> + '_ {
    list.iter().flat_map(RestoredWords::pairs)
}

/// Restores and frees every folio of `list` from entry `from` on; an entry
/// that cannot be restored (a wrong record) is skipped quietly.
fn discard(list: &Option<RestoredWords>, from: usize) {
    for (i, (phys, _)) in entries(list).skip(from).enumerate() {
        drop(RestoredFolio::restore(phys));
        if i % RESCHED_EVERY == 0 {
            crate::sched::cond_resched();
        }
    }
}

/// The rebuild a failed attempt parked for `data`, if any.
fn unpark(data: u64) -> Option<Rebuild> {
    let mut parked = PARKED.lock();
    let i = parked.rebuilds.iter().position(|(d, _)| *d == data)?;
    parked.rebuilds.remove(i).ok().map(|(_, r)| r)
}

/// RETRIEVE_FD of the memfd handed over as `data`.
pub(crate) fn retrieve(data: u64) -> Result<ARef<File>> {
    // Room to park what this attempt builds, before anything is consumed.
    let room = ParkRoom::new()?;
    let mut rebuild = match unpark(data) {
        Some(r) => r,
        None => Rebuild::start(data)?,
    };
    match rebuild.step() {
        Ok(file) => Ok(file),
        Err(Failure::Retry(e)) => {
            room.park(data, rebuild);
            Err(e)
        }
        Err(Failure::Gone(e)) => Err(e),
    }
}

/// The update is over for the memfd handed over as `data`: frees what a
/// failed RETRIEVE_FD left, or, if it was never retrieved, its folios.
pub(crate) fn finish(data: u64, retrieved: bool) {
    if let Some(rebuild) = unpark(data) {
        drop(rebuild);
        return;
    }
    if retrieved {
        return;
    }
    let Ok(mut rebuild) = Rebuild::start(data) else {
        return;
    };
    match rebuild.restore_list() {
        Ok(()) => discard(&rebuild.list, 0),
        Err(Failure::Retry(e) | Failure::Gone(e)) => {
            pr_warn!("memfd: cannot free an unretrieved memfd: {:?}\n", e);
        }
    }
}
