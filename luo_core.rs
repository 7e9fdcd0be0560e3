// SPDX-License-Identifier: GPL-2.0

//! luo-rs: the Live Update Orchestrator, in Rust.
//!
//! A live update replaces the running kernel with kexec while selected
//! state (VM memory in memfds, iommufd, KVM) stays in RAM. Userspace
//! preserves files into sessions on /dev/liveupdate; an orchestrator moves
//! the global state machine (`luo_state`) with PREPARE and FREEZE; at the
//! kexec, what the next kernel needs is in one FDT blob that Kexec HandOver
//! (KHO) carries across; the next kernel finds it at boot.
//!
//! This file is the crate root. It owns the global state ([`Core`]): it
//! runs the work each transition calls for, reads the incoming handover at
//! init, registers the device and its debugfs view, and provides
//! `liveupdate_reboot()`, which `kernel_kexec()` calls before it jumps and
//! which aborts the kexec by failing.

mod anon_file;
mod capable;
mod file_deps;
#[cfg(CONFIG_LIVEUPDATE_RS_KVM)]
mod gmem;
mod handlers;
#[cfg(CONFIG_LIVEUPDATE_RS_IOMMUFD)]
mod iommufd;
mod key_set;
mod kho;
mod kho_ser;
#[cfg(CONFIG_LIVEUPDATE_RS_KVM)]
mod kvm;
mod luo_file;
mod luo_handover;
mod luo_ioctl;
mod luo_session;
mod luo_state;
mod luo_subsystem;
mod luo_uapi;
mod parking;
mod pinned_vm;
mod sched;
mod session_file;
mod shmem;
mod test_control;
mod user_struct;
#[cfg(CONFIG_LIVEUPDATE_RS_KVM)]
mod vcpu;
#[cfg(CONFIG_LIVEUPDATE_RS_VFIO)]
mod vfio;

use core::fmt;
use kernel::{
    bindings,
    debugfs::{Dir, File},
    ffi::c_int,
    miscdevice::{MiscDeviceOptions, MiscDeviceRegistration},
    prelude::*,
    str::{CStr, CStrExt},
    sync::{
        atomic::{Atomic, Relaxed},
        SetOnce,
    },
    uapi,
};
use kho::{IncomingBlob, OutgoingBlob};
use kho_ser::FdtError;
use luo_handover::{FileRecord, Handover, Part, Parts, SessionRecord, Sink, SubsystemRecord};
use luo_session::{IncomingFile, OutgoingFile, Owner, Session, SessionsRecord};
use luo_state::{Event, Op, Origin, Refusal, State, Work};
use luo_uapi::Name;

module! {
    type: LiveUpdate,
    name: "luo_rs",
    authors: ["luo-rs developers"],
    description: "Live Update Orchestrator in Rust",
    license: "GPL",
}

/// What this boot knows about itself, fixed at init.
struct Boot {
    /// Random id of this kernel, handed to the next one.
    boot_id: u64,
    /// The record the previous kernel handed over, if it did.
    incoming: Option<Handover>,
}

static BOOT: SetOnce<Boot> = SetOnce::new();

/// The global live update state.
struct Core {
    /// Where the state machine is.
    state: State,
    /// The blobs of the record for the next kernel, in order (one unless
    /// it does not fit): built by PREPARE, refreshed by FREEZE, withdrawn
    /// (unpreserved and freed) by CANCEL.
    outgoing: KVec<OutgoingBlob>,
    /// From PREPARE to FREEZE, the record `outgoing` holds; `None` if
    /// unknown (a write failed or was cancelled, or no memory to keep
    /// it). FREEZE writes the blobs again only if the record changed: the
    /// blackout of an unchanged update encodes nothing.
    written: Option<Written>,
    /// Files of sessions closed while FROZEN: committed to the handover,
    /// so kept preserved until the kexec (or a CANCEL).
    committed: KVec<KVec<OutgoingFile>>,
    /// Whether `liveupdate_reboot()` succeeded: the kexec jumps next.
    jump: Jump,
}

/// The record PREPARE wrote, kept for FREEZE to compare.
struct Written {
    /// The sessions' part.
    sessions: SessionsRecord,
    /// The rest (the header and the subsystems), as
    /// [`luo_handover::record_words`] spells it with no session.
    rest: KVec<u64>,
}

