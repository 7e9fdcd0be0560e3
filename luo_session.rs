// SPDX-License-Identifier: GPL-2.0

//! Sessions: what a VMM preserves its files in.
//!
//! Outgoing sessions are made in this kernel for the next one: every
//! open() of /dev/liveupdate is one, and CREATE_SESSION makes more, each
//! with its own fd. An outgoing session lives as long as its file: when
//! the last reference is closed, everything it holds is released
//! ("auto-closing"). Opening is not exclusive.
//!
//! Incoming sessions were handed over by the previous kernel. They belong
//! to no file until RETRIEVE_SESSION claims one; closing that fd gives up
//! the claim (the session can be retrieved again), FINISH ends it.
//!
//! Every session is in the registry [`SESSIONS`] until it ends; names are
//! unique there, across outgoing and incoming sessions (unnamed sessions
//! do not collide).

use crate::luo_state::Origin;
use crate::luo_uapi::Name;
use kernel::{
    new_mutex,
    prelude::*,
    sync::{
        atomic::{Atomic, Relaxed},
        Arc, Mutex,
    },
};

/// Id of the next session; ids are never reused within a boot.
static NEXT_ID: Atomic<u64> = Atomic::new(1);

kernel::sync::global_lock! {
    // SAFETY: initialised in module init, before the device is registered.
    //
    // Locking: taken after CORE (luo_core.rs) and before any session's
    // `inner`. Never held across a call that may take CORE.
    unsafe(uninit) static SESSIONS: Mutex<KVec<Arc<Session>>> = KVec::new();
}

/// Initialises the registry; called once from module init.
pub(crate) fn init() {
    // SAFETY: called once, before any session can be created.
    unsafe { SESSIONS.init() };
}

/// The mutable part of a session.
struct Inner {
    /// Changed only with [`SESSIONS`] held too, so uniqueness checks see a
    /// stable set of names.
    name: Name,
    /// Incoming only: a retrieved fd holds the session.
    claimed: bool,
}

/// One session.
#[pin_data]
pub(crate) struct Session {
    id: u64,
    origin: Origin,
    #[pin]
    inner: Mutex<Inner>,
}

impl Session {
    fn new(origin: Origin, name: Name, sessions: &mut KVec<Arc<Session>>) -> Result<Arc<Session>> {
        if !name.is_empty() && taken(sessions, &name, None) {
            return Err(EEXIST);
        }
        let session = Arc::pin_init(
            try_pin_init!(Session {
                id: NEXT_ID.fetch_add(1, Relaxed),
                origin,
                inner <- new_mutex!(Inner { name, claimed: false }),
            }),
            GFP_KERNEL,
        )?;
        sessions.push(session.clone(), GFP_KERNEL)?;
        Ok(session)
    }

    /// Creates an outgoing session and registers it; `EEXIST` if `name`
    /// is taken.
    pub(crate) fn create(name: Name) -> Result<Arc<Session>> {
        Self::new(Origin::Outgoing, name, &mut SESSIONS.lock())
    }

    /// Registers a session handed over by the previous kernel.
    pub(crate) fn create_incoming(name: Name) -> Result<Arc<Session>> {
        Self::new(Origin::Incoming, name, &mut SESSIONS.lock())
    }

    /// Claims the incoming session `name` for a new fd: `ENOENT` if there
    /// is none, `EBUSY` if another fd holds it.
    pub(crate) fn claim(name: &Name) -> Result<Arc<Session>> {
        let sessions = SESSIONS.lock();
        let session = sessions
            .iter()
            .find(|s| s.origin == Origin::Incoming && s.inner.lock().name == *name)
            .ok_or(ENOENT)?;
        let mut inner = session.inner.lock();
        if inner.claimed {
            return Err(EBUSY);
        }
        inner.claimed = true;
        drop(inner);
        Ok(session.clone())
    }

    /// The fd holding this session is being released.
    pub(crate) fn release(&self) {
        match self.origin {
            Origin::Outgoing => self.unregister(),
            Origin::Incoming => self.inner.lock().claimed = false,
        }
    }

    /// Ends the session: it leaves the registry and its name is free.
    pub(crate) fn unregister(&self) {
        SESSIONS.lock().retain(|s| s.id != self.id);
    }

    /// The session's id, unique within this boot.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// Whether the session is outgoing or incoming.
    pub(crate) fn origin(&self) -> Origin {
        self.origin
    }

    /// The session's name (empty if unnamed).
    pub(crate) fn name(&self) -> Name {
        self.inner.lock().name
    }

    /// Renames the session; `EEXIST` if another session has `name`.
    pub(crate) fn set_name(&self, name: Name) -> Result {
        let sessions = SESSIONS.lock();
        if taken(&sessions, &name, Some(self.id)) {
            return Err(EEXIST);
        }
        self.inner.lock().name = name;
        Ok(())
    }
}

/// Whether a session other than `except` is named `name`.
fn taken(sessions: &KVec<Arc<Session>>, name: &Name, except: Option<u64>) -> bool {
    sessions
        .iter()
        .any(|s| Some(s.id) != except && s.inner.lock().name == *name)
}

/// Calls `f` on every live session, in creation order.
pub(crate) fn for_each(mut f: impl FnMut(&Session)) {
    for s in SESSIONS.lock().iter() {
        f(s);
    }
}

/// The names of the outgoing sessions that go into the handover: the
/// named ones (an unnamed session could not be retrieved).
pub(crate) fn outgoing_names() -> Result<KVec<Name>> {
    let sessions = SESSIONS.lock();
    let mut names = KVec::new();
    for s in sessions.iter().filter(|s| s.origin == Origin::Outgoing) {
        let name = s.inner.lock().name;
        if !name.is_empty() {
            names.push(name, GFP_KERNEL)?;
        }
    }
    Ok(names)
}

/// Number of incoming sessions not finished yet.
pub(crate) fn incoming_left() -> usize {
    SESSIONS
        .lock()
        .iter()
        .filter(|s| s.origin == Origin::Incoming)
        .count()
}

/// Ends every incoming session (global FINISH); fds that hold one keep
/// an ended session that can only be finished again.
pub(crate) fn finish_all_incoming() {
    SESSIONS.lock().retain(|s| s.origin != Origin::Incoming);
}

/// Number of sessions alive now.
pub(crate) fn live_sessions() -> usize {
    SESSIONS.lock().len()
}