impl Written {
    /// Keeps what PREPARE wrote; `None` if there is no memory for it.
    fn keep(
        sessions: SessionsRecord,
        header: &Handover,
        subsystems: &[SubsystemRecord<'_>],
    ) -> Option<Self> {
        let mut rest = KVec::new();
        luo_handover::record_words(header, &[], subsystems, &mut |w| rest.push(w, GFP_KERNEL))
            .ok()?;
        Some(Self { sessions, rest })
    }

    /// Whether this is still the record: the header, the subsystems and
    /// every session and file, word for word. Allocates nothing.
    fn holds(&self, header: &Handover, subsystems: &[SubsystemRecord<'_>]) -> bool {
        let mut rest = self.rest.iter();
        let same = luo_handover::record_words(header, &[], subsystems, &mut |w| {
            if rest.next() == Some(&w) {
                Ok(())
            } else {
                Err(())
            }
        });
        same.is_ok() && rest.next().is_none() && self.sessions.matches()
    }
}

/// The transition a serialization is for.
#[derive(Clone, Copy)]
enum Step {
    /// The first write of the record; a FREEZE follows.
    Prepare,
    /// The last write before the kexec, skipped if PREPARE's record is
    /// unchanged.
    Freeze,
}

/// Where the kexec stands.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Jump {
    /// No kexec has been committed to.
    NotYet,
    /// `liveupdate_reboot()` succeeded: the handover is final and the
    /// kernel jumps as soon as the other CPUs stop. Userspace still runs
    /// until then; every event is refused (`EBUSY`), and nothing else can
    /// change the handover either, as the state is FROZEN.
    Committed,
}

kernel::sync::global_lock! {
    // SAFETY: initialised first thing in `LiveUpdate::init`.
    //
    // Locking: CORE is the outermost luo-rs lock. SET_EVENT and
    // liveupdate_reboot() hold it for a whole transition, so transitions
    // are serialised and see a stable set of sessions; the work they run
    // may sleep (allocation, KHO calls).
    unsafe(uninit) static CORE: Mutex<Core> = Core {
        state: State::Normal,
        outgoing: KVec::new(),
        written: None,
        committed: KVec::new(),
        jump: Jump::NotYet,
    };
}

impl From<Refusal> for Error {
    fn from(r: Refusal) -> Error {
        match r {
            Refusal::Busy => EBUSY,
            Refusal::WrongSession => EINVAL,
        }
    }
}

/// One blob of the record to write: its share of the sessions ends at
/// `end`, and it takes at most `room` bytes.
struct BlobPlan {
    end: usize,
    room: usize,
}

/// [`luo_handover::encode_part`], with the failure logged.
fn encode(
    header: &Handover,
    part: Part,
    blobs: &[(u64, u64)],
    sessions: &[SessionRecord<'_>],
    subsystems: &[SubsystemRecord<'_>],
    out: &mut [u8],
) -> Result<usize> {
    luo_handover::encode_part(header, part, blobs, sessions, subsystems, out).map_err(|e| {
        pr_err!(
            "cannot encode part {} of the handover: {:?}\n",
            part.index,
            e
        );
        EINVAL
    })
}

/// Splits the record into blobs of at most [`luo_handover::MAX_BLOB`] bytes, sessions in
/// order and whole, subsystems and the list of the others in the first:
/// one blob unless it does not fit. `E2BIG` if a session alone does not fit in a blob, or the record
/// needs more than `MAX_PARTS` blobs.
fn plan_blobs(
    sessions: &[SessionRecord<'_>],
    subsystems: &[SubsystemRecord<'_>],
) -> Result<KVec<BlobPlan>> {
    let mut plan = KVec::new();
    let mut room = luo_handover::ROOT_ROOM
        + luo_handover::PART_LIST_ROOM
        + subsystems
            .iter()
            .map(luo_handover::subsystem_room)
            .sum::<usize>();
    for (i, s) in sessions.iter().enumerate() {
        let need = luo_handover::session_room(s);
        if luo_handover::ROOT_ROOM + need > luo_handover::MAX_BLOB {
            pr_err!(
                "a session is too large for a handover blob ({} bytes)\n",
                need
            );
            return Err(E2BIG);
        }
        if room + need > luo_handover::MAX_BLOB {
            plan.push(BlobPlan { end: i, room }, GFP_KERNEL)?;
            room = luo_handover::ROOT_ROOM;
        }
        room += need;
        if i % 1024 == 1023 {
            sched::cond_resched();
        }
    }
    plan.push(
        BlobPlan {
            end: sessions.len(),
            room,
        },
        GFP_KERNEL,
    )?;
    if plan.len() > luo_handover::MAX_PARTS as usize {
        pr_err!(
            "the handover needs {} blobs, more than {}\n",
            plan.len(),
            luo_handover::MAX_PARTS
        );
        return Err(E2BIG);
    }
    Ok(plan)
}

/// [`Core::state`], readable without the lock; written only with it.
static STATE: Atomic<u32> = Atomic::new(State::Normal as u32);

/// Bytes of the record's blobs as last encoded, 0 if none is published:
/// with the memory the files' records keep of their own, what debugfs
/// `handover_bytes` shows. Written only with the core lock.
static BLOB_BYTES: Atomic<u64> = Atomic::new(0);

impl Core {
    /// Moves the state (and its lock-free copy).
    fn set_state(&mut self, state: State) {
        self.state = state;
        STATE.store(state as u32, Relaxed);
    }

    /// Writes the whole outgoing state into the handover blobs, allocating
    /// (or growing) and publishing them as needed; at FREEZE, only if it
    /// changed since PREPARE.
    fn serialize(&mut self, step: Step) -> Result {
        let boot = BOOT.as_ref().ok_or(ENODEV)?;
        let generation = boot.incoming.map_or(0, |h| h.generation);
        let header = Handover {
            // The decoder refused u64::MAX: this cannot overflow.
            generation: generation.checked_add(1).ok_or(EOVERFLOW)?,
            boot_id: boot.boot_id,
        };
        // Every file after those it depends on, their edges as tokens.
        luo_session::link_files()?;
        // What PREPARE wrote is of no more use after FREEZE.
        let written = self.written.take();
        luo_subsystem::with_records(|subsystems| {
            if let (Step::Freeze, Some(written)) = (step, &written) {
                if !self.outgoing.is_empty() && written.holds(&header, subsystems) {
                    return Ok(());
                }
            }
            // Freed before the record is copied again.
            drop(written);
            let sessions = SessionsRecord::read()?;
            {
                let snapshot = sessions.snapshot()?;
                let mut records = KVec::with_capacity(snapshot.len(), GFP_KERNEL)?;
                for s in snapshot.iter() {
                    records.push(
                        SessionRecord {
                            name: s.name,
                            owner: s.owner.to_handover(),
                            files: &s.files,
                        },
                        GFP_KERNEL,
                    )?;
                }
                let encoded = self.write_blobs(&header, &records, subsystems)?;
                BLOB_BYTES.store(u64::try_from(encoded).unwrap_or(u64::MAX), Relaxed);
            }
            if let Step::Prepare = step {
                // For FREEZE; if there is no memory for it, FREEZE writes
                // the blobs again.
                self.written = Written::keep(sessions, &header, subsystems);
            }
            Ok(())
        })
    }

    /// Writes the record into as many blobs as it needs ([`plan_blobs`]),
    /// reusing the blobs of the last PREPARE or FREEZE that are large
    /// enough, and withdraws those no longer needed. Blob 0 is written
    /// last: it lists where the others are. Returns the bytes encoded.
    fn write_blobs(
        &mut self,
        header: &Handover,
        sessions: &[SessionRecord<'_>],
        subsystems: &[SubsystemRecord<'_>],
    ) -> Result<usize> {
        let plan = plan_blobs(sessions, subsystems)?;
        let count = u32::try_from(plan.len()).map_err(|_| E2BIG)?;
        let largest = plan.iter().map(|b| b.room).max().unwrap_or(0);
        let mut scratch = KVVec::from_elem(0u8, largest.next_multiple_of(4096), GFP_KERNEL)?;
        let first = plan.first().ok_or(EINVAL)?;
        // Blob 0 comes first in `outgoing` and is written last: it lists
        // where the others are.
        self.blob(0, first.room)?;
        let mut blobs = KVec::with_capacity(plan.len().saturating_sub(1), GFP_KERNEL)?;
        let mut start = first.end;
        let mut encoded = 0usize;
        for (index, blob) in (1u32..).zip(plan.iter().skip(1)) {
            let share = sessions.get(start..blob.end).ok_or(EINVAL)?;
            let part = Part { index, count };
            let len = encode(header, part, &[], share, &[], &mut scratch)?;
            let phys = self.put_blob(index, scratch.get(..len).ok_or(EINVAL)?)?;
            blobs.push((phys, len as u64), GFP_KERNEL)?;
            encoded += len;
            start = blob.end;
        }
        let share = sessions.get(..first.end).ok_or(EINVAL)?;
        let part = Part { index: 0, count };
        let len = encode(header, part, &blobs, share, subsystems, &mut scratch)?;
        self.put_blob(0, scratch.get(..len).ok_or(EINVAL)?)?;
        // Dropping a blob unpreserves and frees it.
        self.outgoing.truncate(plan.len());
        Ok(encoded + len)
    }

    /// Blob `index` of at least `len` bytes: the one of the last PREPARE or
    /// FREEZE if it is large enough, else a new one (the old one goes,
    /// withdrawn if published). Blobs are made in index order.
    fn blob(&mut self, index: u32, len: usize) -> Result<&mut OutgoingBlob> {
        let i = usize::try_from(index).map_err(|_| EINVAL)?;
        let size = len.next_power_of_two().max(4096);
        let count = self.outgoing.len();
        match self.outgoing.get_mut(i) {
            Some(blob) if blob.len() >= len => {}
            Some(blob) => *blob = OutgoingBlob::new(size)?,
            None if count == i => self.outgoing.push(OutgoingBlob::new(size)?, GFP_KERNEL)?,
            None => return Err(EINVAL),
        }
        self.outgoing.get_mut(i).ok_or(EINVAL)
    }

    /// Makes `bytes` the content of blob `index`, returning its physical
    /// address; blob 0 is published as luo-rs's KHO subtree.
    fn put_blob(&mut self, index: u32, bytes: &[u8]) -> Result<u64> {
        let blob = self.blob(index, bytes.len())?;
        let out = blob.as_mut_slice();
        out.get_mut(..bytes.len())
            .ok_or(EINVAL)?
            .copy_from_slice(bytes);
        if let Some(rest) = out.get_mut(bytes.len()..) {
            rest.fill(0);
        }
        if index == 0 {
            blob.publish(luo_handover::KHO_NAME)?;
        }
        Ok(blob.phys())
    }

    /// Undoes every PREPARE and FREEZE: subsystems, files, kept files and
    /// the blob (the reverse of the order PREPARE ran them in).
    fn cancel_everything(&mut self) {
        luo_subsystem::cancel_all();
        luo_session::cancel_files();
        for files in self.committed.iter_mut() {
            luo_session::cancel_kept(files);
        }
        self.committed.clear();
        // Dropping the blobs withdraws their subtrees and frees them.
        self.written = None;
        self.outgoing.clear();
        BLOB_BYTES.store(0, Relaxed);
    }

    /// Runs the work of one transition.
    fn run(&mut self, work: Work) -> Result {
        match work {
            Work::Prepare => {
                luo_session::prepare_files()?;
                luo_subsystem::prepare_all()?;
                self.serialize(Step::Prepare)
            }
            Work::Freeze => {
                // Room to keep the files of every session closed while
                // FROZEN (none can be created then): keeping them cannot
                // fail for want of memory.
                self.committed
                    .reserve(luo_session::live_sessions(), GFP_KERNEL)?;
                luo_session::freeze_files()?;
                luo_subsystem::freeze_all()?;
                self.serialize(Step::Freeze)
            }
            Work::Cancel { .. } => {
                self.cancel_everything();
                Ok(())
            }
            Work::FinishIncoming => {
                luo_session::finish_all_incoming();
                luo_subsystem::finish_incoming();
                Ok(())
            }
        }
    }

    /// Applies `event`: runs its work and moves the state, or, if the
    /// work fails, undoes it and lands where the state machine says.
    fn apply(&mut self, event: Event) -> Result {
        if self.jump == Jump::Committed {
            return Err(EBUSY);
        }
        // The state decides first: an event the state refuses is EBUSY
        // whether or not KHO is on.
        let t = luo_state::on_event(self.state, event)?;
        if !kho::enabled() && event != Event::Cancel {
            return Err(EOPNOTSUPP);
        }
        match self.run(t.work) {
            Ok(()) => {
                self.set_state(t.to);
                Ok(())
            }
            Err(e) => {
                pr_err!("{:?} failed ({:?}): back to {:?}\n", event, e, t.on_failure);
                if t.on_failure == State::Normal {
                    self.cancel_everything();
                }
                self.set_state(t.on_failure);
                Err(e)
            }
        }
    }
}

/// The global state (`enum liveupdate_state`), without waiting for a
/// transition that is running: GET_STATE and sysfs must answer while a
/// PREPARE waits for something a user holds (a memfd's inode lock, say).
pub(crate) fn global_state() -> State {
    State::from_uapi(STATE.load(Relaxed)).unwrap_or(State::Normal)
}

/// Holds the core steady (no transition can run) while the guard lives.
pub(crate) struct CoreGuard(kernel::sync::lock::GlobalGuard<CORE>);

impl CoreGuard {
    /// The state, which cannot change while the guard is held.
    pub(crate) fn state(&self) -> State {
        self.0.state
    }

    /// Whether files of closed sessions, kept for the kexec, include one
    /// of the handler `compatible`.
    pub(crate) fn holds_files_of(&self, compatible: &[u8]) -> bool {
        self.0
            .committed
            .iter()
            .any(|files| files.iter().any(|f| f.uses(compatible)))
    }
}

/// Takes the core lock; see the locking notes on [`CORE`].
pub(crate) fn core() -> CoreGuard {
    CoreGuard(CORE.lock())
}

/// How the tests damage the published handover ([`damage_handover`]).
#[derive(Clone, Copy)]
pub(crate) enum Damage {
    /// "luo-rs,handover-v4" becomes "Luo-rs,handover-v4": still a valid
    /// FDT, but not a format any kernel knows.
    Corrupt,
    /// "luo-rs,handover-v4" becomes "luo-rs,handover-v5" (the version
    /// after [`luo_handover::FORMAT`]): a format newer than the next
    /// kernel reads, as a later release would write.
    Newer,
}

/// For the tests (test-control `corrupt-handover`, `newer-handover`):
/// damages the handover published for the next kernel, which must then
/// refuse it. Only while FROZEN (nothing rewrites the blob after that).
pub(crate) fn damage_handover(damage: Damage) -> Result {
    let mut core = CORE.lock();
    if core.state != State::Frozen {
        return Err(EBUSY);
    }
    // The blobs no longer hold the record they were written with.
    core.written = None;
    let bytes = core.outgoing.first_mut().ok_or(ENOENT)?.as_mut_slice();
    let format = luo_handover::COMPATIBLE.as_bytes();
    let at = bytes
        .windows(format.len())
        .position(|w| w == format)
        .ok_or(ENOENT)?;
    let (at, byte) = match damage {
        Damage::Corrupt => (at, b'L'),
        // The name ends in its one-digit version (checked below).
        Damage::Newer => (
            at + format.len() - 1,
            b'0' + (luo_handover::FORMAT as u8 + 1),
        ),
    };
    bytes[at] = byte;
    Ok(())
}
const _: () = assert!(luo_handover::FORMAT < 9);

/// SET_EVENT: moves the state machine (the caller checked the capability).
pub(crate) fn set_event(event: Event) -> Result {
    CORE.lock().apply(event)
}

/// Collects the incoming sessions and subsystem data while the handover
/// is decoded; nothing is registered unless all of it is valid.
struct Incoming {
    sessions: KVec<(Name, Owner, KVec<IncomingFile>)>,
    subsystems: KVec<(Name, u64)>,
}

impl Incoming {
    /// Refuses the record if one owner has two sessions of one name, a
    /// session has two files of one token, or a file depends on anything
    /// but a file before it in its session (which also rules out
    /// cycles); links each file to the files it depends on. Sorted, not
    /// compared pairwise, so that a large handover costs O(n log n) at
    /// boot.
    fn check_record(&mut self) -> core::result::Result<(), FdtError> {
        let mut keys =
            KVec::with_capacity(self.sessions.len(), GFP_KERNEL).map_err(|_| FdtError::NoSpace)?;
        let mut tokens = KVec::new();
        for (name, owner, files) in self.sessions.iter_mut() {
            keys.push((owner.to_handover(), *name), GFP_KERNEL)
                .map_err(|_| FdtError::NoSpace)?;
            // The files stay in the record's order: each after those it
            // depends on.
            tokens.clear();
            tokens
                .reserve(files.len(), GFP_KERNEL)
                .map_err(|_| FdtError::NoSpace)?;
            for (f, position) in files.iter().zip(0u32..) {
                tokens
                    .push_within_capacity((f.token(), position))
                    .map_err(|_| FdtError::NoSpace)?;
            }
            tokens.sort_unstable_by_key(|&(token, _)| token);
            if tokens.windows(2).any(|w| w[0].0 == w[1].0) {
                return Err(FdtError::BadValue);
            }
            for (f, position) in files.iter_mut().zip(0u32..) {
                if !f.link(&tokens, position) {
                    return Err(FdtError::BadValue);
                }
            }
        }
        keys.sort_unstable_by(|a, b| (a.0, a.1.as_bytes()).cmp(&(b.0, b.1.as_bytes())));
        if keys
            .windows(2)
            .any(|w| w[0].0 == w[1].0 && w[0].1 == w[1].1)
        {
            return Err(FdtError::BadValue);
        }
        Ok(())
    }
}

impl Sink for Incoming {
    fn session(&mut self, name: Name, owner: u32) -> core::result::Result<(), FdtError> {
        self.sessions
            .push((name, Owner::from_handover(owner), KVec::new()), GFP_KERNEL)
            .map_err(|_| FdtError::NoSpace)
    }

    fn subsystem(&mut self, record: SubsystemRecord<'_>) -> core::result::Result<(), FdtError> {
        let name = Name::from_bytes(record.compatible).map_err(|_| FdtError::BadValue)?;
        if self.subsystems.iter().any(|(n, _)| *n == name) {
            return Err(FdtError::BadValue);
        }
        self.subsystems
            .push((name, record.data), GFP_KERNEL)
            .map_err(|_| FdtError::NoSpace)
    }

    fn file(&mut self, record: FileRecord<'_>) -> core::result::Result<(), FdtError> {
        let (_, _, files) = self.sessions.last_mut().ok_or(FdtError::BadToken)?;
        let file = IncomingFile::new(&record).map_err(|_| FdtError::BadValue)?;
        files.push(file, GFP_KERNEL).map_err(|_| FdtError::NoSpace)
    }
}

/// The format name a handover blob gives, for the log.
fn format_name(blob: &[u8]) -> &str {
    kho_ser::Fdt::parse(blob)
        .and_then(|fdt| fdt.root_str("compatible"))
        .ok()
        .and_then(|name| core::str::from_utf8(name).ok())
        .unwrap_or("?")
}

/// Reads and validates the record the previous kernel left in KHO and
/// registers its sessions. A bad record is refused with a log line and
/// its blobs freed: this kernel then starts as if cold-booted.
fn take_incoming() -> Option<Handover> {
    let blob = match IncomingBlob::take(luo_handover::KHO_NAME) {
        Ok(Some(blob)) => blob,
        Ok(None) => return None,
        Err(e) => {
            pr_err!("cannot restore the incoming handover: {:?}\n", e);
            return None;
        }
    };
    let mut incoming = Incoming {
        sessions: KVec::new(),
        subsystems: KVec::new(),
    };
    let decoded = read_record(blob.as_slice(), &mut incoming);
    let (h, blobs) = match decoded.and_then(|h| incoming.check_record().map(|()| h)) {
        Ok(read) => read,
        Err(FdtError::BadVersion) => {
            pr_err!(
                "refusing the incoming handover: format {} is newer than this kernel reads ({} and older): starting fresh\n",
                format_name(blob.as_slice()),
                luo_handover::COMPATIBLE
            );
            return None;
        }
        Err(e) => {
            pr_err!("refusing the incoming handover ({:?}): starting fresh\n", e);
            return None;
        }
    };
    let (sessions, subsystems) = (incoming.sessions.len(), incoming.subsystems.len());
    for (name, owner, files) in incoming.sessions.drain_all() {
        if let Err(e) = Session::create_incoming(name, owner, files) {
            pr_err!("cannot register an incoming session: {:?}\n", e);
        }
    }
    for (name, data) in incoming.subsystems.drain_all() {
        if let Err(e) = luo_subsystem::add_incoming(name, data) {
            pr_err!("cannot keep a subsystem's handover data: {:?}\n", e);
        }
    }
    pr_info!(
        "handover received: format {} in {} blob(s), generation {}, from kernel {:#018x}, {} session(s), {} subsystem(s)\n",
        format_name(blob.as_slice()),
        blobs,
        h.generation,
        h.boot_id,
        sessions,
        subsystems
    );
    Some(h)
}

/// Decodes the record whose first blob is `first` into `incoming`,
/// restoring (and freeing when done) its other blobs.
fn read_record(
    first: &[u8],
    incoming: &mut Incoming,
) -> core::result::Result<(Handover, u32), FdtError> {
    let (h, parts) = luo_handover::decode_first(first, incoming)?;
    for index in 1..parts.count {
        if let Err(e) = read_part(&h, &parts, index, incoming) {
            free_parts(&parts, index + 1);
            return Err(e);
        }
    }
    Ok((h, parts.count))
}

/// Decodes blob `index` of the record whose blob 0 gave `h` and `parts`.
fn read_part(
    h: &Handover,
    parts: &Parts<'_>,
    index: u32,
    incoming: &mut Incoming,
) -> core::result::Result<(), FdtError> {
    let (phys, len) = parts.blob(index).ok_or(FdtError::BadValue)?;
    let len = usize::try_from(len).map_err(|_| FdtError::BadValue)?;
    let blob = IncomingBlob::restore(phys, len).map_err(|e| {
        pr_err!("cannot restore blob {} of the handover: {:?}\n", index, e);
        FdtError::BadValue
    })?;
    let part = Part {
        index,
        count: parts.count,
    };
    luo_handover::decode_part(blob.as_slice(), h, parts.format, part, incoming)
}

/// Frees the blobs from `from` on of a record that was refused, as far as
/// its blob 0 says where they are: nothing in them will be read.
fn free_parts(parts: &Parts<'_>, from: u32) {
    for index in from..parts.count {
        if let Some((phys, len)) = parts.blob(index) {
            drop(IncomingBlob::restore(
                phys,
                len.try_into().unwrap_or(usize::MAX),
            ));
        }
    }
}

/// SESSION_GET_STATE: where `session` stands (`enum liveupdate_session_state`)
/// and how many files it holds.
pub(crate) fn session_state(session: &Session) -> (u32, u32) {
    let core = CORE.lock();
    let (finished, files) = session.status();
    let state = match (session.origin(), core.state) {
        (Origin::Incoming, _) if finished => {
            uapi::liveupdate_session_state_LIVEUPDATE_SESSION_STATE_FINISHED
        }
        (Origin::Incoming, _) => uapi::liveupdate_session_state_LIVEUPDATE_SESSION_STATE_INCOMING,
        (Origin::Outgoing, State::Prepared) if session.is_named() => {
            uapi::liveupdate_session_state_LIVEUPDATE_SESSION_STATE_PREPARED
        }
        (Origin::Outgoing, State::Frozen) if session.is_named() => {
            uapi::liveupdate_session_state_LIVEUPDATE_SESSION_STATE_FROZEN
        }
        (Origin::Outgoing, _) => uapi::liveupdate_session_state_LIVEUPDATE_SESSION_STATE_OPEN,
    };
    (state, u32::try_from(files).unwrap_or(u32::MAX))
}

/// SESSION_FINISH: ends an incoming session. When none is left, the
/// update is over and the state returns to NORMAL by itself.
pub(crate) fn finish_session(session: &Session) -> Result {
    let mut core = CORE.lock();
    luo_state::check_op(core.state, Op::FinishSession, Some(session.origin()))?;
    session.finish_files(false)?;
    session.unregister();
    if core.state == State::Updated && luo_session::incoming_left() == 0 {
        // The update is over for the subsystems too, unless one that has
        // data did not register yet: its data waits (or a global FINISH).
        if luo_subsystem::finish_registered() == 0 {
            core.set_state(State::Normal);
            pr_info!("every incoming session is finished: back to normal\n");
        } else {
            pr_info!("every incoming session is finished; subsystem data waits\n");
        }
    }
    Ok(())
}

/// The last fd of an outgoing session was closed: its files are released
/// and its PREPARE work undone; while FROZEN they are committed to the
/// handover and kept until the kexec (or a CANCEL).
pub(crate) fn close_outgoing(session: &Session) {
    let mut core = CORE.lock();
    match core.state {
        State::Frozen => {
            let kept = session.close(false, true);
            // FREEZE reserved room for every session that existed then.
            if let Err(kept) = core.committed.push_within_capacity(kept).map_err(|e| e.0) {
                // Cannot happen; never unpreserve what the handover names.
                pr_err!("no room to keep the files of a closed session: leaking them\n");
                core::mem::forget(kept);
            }
        }
        State::Prepared => drop(session.close(true, false)),
        State::Normal | State::Updated => drop(session.close(false, false)),
    }
}

/// Called by `kernel_kexec()` right before the jump; an error aborts the
/// kexec. Runs the PREPARE and FREEZE steps userspace did not send.
#[no_mangle]
pub extern "C" fn liveupdate_reboot() -> c_int {
    if BOOT.as_ref().is_none() || !kho::enabled() {
        // luo-rs is not running or KHO is off: nothing can be handed over.
        return 0;
    }
    // Before the core lock, which the PRESERVE_FDs on their way need to
    // finish: what they preserve must be in the handover, or not at all.
    let stopped = match luo_file::stop_preserving() {
        Ok(stopped) => stopped,
        Err(e) => {
            pr_err!("aborting kexec: a PRESERVE_FD is still preserving its file\n");
            return e.to_errno();
        }
    };
    let mut core = CORE.lock();
    let steps = match luo_state::on_kexec(core.state) {
        Ok(steps) => steps,
        Err(r) => {
            pr_err!("aborting kexec: the last update is not finished (FINISH it first)\n");
            return Error::from(r).to_errno();
        }
    };
    for &event in steps {
        if let Err(e) = core.apply(event) {
            pr_err!("aborting kexec: implicit {:?} failed: {:?}\n", event, e);
            return e.to_errno();
        }
    }
    // Nothing fails after this in kernel_kexec(): the handover is final,
    // and no PRESERVE_FD starts again.
    core.jump = Jump::Committed;
    stopped.for_good();
    drop(core);
    // Not at info level: a serial console prints synchronously, and this
    // line alone took about 5 ms of the jump at 115200 baud.
    pr_debug!("handover published for the next kernel\n");
    test_control::kexec_window();
    0
}

/// The state's name, as /sys/kernel/liveupdate/state shows it.
fn state_name(state: State) -> &'static CStr {
    match state {
        State::Normal => c"normal",
        State::Prepared => c"prepared",
        State::Frozen => c"frozen",
        State::Updated => c"updated",
    }
}

/// For luo_sysfs.c: the current state's name, a static C string.
#[no_mangle]
pub extern "C" fn luo_rs_state_name() -> *const kernel::ffi::c_char {
    state_name(global_state()).as_char_ptr()
}

/// The debugfs view: `/sys/kernel/debug/liveupdate/status`.
struct Status;

impl fmt::Debug for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(boot) = BOOT.as_ref() else {
            return writeln!(f, "state: uninitialised");
        };
        let state = state_name(global_state()).to_str().unwrap_or("?");
        writeln!(f, "state: {state}")?;
        writeln!(f, "kho: {}", if kho::enabled() { "on" } else { "off" })?;
        writeln!(f, "boot_id: {:#018x}", boot.boot_id)?;
        writeln!(f, "sessions: {}", luo_session::live_sessions())?;
        match boot.incoming {
            Some(h) => {
                writeln!(f, "incoming: yes")?;
                writeln!(f, "incoming_generation: {}", h.generation)?;
                writeln!(f, "incoming_boot_id: {:#018x}", h.boot_id)?;
            }
            None => writeln!(f, "incoming: no")?,
        }
        let mut result = Ok(());
        luo_session::for_each(|s| {
            let name = s.name();
            let name = core::str::from_utf8(name.as_bytes()).unwrap_or("<not utf-8>");
            result = result.and_then(|()| {
                writeln!(
                    f,
                    "session {}: {:?} {:?} owner={} files={}",
                    s.id(),
                    s.origin(),
                    name,
                    s.owner().to_handover(),
                    s.status().1
                )
            });
            s.for_each_file(|file| {
                result = result.and_then(|()| {
                    let handler = core::str::from_utf8(file.compatible).unwrap_or("?");
                    writeln!(
                        f,
                        "  file token={:#x} handler={} {}",
                        file.token, handler, file.status
                    )
                });
            });
        });
        luo_subsystem::for_each(|compatible, data, incoming| {
            let compatible = core::str::from_utf8(compatible).unwrap_or("?");
            let kind = if incoming { "incoming" } else { "registered" };
            result = result.and_then(|()| match data {
                Some(data) => writeln!(f, "subsystem {compatible}: {kind} data={data:#x}"),
                None => writeln!(f, "subsystem {compatible}: {kind}"),
            });
        });
        result
    }
}

/// The debugfs figure `/sys/kernel/debug/liveupdate/handover_bytes`: what
/// the handover for the next kernel takes (`make bench` reads it).
struct HandoverBytes;

impl fmt::Debug for HandoverBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The files' records are counted as they are now: a FREEZE that
        // found the record unchanged may still have grown one in place.
        let blobs = BLOB_BYTES.load(Relaxed);
        let files = if blobs == 0 {
            0
        } else {
            luo_session::record_bytes()
        };
        writeln!(f, "{}", blobs.saturating_add(files as u64))
    }
}

#[pin_data]
struct LiveUpdate {
    #[pin]
    _status: File<Status>,
    #[pin]
    _handover_bytes: File<HandoverBytes>,
    _debugfs: Dir,
    #[pin]
    _device: MiscDeviceRegistration<luo_ioctl::LuoFile>,
    /// /dev/liveupdate-test, with `CONFIG_LIVEUPDATE_RS_TEST`.
    _test_device: Option<Pin<KBox<MiscDeviceRegistration<handlers::test::TestFile>>>>,
    /// debugfs `test-control`, with `CONFIG_LIVEUPDATE_RS_TEST`.
    _test_subsystem: Option<Pin<KBox<File<test_control::Knob>>>>,
}

impl kernel::InPlaceModule for LiveUpdate {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        // SAFETY: called once, before anything can take the lock.
        unsafe { CORE.init() };
        kho::init();
        luo_session::init();
        luo_file::init();
        luo_subsystem::init();

        // SAFETY: `get_random_u64` may be called at any time after boot.
        let boot_id = unsafe { bindings::get_random_u64() };
        let incoming = take_incoming();
        if luo_session::incoming_left() > 0 || luo_subsystem::incoming_left() > 0 {
            CORE.lock().set_state(State::Updated);
        }
        if !kho::enabled() {
            pr_warn!("KHO is off (kho=off): live update is unavailable\n");
        }
        BOOT.populate(Boot { boot_id, incoming });

        handlers::memfd::init();
        for handler in [
            &handlers::memfd::HANDLER as &'static dyn luo_file::FileHandler,
            &handlers::memfd::V1_READER,
            &handlers::memfd::V2_READER,
            &handlers::memfd::V3_READER,
        ] {
            if let Err(e) = luo_file::register(handler) {
                pr_err!("cannot register a memfd handler: {:?}\n", e);
            }
        }
        #[cfg(CONFIG_LIVEUPDATE_RS_KVM)]
        handlers::kvm_vcpu::init();
        #[cfg(CONFIG_LIVEUPDATE_RS_KVM)]
        for handler in [
            &handlers::kvm_vm::HANDLER as &'static dyn luo_file::FileHandler,
            &handlers::guest_memfd::HANDLER,
            &handlers::kvm_vcpu::HANDLER,
        ] {
            if let Err(e) = luo_file::register(handler) {
                pr_err!("cannot register a KVM handler: {:?}\n", e);
            }
        }
        #[cfg(CONFIG_LIVEUPDATE_RS_IOMMUFD)]
        {
            handlers::iommufd::init();
            if let Err(e) = luo_file::register(&handlers::iommufd::HANDLER) {
                pr_err!("cannot register the iommufd handler: {:?}\n", e);
            }
        }
        #[cfg(CONFIG_LIVEUPDATE_RS_VFIO)]
        {
            match luo_file::register(&handlers::vfio_pci::HANDLER) {
                Ok(()) => handlers::vfio_pci::hold_incoming(),
                Err(e) => pr_err!("cannot register the VFIO handler: {:?}\n", e),
            }
        }
        if test_control::handler_at_boot() {
            if let Err(e) = test_control::register_handler() {
                pr_err!("cannot register the test file handler: {:?}\n", e);
            }
        }
        let test_device = if cfg!(CONFIG_LIVEUPDATE_RS_TEST) {
            match handlers::test::register_device() {
                Ok(dev) => Some(dev),
                Err(e) => {
                    pr_err!("cannot register /dev/liveupdate-test: {:?}\n", e);
                    None
                }
            }
        } else {
            None
        };

        // SAFETY: called once, from init.
        if let Err(e) = kernel::error::to_result(unsafe { bindings::luo_sysfs_init() }) {
            pr_err!("cannot create /sys/kernel/liveupdate: {:?}\n", e);
        }

        let debugfs = Dir::new(c"liveupdate");
        let test_subsystem = if cfg!(CONFIG_LIVEUPDATE_RS_TEST) {
            let knob = debugfs.read_write_callback_file(
                c"test-control",
                Ok::<_, Error>(test_control::Knob),
                &test_control::show,
                &test_control::command,
            );
            match KBox::pin_init(knob, GFP_KERNEL) {
                Ok(file) => Some(file),
                Err(e) => {
                    pr_err!("cannot create debugfs liveupdate/test-control: {:?}\n", e);
                    None
                }
            }
        } else {
            None
        };
        try_pin_init!(Self {
            _status <- debugfs.read_only_file(c"status", Status),
            _handover_bytes <- debugfs.read_only_file(c"handover_bytes", HandoverBytes),
            _debugfs: debugfs,
            _device <- MiscDeviceRegistration::register(MiscDeviceOptions {
                name: c"liveupdate",
            }),
            _test_device: test_device,
            _test_subsystem: test_subsystem,
        })
    }
}
